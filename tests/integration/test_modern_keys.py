"""Keys of both kinds on the modern sandbox: verify-realtime probes with the publishable key
(as current supabase-js) and the legacy anon JWT; doctor checks that Kong translates the
publishable key into an ES256 JWT Realtime accepts, and both name the cause when the ws
route's translation is gone or Realtime's JWKS lacks the kid. No key is ever printed."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator

import pytest
from sandbox_specs import related_spec
from test_diagnosis import check_line, doctor_text, verify_text

from supakong.deploy import DeployOptions, deploy_host
from supakong.inventory import HostConfig, load_inventory
from supakong.report import BufferOutput
from supakong.sandbox import SandboxSpec, sandbox_up
from supakong.sandbox.api_keys import make_api_keys
from supakong.sandbox.inventory import write_sandbox_inventory
from supakong.sandbox.stack import create_realtime, docker_client, ensure_secrets, wait_running
from supakong.secrets import Secrets, load_host_secrets

WS_TRANSFORMER = """      - name: request-transformer
        config:
          add:
            headers:
              - "x-api-key:$LUA_RT_WS_EXPR"
          replace:
            querystring:
              - "apikey:$LUA_RT_WS_EXPR"
"""


@pytest.fixture(scope="module")
def modern(sandbox_spec: SandboxSpec) -> SandboxSpec:
    return sandbox_up(related_spec("modern", 5))


@pytest.fixture(scope="module")
def modern_host(modern: SandboxSpec, tmp_path_factory: pytest.TempPathFactory) -> HostConfig:
    path = write_sandbox_inventory(tmp_path_factory.mktemp("modern-keys") / "hosts.yml", [modern])
    host = load_inventory(path).host(modern.name)
    deploy_host(host, DeployOptions(verify=False), BufferOutput())
    return host


@pytest.fixture(scope="module")
def modern_secrets(modern_host: HostConfig) -> Secrets:
    return load_host_secrets(modern_host)


def restart_kong(spec: SandboxSpec) -> None:
    client = docker_client(spec)
    try:
        client.restart(spec.kong_container, timeout=5)
        wait_running(client, spec.kong_container, healthy=True)
    finally:
        client.close()


@contextlib.contextmanager
def ws_translation_removed(spec: SandboxSpec) -> Iterator[None]:
    """The realtime-v1-ws route without its request-transformer, as a hand edit would leave it."""
    good = spec.kong_config_path.read_text()
    start = good.index("  - name: realtime-v1-ws")
    assert WS_TRANSFORMER in good[start:]
    cut = good[:start] + good[start:].replace(WS_TRANSFORMER, "", 1)
    spec.kong_config_path.write_text(cut)
    restart_kong(spec)
    try:
        yield
    finally:
        spec.kong_config_path.write_text(good)
        restart_kong(spec)


@contextlib.contextmanager
def realtime_with_jwks(spec: SandboxSpec, jwks: str | None) -> Iterator[None]:
    """Realtime recreated with another API_JWT_JWKS (None: unset); afterwards as made."""
    keys = ensure_secrets(spec)

    def recreate(changed: SandboxSpec, values: dict[str, str]) -> None:
        client = docker_client(spec)
        try:
            client.remove_container(spec.realtime_container, force=True)
            create_realtime(client, changed, values)
            client.start(spec.realtime_container)
            wait_running(client, spec.realtime_container, log_marker=b"Running RealtimeWeb.Endpoint")
        finally:
            client.close()

    if jwks is None:
        recreate(dataclasses.replace(spec, realtime_jwks=False), keys)
    else:
        recreate(spec, {**keys, "JWT_JWKS": jwks})
    try:
        yield
    finally:
        recreate(spec, keys)


def assert_no_key(text: str, secrets: Secrets) -> None:
    for name in ("SUPABASE_PUBLISHABLE_KEY", "SUPABASE_SECRET_KEY", "SUPABASE_ANON_KEY", "ANON_KEY_ASYMMETRIC"):
        assert secrets.get(name) and secrets.get(name) not in text, f"{name} was printed"


def test_verify_probes_with_the_publishable_key_and_the_legacy_jwt(modern_host, modern_secrets):
    ok, text = verify_text(modern_host, modern_secrets)
    assert ok, text
    assert "with the publishable key:" in text and "with the legacy anon JWT:" in text
    assert text.count("SUBSCRIBED") == 2
    assert_no_key(text, modern_secrets)


def test_doctor_is_all_ticks_and_checks_the_translation(modern_host, modern_secrets):
    status, text = doctor_text(modern_host)
    assert status == "ok" and "✗" not in text, text
    assert "ANON_KEY_ASYMMETRIC (ES256, kid" in check_line(text, "realtime jwks")
    assert "✓" in check_line(text, "ws translation") and "✓" in check_line(text, "publishable key")
    assert_no_key(text, modern_secrets)


def test_ws_route_without_the_translation_is_named_by_verify_and_doctor(modern, modern_host, modern_secrets):
    with ws_translation_removed(modern):
        ok, verify = verify_text(modern_host, modern_secrets)
        status, doctor = doctor_text(modern_host)
    assert not ok and "Kong passed the sb_publishable_ key to Realtime untranslated" in verify
    assert "The token provided is not a valid JWT" in verify
    assert "translation missing on the ws route realtime-v1-ws" in check_line(doctor, "ws translation")
    assert "✓" in check_line(doctor, "realtime jwks")
    assert status == "failed"
    assert_no_key(verify + doctor, modern_secrets)


def test_jwks_without_the_kid_is_named_by_verify_and_doctor(modern, modern_host, modern_secrets):
    other = make_api_keys("unrelated-secret-0123456789abcdefghijkl")["JWT_JWKS"]
    with realtime_with_jwks(modern, other):
        ok, verify = verify_text(modern_host, modern_secrets)
        status, doctor = doctor_text(modern_host)
    assert not ok and "API_JWT_JWKS lacks the kid" in verify
    assert "Failed to generate JWT signer for key ID (kid)" in verify
    assert "lacks kid" in check_line(doctor, "realtime jwks") and "✗" in check_line(doctor, "realtime jwks")
    assert "✓" in check_line(doctor, "ws translation")
    assert_no_key(verify + doctor, modern_secrets)


def test_jwks_not_set_is_named_by_verify_and_doctor(modern, modern_host, modern_secrets):
    with realtime_with_jwks(modern, None):
        ok, verify = verify_text(modern_host, modern_secrets)
        status, doctor = doctor_text(modern_host)
    assert not ok and "API_JWT_JWKS is not set on Realtime" in verify
    assert "API_JWT_JWKS not set on" in check_line(doctor, "realtime jwks")
    assert status == "failed"
