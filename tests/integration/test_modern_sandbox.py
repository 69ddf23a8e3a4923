"""The modern sandbox host (``sandbox-modern`` in the repository inventory, index 25 in the
default run): today's self-hosted Supabase with Kong. kong/kong:3.9.3 run by
kong-entrypoint.sh with the expressions router and upstream's kong.yml; opaque keys made as
add-new-auth-keys.sh makes them, which Kong's request-transformer Lua turns into ES256 JWTs;
Realtime verifying them against API_JWT_JWKS. The official clients subscribe through it
with the publishable key and are refused with a wrong one."""

from __future__ import annotations

import asyncio
import dataclasses
import json

import jwt
import pytest
from realtime import RealtimeSubscribeStates
from sandbox_specs import related_spec
from test_conformance import realtime_js, subscribe_with_official_client

from supakong.deploy import DeployOptions, deploy_host
from supakong.errors import ValidationError
from supakong.inventory import HostConfig, load_inventory
from supakong.look import look
from supakong.preflight import preflight_parse
from supakong.report import BufferOutput
from supakong.sandbox import SandboxSpec, sandbox_reset, sandbox_up
from supakong.sandbox.inventory import TEMPLATE, write_sandbox_inventory
from supakong.sandbox.stack import SEEDS, docker_client, ensure_secrets
from supakong.transport import HostConnection

SEED = SEEDS / "seed-kong-2026.yml"

WRONG_PUBLISHABLE = "sb_publishable_AAAAAAAAAAAAAAAAAAAAAA_AAAAAAAA"


@pytest.fixture(scope="module")
def modern(sandbox_spec: SandboxSpec) -> SandboxSpec:
    """The modern sandbox, up (after the main one: it shares the SSH user and client key)."""
    return sandbox_up(related_spec("modern", 5))


@pytest.fixture(scope="module")
def keys(modern: SandboxSpec) -> dict[str, str]:
    return ensure_secrets(modern)


def container_env(spec: SandboxSpec, name: str) -> dict[str, str]:
    client = docker_client(spec)
    try:
        env = client.inspect_container(name)["Config"]["Env"]
    finally:
        client.close()
    return dict(item.split("=", 1) for item in env)


def test_the_modern_host_runs_kong_3_9_3_with_the_entrypoint_and_the_expressions_router(modern):
    client = docker_client(modern)
    try:
        config = client.inspect_container(modern.kong_container)["Config"]
    finally:
        client.close()
    env = dict(item.split("=", 1) for item in config["Env"])
    assert config["Image"] == "kong/kong:3.9.3"
    assert config["Entrypoint"] == ["/bin/sh", "/home/kong/kong-entrypoint.sh"]
    assert (env["KONG_ROUTER_FLAVOR"], env["KONG_DECLARATIVE_CONFIG"]) == ("expressions", "/usr/local/kong/kong.yml")
    assert env["KONG_PLUGINS"].endswith(",post-function")


def test_keys_are_made_like_add_new_auth_keys(modern, keys):
    publishable, secret = keys["SUPABASE_PUBLISHABLE_KEY"], keys["SUPABASE_SECRET_KEY"]
    assert publishable.startswith("sb_publishable_") and len(publishable) == 46
    assert secret.startswith("sb_secret_") and len(secret) == 41
    header = jwt.get_unverified_header(keys["ANON_KEY_ASYMMETRIC"])
    jwks = json.loads(keys["JWT_JWKS"])
    assert header["alg"] == "ES256"
    assert [k["kid"] for k in jwks["keys"] if k["kty"] == "EC"] == [header["kid"]]
    assert all("d" not in k for k in jwks["keys"])
    realtime_env = container_env(modern, modern.realtime_container)
    assert json.loads(realtime_env["API_JWT_JWKS"]) == jwks


def test_python_client_subscribes_with_the_publishable_key(modern, keys):
    url = f"{modern.public_url}/realtime/v1"
    state = asyncio.run(subscribe_with_official_client(url, keys["SUPABASE_PUBLISHABLE_KEY"]))
    assert state == RealtimeSubscribeStates.SUBSCRIBED.value


