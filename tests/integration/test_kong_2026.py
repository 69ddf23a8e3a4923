"""The sandbox's 2026 Kong as a container: kong/kong:3.9.3 started by `/bin/sh
/home/kong/kong-entrypoint.sh` (the script bind-mounted, as Supabase's
docker-compose.kong.yml does), writing /usr/local/kong/kong.yml, with Supabase's 2026
kong.yml in front of the sandbox's Realtime; the official Python client subscribes through
it."""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from realtime import RealtimeSubscribeStates
from test_conformance import subscribe_with_official_client

from supakong.sandbox import SandboxSpec
from supakong.sandbox.stack import create_kong, docker_client, ensure_images, wait_running

FIXTURE = Path(__file__).resolve().parents[1] / "unit" / "kong" / "fixtures" / "supabase_2026_kong.yml"
PORT = 18093  # inside the VPS; the legacy Kong of the sandbox keeps its own port


@pytest.fixture(scope="module")
def kong_2026(sandbox_spec: SandboxSpec, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxSpec]:
    spec = dataclasses.replace(
        sandbox_spec,
        kong_era="2026",
        kong_image="kong/kong:3.9.3",
        kong_container=f"{sandbox_spec.kong_container}-2026",
        kong_port=PORT,
        kong_admin_listen=f"127.0.0.1:{PORT + 1}",  # the sandbox's own Kong has 127.0.0.1:8001
    )
    template = tmp_path_factory.mktemp("kong-2026") / "kong.yml"
    text = FIXTURE.read_text().replace("realtime-dev.supabase-realtime:4000", f"{spec.realtime_upstream_host}:4000")
    template.write_text(re.sub(r"http://(auth|rest|storage|functions|meta|studio):\d+", "http://127.0.0.1:9", text))
    template.chmod(0o644)
    template.parent.chmod(0o755)
    client = docker_client(spec)
    keys = {**_sandbox_keys(spec), "DASHBOARD_USERNAME": "supabase", "DASHBOARD_PASSWORD": "dashboard-password"}
    try:
        ensure_images(client, spec)
        if spec.kong_container in {c["Names"][0].lstrip("/") for c in client.containers(all=True)}:
            client.remove_container(spec.kong_container, force=True)
        create_kong(client, spec, keys, template)
        client.start(spec.kong_container)
        wait_running(client, spec.kong_container, healthy=True, log_marker=b"declarative config loaded")
        yield spec
    finally:
        client.remove_container(spec.kong_container, force=True)
        client.close()


def _sandbox_keys(spec: SandboxSpec) -> dict[str, str]:
    from supakong.sandbox.stack import ensure_secrets

    return ensure_secrets(spec)


def test_the_container_runs_the_entrypoint_and_writes_usr_local_kong(kong_2026: SandboxSpec) -> None:
    client = docker_client(kong_2026)
    try:
        info = client.inspect_container(kong_2026.kong_container)
        assert info["Config"]["Entrypoint"] == ["/bin/sh", "/home/kong/kong-entrypoint.sh"]
        exec_id = client.exec_create(
            kong_2026.kong_container, ["sh", "-c", "grep -c -- '- key:' /usr/local/kong/kong.yml; kong version"]
        )
        output = client.exec_start(exec_id).decode()
    finally:
        client.close()
    keys, version = output.split()
    assert keys == "2"  # the two empty opaque-key lines are gone
    assert version == "3.9.3"


def test_the_official_client_subscribes_through_the_2026_kong(kong_2026: SandboxSpec, secrets) -> None:
    url = f"http://{kong_2026.vps_addr}:{PORT}/realtime/v1"
    assert (
        asyncio.run(subscribe_with_official_client(url, secrets.anon_key)) == RealtimeSubscribeStates.SUBSCRIBED.value
    )
