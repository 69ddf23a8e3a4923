"""The stand-ins are checked against the official clients, through the sandbox's Kong:
supabase's `realtime` Python client and realtime-js subscribe (SUBSCRIBED) and are refused
with a wrong key; the Kong stand-in refuses the seed's ws/wss config at start like Kong OSS."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from pathlib import Path

import jwt
import pytest
from realtime import AsyncRealtimeClient, RealtimeSubscribeStates

from supakong.deploy import DeployOptions, deploy_host
from supakong.report import BufferOutput
from supakong.sandbox.stack import KONG_ENTRYPOINT, _runtime_binds, docker_client

REPO = Path(__file__).resolve().parents[2]
SEED_FIX = REPO / "tests" / "unit" / "kong" / "fixtures" / "seed_user_fix.yml"
JS_DIR = REPO / "tests" / "standins" / "js"


@pytest.fixture(scope="module")
def deployed(sandbox_spec, host, out_module):
    """The sandbox with supakong's rendered config deployed (module-wide)."""
    deploy_host(host, DeployOptions(verify=False), out_module)
    return host


@pytest.fixture(scope="module")
def out_module():
    return BufferOutput()


async def subscribe_with_official_client(url: str, token: str) -> str:
    client = AsyncRealtimeClient(url, token=token, auto_reconnect=False, max_retries=1)
    try:
        await client.connect()
        channel = client.channel("conformance")
        states: asyncio.Queue[str] = asyncio.Queue()
        channel.on_postgres_changes("*", callback=lambda _: None, schema="public", table="wells")
        await channel.subscribe(
            lambda state, _err: states.put_nowait(state.value if hasattr(state, "value") else str(state))
        )
        return await asyncio.wait_for(states.get(), timeout=10)
    finally:
        await client.close()


def test_official_python_client_subscribes_through_kong(deployed, secrets):
    state = asyncio.run(subscribe_with_official_client(f"{deployed.public_url}/realtime/v1", secrets.anon_key))
    assert state == RealtimeSubscribeStates.SUBSCRIBED.value


def test_official_python_client_is_refused_with_a_wrong_key(deployed):
    forged = jwt.encode(
        {"role": "anon", "exp": 4102444800}, "not-the-secret-of-this-sandbox-0123456789", algorithm="HS256"
    )
    with pytest.raises(Exception) as err:
        asyncio.run(subscribe_with_official_client(f"{deployed.public_url}/realtime/v1", forged))
    assert "401" in str(err.value) or "InvalidStatus" in type(err.value).__name__


def realtime_js(url: str, token: str, *flags: str) -> subprocess.CompletedProcess[str]:
    if not (JS_DIR / "node_modules").is_dir() or shutil.which("node") is None:
        pytest.fail("realtime-js is not installed: run `make js` (make test does)")
    return subprocess.run(
        ["node", str(JS_DIR / "subscribe.mjs"), url, token, *flags], capture_output=True, text=True, timeout=30
    )


def test_realtime_js_subscribes_through_kong_with_v2_frames(deployed, secrets):
    proc = realtime_js(f"{deployed.public_url.replace('http', 'ws')}/realtime/v1", secrets.anon_key)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "status SUBSCRIBED" in proc.stdout and "Subscribed to PostgreSQL" in proc.stdout


def test_realtime_js_reports_channel_error_with_a_wrong_key(deployed):
    forged = jwt.encode(
        {"role": "anon", "exp": 4102444800}, "not-the-secret-of-this-sandbox-0123456789", algorithm="HS256"
    )
    proc = realtime_js(f"{deployed.public_url.replace('http', 'ws')}/realtime/v1", forged)
    assert proc.returncode != 0 and "CHANNEL_ERROR" in proc.stdout


@pytest.mark.parametrize("image", ["kong:2.8.1", "kong/kong:3.9.1"])
def test_kong_standin_refuses_the_seed_ws_config_at_start(sandbox_spec, image, tmp_path):
    config = tmp_path / "kong.yml"
    config.write_text(SEED_FIX.read_text())
    client = docker_client(sandbox_spec)
    binds = _runtime_binds(sandbox_spec)
    binds[str(config)] = {"bind": "/home/kong/temp.yml", "mode": "ro"}
    container = client.create_container(
        image,
        entrypoint=["/bin/sh", "-c"],
        command=[KONG_ENTRYPOINT],
        environment={
            "KONG_DECLARATIVE_CONFIG": "/home/kong/kong.yml",
            "KONG_PROXY_LISTEN": "127.0.0.1:18000",
            "STANDIN_PYTHON": __import__("sys").executable,
            "SUPABASE_ANON_KEY": "k",
            "SUPABASE_SERVICE_KEY": "s",
        },
        host_config=client.create_host_config(network_mode="host", binds=binds),
    )
    try:
        client.start(container)
        exit_code = client.wait(container, timeout=30)["StatusCode"]
        logs = client.logs(container).decode()
    finally:
        client.remove_container(container, force=True)
        client.close()
    assert exit_code != 0
    assert "error parsing declarative config file /home/kong/kong.yml" in logs
    assert "expected one of: grpc, grpcs, http, https, tcp, tls, tls_passthrough, udp" in logs