def test_python_client_is_refused_with_a_wrong_publishable_key(modern):
    with pytest.raises(Exception) as err:
        asyncio.run(subscribe_with_official_client(f"{modern.public_url}/realtime/v1", WRONG_PUBLISHABLE))
    assert "401" in str(err.value) or "InvalidStatus" in type(err.value).__name__


def test_python_client_still_subscribes_with_the_legacy_anon_jwt(modern, keys):
    url = f"{modern.public_url}/realtime/v1"
    state = asyncio.run(subscribe_with_official_client(url, keys["SUPABASE_ANON_KEY"]))
    assert state == RealtimeSubscribeStates.SUBSCRIBED.value


def test_realtime_js_subscribes_with_the_publishable_key_like_supabase_js(modern, keys):
    url = f"{modern.public_url.replace('http', 'ws')}/realtime/v1"
    proc = realtime_js(url, keys["SUPABASE_PUBLISHABLE_KEY"], "--like-supabase-js")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "status SUBSCRIBED" in proc.stdout and "Subscribed to PostgreSQL" in proc.stdout


def test_realtime_js_reports_channel_error_with_a_wrong_publishable_key(modern):
    url = f"{modern.public_url.replace('http', 'ws')}/realtime/v1"
    proc = realtime_js(url, WRONG_PUBLISHABLE, "--like-supabase-js")
    assert proc.returncode != 0 and "CHANNEL_ERROR" in proc.stdout


@pytest.fixture(scope="module")
def modern_host(modern: SandboxSpec, tmp_path_factory: pytest.TempPathFactory) -> HostConfig:
    path = write_sandbox_inventory(tmp_path_factory.mktemp("modern-inventory") / "hosts.yml", [modern])
    return load_inventory(path).host(modern.name)


def test_deploy_on_the_modern_host_changes_subscribes_then_is_a_no_op(modern, modern_host):
    sandbox_reset(modern)
    first = deploy_host(modern_host, DeployOptions(), BufferOutput())
    assert (first.status, first.verify_state) == ("changed", "SUBSCRIBED")
    out = BufferOutput()
    second = deploy_host(modern_host, DeployOptions(), out)
    assert second.status != "changed" and "no change" in out.text
    rendered = modern.kong_config_path.read_text()
    assert "rendered by supakong" in rendered and "$LUA_RT_WS_EXPR" in rendered


def test_preflight_runs_the_hosts_own_entrypoint_script_on_the_candidate(modern, modern_host):
    # Upstream's file routes $WELL_KNOWN_OAUTH_PATH, a name only kong-entrypoint.sh defines:
    # Kong parses it only if the script ran on the candidate.
    content = SEED.read_text().encode()
    with HostConnection(modern_host) as conn:
        kong = look(conn, modern_host.kong_config_path, modern_host.kong_container, modern_host.realtime_container)[
            0
        ].kong
        assert preflight_parse(conn.engine(), kong, content).status == "ok"
        broken = content.replace(b"- /rest/v1/\n", b"- rest/v1/\n", 1)
        with pytest.raises(ValidationError) as err:
            preflight_parse(conn.engine(), kong, broken)
        code, listing = conn.engine().exec(modern_host.kong_container, ["ls", "-a", "/tmp"])
    assert "kong config parse" in str(err.value)
    assert b"supakong-preflight" not in listing


def test_a_legacy_template_is_refused_over_the_modern_hosts_file(modern, modern_host):
    before = modern.kong_config_path.read_bytes()
    legacy = dataclasses.replace(modern_host, template=TEMPLATE)
    with pytest.raises(ValidationError) as err:
        deploy_host(legacy, DeployOptions(), BufferOutput())
    message = str(err.value)
    assert "kong-simple.yml.j2 is a legacy (Kong 2.8-era) template" in message
    assert "templates/kong-2026.yml.j2" in message and "nothing was changed" in message
    assert modern.kong_config_path.read_bytes() == before
