"""The reload on the 2026 stack: kong/kong:3.9.3 run by the mounted kong-entrypoint.sh. The
candidate is rendered by re-running that script inside the container (its LUA_* templates
exist only there), posted with the image's resty, and the container's
/usr/local/kong/kong.yml follows; the container is not restarted."""

from __future__ import annotations

import asyncio
import hashlib
import time
from pathlib import Path

from realtime import RealtimeSubscribeStates
from sandbox_specs import related_spec
from test_conformance import subscribe_with_official_client
from test_kong_2026 import PORT, kong_2026  # noqa: F401 - the fixture

from supakong.apply import APPLIED, REFUSED, choose_apply, reload_config
from supakong.container import inspect_container
from supakong.deploy import DeployOptions, deploy_host
from supakong.hostprofile import AWK, build_profile
from supakong.inventory import load_inventory
from supakong.report import BufferOutput
from supakong.sandbox import SandboxSpec, sandbox_reset, sandbox_up
from supakong.sandbox.inventory import write_sandbox_inventory
from supakong.sandbox.stack import docker_client
from supakong.transport import HostConnection

BROKEN = "_format_version: '2.1'\nservices:\n  - name: broken\n    host: nowhere\n    port: -12\n"


def container_info(spec: SandboxSpec) -> dict:
    client = docker_client(spec)
    try:
        return dict(client.inspect_container(spec.kong_container))
    finally:
        client.close()


def in_container(spec: SandboxSpec, script: str) -> str:
    client = docker_client(spec)
    try:
        exec_id = client.exec_create(spec.kong_container, ["sh", "-c", script])["Id"]
        output = client.exec_start(exec_id).decode()
        assert client.exec_inspect(exec_id)["ExitCode"] == 0, output
        return output
    finally:
        client.close()


def running_hash(spec: SandboxSpec) -> str:
    lua = (
        f'local r = require("resty.http").new():request_uri("http://127.0.0.1:{PORT + 1}/status") '
        'print(require("cjson").decode(r.body).configuration_hash)'
    )
    return in_container(spec, f"resty -e '{lua}'").strip()


def reload(host, spec: SandboxSpec, template: bytes, parse: bool = True):  # type: ignore[no-untyped-def]
    with HostConnection(host) as conn:
        engine = conn.engine()
        kong = inspect_container(engine, spec.kong_container)
        for _ in range(120):  # a loaded machine can time out Docker's healthcheck for a while
            if kong.health != "unhealthy":
                break
            time.sleep(0.5)
            kong = inspect_container(engine, spec.kong_container)
        profile = build_profile(kong)
        choice = choose_apply(kong, profile, replace=True)
        assert profile.expansion == AWK and choice.reload, choice.why
        assert (choice.admin_url, choice.settle) == (f"http://127.0.0.1:{PORT + 1}", 1.0)
        return reload_config(engine, spec.kong_container, profile, choice, template, parse=parse)


def test_the_2026_kong_reloads_a_template_its_entrypoint_renders_without_a_restart(
    kong_2026: SandboxSpec,  # noqa: F811
    host,
    secrets,
) -> None:
    info = container_info(kong_2026)
    template = Path(next(m["Source"] for m in info["Mounts"] if m["Destination"] == "/home/kong/temp.yml"))
    # File-loaded on 3.x: configuration_hash is md5 of the rendered file.
    rendered = in_container(kong_2026, "cat /usr/local/kong/kong.yml")
    assert running_hash(kong_2026) == hashlib.md5(rendered.encode()).hexdigest()
    changed = template.read_text() + "# changed by the reload test\n"

    outcome = reload(host, kong_2026, changed.encode())

    assert (outcome.result, outcome.status) == (APPLIED, 201), outcome.detail
    assert container_info(kong_2026)["State"]["StartedAt"] == info["State"]["StartedAt"]
    loaded = in_container(kong_2026, "cat /usr/local/kong/kong.yml")
    assert loaded.endswith("# changed by the reload test\n") and "$LUA_AUTH_EXPR" not in loaded
    assert loaded.replace("# changed by the reload test\n", "") == rendered  # rendered as at start
    assert running_hash(kong_2026) == hashlib.md5(loaded.encode()).hexdigest()
    url = f"http://{kong_2026.vps_addr}:{PORT}/realtime/v1"
    assert (
        asyncio.run(subscribe_with_official_client(url, secrets.anon_key)) == RealtimeSubscribeStates.SUBSCRIBED.value
    )
    # The same bytes again: Kong answers 304 (check_hash) and nothing is reloaded.
    assert reload(host, kong_2026, changed.encode()).status == 304
    # A config Kong refuses: refused, the running config and the container's file stay.
    refused = reload(host, kong_2026, BROKEN.encode())
    assert refused.result == REFUSED and "port" in refused.detail
    # Without the parse (the deploy's preflight ran it), Kong's own POST /config refuses: 400.
    posted = reload(host, kong_2026, BROKEN.encode(), parse=False)
    assert posted.result == REFUSED and "POST /config answered HTTP 400: declarative config is invalid" in posted.detail
    assert in_container(kong_2026, "cat /usr/local/kong/kong.yml") == loaded
    assert running_hash(kong_2026) == hashlib.md5(loaded.encode()).hexdigest()


def test_a_deploy_on_the_modern_host_reloads_kong_3_9_without_a_restart(sandbox_spec: SandboxSpec, tmp_path) -> None:
    """The whole deploy-kong on the modern sandbox: reloaded, verified, StartedAt kept."""
    modern = sandbox_up(related_spec("modern", 5))
    sandbox_reset(modern)
    host = load_inventory(write_sandbox_inventory(tmp_path / "hosts.yml", [modern])).host(modern.name)
    for _ in range(120):  # an unhealthy Kong (healthchecks timing out on a loaded machine) restarts
        if (container_info(modern)["State"].get("Health") or {}).get("Status") != "unhealthy":
            break
        time.sleep(0.5)
    before = container_info(modern)["State"]
    out = BufferOutput()
    result = deploy_host(host, DeployOptions(), out)
    assert (result.status, result.method, result.verify_state) == ("changed", "reloaded", "SUBSCRIBED"), out.text
    assert "apply: reload through Kong's Admin API (http://127.0.0.1:8001/config" in out.text
    after = container_info(modern)["State"]
    assert (after["StartedAt"], after["Pid"]) == (before["StartedAt"], before["Pid"])
    assert deploy_host(host, DeployOptions(), BufferOutput()).message == "no change"
