"""verify-realtime and doctor on the sandbox VPS, with real faults injected: each test breaks
one thing the way it breaks on a real server and checks that the output names that cause and
its fix. Faults are made directly on the VPS (its files are this machine's files, its Docker
engine is on a local socket) and undone when the test ends; the `deployed` fixture puts the
good config back by a full reset and deploy whenever a test left anything else behind, so
tests do not depend on their order."""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import jwt
import pytest
import yaml

from supakong.deploy import DeployOptions, deploy_host
from supakong.doctor import doctor_host
from supakong.errors import DeployError
from supakong.render import render_kong_config
from supakong.report import BufferOutput
from supakong.sandbox import SandboxSpec, sandbox_reset
from supakong.sandbox.stack import create_realtime, docker_client, ensure_secrets, wait_running
from supakong.verify import verify_realtime
from supakong.verify_run import VerifyOptions, verification_lines, verify_host

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
FIXTURES = REPO / "tests" / "unit" / "kong" / "fixtures"
STAGE_LINE = re.compile(r"✓ (tcp|upgrade|join|heartbeat|broadcast|negative_key) +\d+ ms")


# --------------------------------------------------------------------------- the VPS


@contextlib.contextmanager
def engine(spec: SandboxSpec) -> Iterator:
    client = docker_client(spec)
    try:
        yield client
    finally:
        client.close()


def container_state(spec: SandboxSpec, name: str) -> dict:
    with engine(spec) as client:
        return client.inspect_container(name)


def restart_kong(spec: SandboxSpec) -> None:
    """Restart Kong so it reads the file again, and wait until it is healthy."""
    with engine(spec) as client:
        client.restart(spec.kong_container, timeout=5)
        wait_running(client, spec.kong_container, healthy=True)


def write_config(spec: SandboxSpec, text: str) -> None:
    """Put a config in place by hand (same inode, owner and mode), as an operator's editor would."""
    spec.kong_config_path.write_text(text)


def serving_the_good_config(spec: SandboxSpec, host, secrets) -> bool:
    """The deployed state: the rendered file, loaded by a healthy Kong, both stand-ins as made
    by the sandbox, and the probe SUBSCRIBED."""
    path = spec.kong_config_path
    if not path.exists() or path.read_text() != render_kong_config(host, secrets):
        return False
    keys = ensure_secrets(spec)
    kong, realtime = container_state(spec, spec.kong_container), container_state(spec, spec.realtime_container)
    env = dict(item.split("=", 1) for item in realtime["Config"]["Env"])
    if env.get("API_JWT_SECRET") != keys["JWT_SECRET"] or env.get("SELF_HOST_TENANT_NAME") != spec.tenant:
        return False
    if not realtime["State"]["Running"] or (kong["State"].get("Health") or {}).get("Status") != "healthy":
        return False
    if kong["RestartCount"] or container_started(kong) < path.stat().st_mtime:
        return False
    return verify_realtime(host.public_url, secrets.anon_key).ok


def container_started(info: dict) -> float:
    from supakong.container import parse_docker_time

    return parse_docker_time(info["State"]["StartedAt"])


@pytest.fixture()
def deployed(sandbox_spec: SandboxSpec, host, secrets) -> SandboxSpec:
    """The sandbox serving the rendered config: reused when a previous test left it so, else
    deployed (enough after the seed state), else reset and deployed."""
    if serving_the_good_config(sandbox_spec, host, secrets):
        return sandbox_spec
    with contextlib.suppress(DeployError):
        deploy_host(host, DeployOptions(wait_timeout=20), BufferOutput())
    if not serving_the_good_config(sandbox_spec, host, secrets):
        sandbox_reset(sandbox_spec)
        deploy_host(host, DeployOptions(), BufferOutput())
    return sandbox_spec


def wait_until_serving(host, secrets, timeout: float = 20.0) -> None:
    """Poll the probe until the path works again (a started container is not yet listening)."""
    deadline = time.monotonic() + timeout
    while not verify_realtime(host.public_url, secrets.anon_key, timeout=2.0).ok:
        if time.monotonic() > deadline:
            pytest.fail("the sandbox did not serve Realtime again after the fault was undone")
        time.sleep(0.2)


@contextlib.contextmanager
def config_in_place(spec: SandboxSpec, host, secrets, text: str, *, starts: bool = True) -> Iterator[None]:
    """Kong restarted on `text` (healthy, if it `starts`); afterwards the rendered config again."""
    write_config(spec, text)
    try:
        with engine(spec) as client:
            client.restart(spec.kong_container, timeout=5)
            if starts:
                wait_running(client, spec.kong_container, healthy=True)
        yield
    finally:
        write_config(spec, render_kong_config(host, secrets))
        restart_kong(spec)
        wait_until_serving(host, secrets)


@contextlib.contextmanager
def realtime_recreated(
    spec: SandboxSpec, host, secrets, *, tenant: str | None = None, jwt_secret: str | None = None
) -> Iterator[None]:
    """The Realtime container recreated with another tenant or JWT secret; afterwards as made."""
    keys = ensure_secrets(spec)

    def recreate(changed: SandboxSpec, values: dict[str, str]) -> None:
        with engine(spec) as client:
            client.remove_container(spec.realtime_container, force=True)
            create_realtime(client, changed, values)
            client.start(spec.realtime_container)
            wait_running(client, spec.realtime_container, log_marker=b"Running RealtimeWeb.Endpoint")

    recreate(replace(spec, tenant=tenant or spec.tenant), {**keys, "JWT_SECRET": jwt_secret or keys["JWT_SECRET"]})
    try:
        yield
    finally:
        recreate(spec, keys)
        wait_until_serving(host, secrets)


@contextlib.contextmanager
def stopped(spec: SandboxSpec, host, secrets, name: str) -> Iterator[None]:
    """Container `name` stopped (as `docker stop` does); afterwards started again."""
    with engine(spec) as client:
        client.stop(name, timeout=5)
    try:
        yield
    finally:
        with engine(spec) as client:
            client.start(name)
            if name == spec.kong_container:
                wait_running(client, name, healthy=True)
        wait_until_serving(host, secrets)


# --------------------------------------------------------------------------- running it


def fab(*args: str, inventory: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "SUPAKONG_HOST_ALLOWLIST": "sandbox*", "SUPAKONG_INVENTORY": str(inventory), **(env or {})}
    return subprocess.run([str(BIN / "fab"), *args], cwd=REPO, env=environ, capture_output=True, text=True, timeout=120)


def verify_text(host, secrets) -> tuple[bool, str]:
    """verify-realtime's per-host lines (stages, state, cause, fix, logs) as one text."""
    verification = verify_host(host, secrets, VerifyOptions())
    return verification.ok, "\n".join(verification_lines(verification))


def doctor_text(host) -> tuple[str, str]:
    """(status, output) of `fab doctor` for the host, through the library."""
    out = BufferOutput()
    result = doctor_host(host, VerifyOptions(), out)
    return result.status, out.text


def check_line(text: str, name: str) -> str:
    """The checklist line of check `name`, with its notes and fix."""
    match = re.search(rf"^  [✓✗-] {re.escape(name)} .*(?:\n {{6}}.*)*", text, re.MULTILINE)
    assert match, f"no {name!r} check in:\n{text}"
    return match.group(0)


def assert_no_secret(text: str, secrets, *more: str) -> None:
    for value in (secrets.anon_key, secrets.service_key, secrets.get("JWT_SECRET"), *more):
        if value:
            assert value not in text, "a secret was printed"


# --------------------------------------------------------------------------- the seed (first: it resets)


def test_seed_preserve_host_is_tenant_not_found_and_doctor_points_at_preserve_host(fresh_sandbox, host, secrets):
    ok, text = verify_text(host, secrets)
    status, report = doctor_text(host)
    assert not ok and "Tenant not found" in text and "preserve_host" in text
    tenant = check_line(report, "realtime tenant")
    assert tenant.startswith("  ✗") and "preserve_host: true on route realtime-v1-ws" in tenant
    assert f"browser's Host {fresh_sandbox.vps_addr}" in tenant and "remove preserve_host" in tenant
    live = check_line(report, "live config")
    assert live.startswith("  ✗") and "preserve_host" in live, "the seed's effective config is refused too"
    assert check_line(report, "keys").startswith("  ✓"), "$SUPABASE_ANON_KEY expands to the inventory's key"
    assert status == "failed"
    assert_no_secret(text + report, secrets)


# --------------------------------------------------------------------------- healthy


def test_healthy_sandbox_verify_realtime_prints_subscribed_with_stage_timings(deployed, host, inventory_path):
    proc = fab("verify-realtime", "-H", host.name, inventory=inventory_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "\n  SUBSCRIBED\n" in proc.stdout and "RECAP" in proc.stdout
    assert {m.group(1) for m in STAGE_LINE.finditer(proc.stdout)} >= {"tcp", "upgrade", "join", "negative_key"}


def test_healthy_sandbox_doctor_is_all_ticks_and_exits_0(deployed, host, inventory_path, secrets):
    proc = fab("doctor", "-H", host.name, inventory=inventory_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    checklist = [line for line in proc.stdout.splitlines() if re.match(r"  [✓✗-] ", line)]
    assert len(checklist) >= 9 and all(line.startswith("  ✓") for line in checklist), proc.stdout
    for name in ("live config", "kong container", "realtime container", "kong version", "realtime tenant"):
        assert f"✓ {name}" in proc.stdout
    for name in ("db container", "publication", "rls", "select grant", "wal_level", "realtime slot", "tenant row"):
        assert f"✓ {name}" in proc.stdout
    assert "Kong 2.8.1 OSS" in proc.stdout and "all 21 checks passed" in proc.stdout
    assert_no_secret(proc.stdout + proc.stderr, secrets)


def test_json_document_has_state_stage_timings_and_no_secret(deployed, host, inventory_path, secrets):
    proc = fab("verify-realtime", "-H", host.name, "--json", "--vsn", "1.0.0", inventory=inventory_path)
    assert proc.returncode == 0, proc.stderr
    document = json.loads(proc.stdout)
    entry = document["hosts"][host.name]
    assert document["ok"] is True and entry["state"] == "SUBSCRIBED" and entry["diagnosis"] is None
    assert entry["url"].endswith("apikey=***&vsn=1.0.0")
    assert [s["name"] for s in entry["stages"]][:3] == ["tcp", "upgrade", "join"]
    assert all(isinstance(s["ms"], int | float) and s["ok"] for s in entry["stages"])
    assert "RECAP" in proc.stderr, "human lines go to stderr with --json"
    assert_no_secret(proc.stdout + proc.stderr, secrets)


def test_url_and_apikey_env_check_a_supabase_url_without_naming_a_host(deployed, host, inventory_path, secrets):
    good = fab("verify-realtime", "--url", host.public_url, "--apikey-env", "MY_ANON", "--channel", "by-url",
               inventory=inventory_path, env={"MY_ANON": secrets.anon_key})  # fmt: skip
    assert good.returncode == 0, good.stdout + good.stderr
    assert "realtime:by-url" in good.stdout and "\n  SUBSCRIBED\n" in good.stdout

    stale = jwt.encode(
        {"role": "anon", "exp": int(time.time()) + 600}, "another-project-jwt-secret-0123456789", algorithm="HS256"
    )
    bad = fab("verify-realtime", "--url", host.public_url, "--apikey-env", "MY_ANON", "--json",
              inventory=inventory_path, env={"MY_ANON": stale})  # fmt: skip
    assert bad.returncode == 1
    entry = json.loads(bad.stdout)["hosts"][host.public_url]
    assert entry["state"] == "CHANNEL_ERROR" and entry["diagnosis"]["status"] == 401
    assert "not one of kong.yml's keyauth_credentials" in entry["diagnosis"]["cause"]
    assert_no_secret(good.stdout + good.stderr + bad.stdout + bad.stderr, secrets, stale)

    unset = fab(
        "verify-realtime", "--url", host.public_url, "--apikey-env", "NOT_SET_ANYWHERE", inventory=inventory_path
    )
    assert unset.returncode == 1 and "NOT_SET_ANYWHERE" in unset.stderr and "not set" in unset.stderr


def test_url_outside_the_allowlisted_inventory_is_refused_before_any_traffic(sandbox_spec, inventory_path):
    proc = fab("verify-realtime", "--url", "http://127.0.0.1:9", "--apikey-env", "PATH", inventory=inventory_path)
    assert proc.returncode == 1 and "refusing to contact it" in proc.stderr


# --------------------------------------------------------------------------- faults


def test_inventory_key_missing_from_kong_yml_is_kong_401_stale_key(deployed, host, secrets, monkeypatch):
    now = int(time.time())
    rotated = jwt.encode({"role": "anon", "iat": now, "exp": now + 3600}, secrets.get("JWT_SECRET"), algorithm="HS256")
    monkeypatch.setenv("SUPABASE_ANON_KEY", rotated)  # the environment overrides the secrets file
    stale = replace(secrets, values={**secrets.values, "SUPABASE_ANON_KEY": rotated})

    ok, text = verify_text(host, stale)
    assert not ok and "✗ upgrade" in text and "401" in text
    assert "not one of kong.yml's keyauth_credentials" in text and "fab deploy-kong" in text

    status, report = doctor_text(host)
    assert status == "failed"
    keys = check_line(report, "keys")
    assert keys.startswith("  ✗") and "SUPABASE_ANON_KEY is not among the 1 key(s) of consumer anon" in keys
    assert "fix: `fab deploy-kong" in keys
    assert check_line(report, "anon key").startswith("  ✓"), "the rotated key is signed correctly"
    assert_no_secret(text + report, secrets, rotated)


def test_realtime_tenant_mismatch_is_tenant_not_found_with_realtime_logs(deployed, host, secrets):
    with realtime_recreated(deployed, host, secrets, tenant="other"):
        ok, text = verify_text(host, secrets)
        status, report = doctor_text(host)
    assert not ok and "404 Not Found: Tenant not found" in text
    assert "Realtime found no tenant" in text and "SELF_HOST_TENANT_NAME" in text
    assert "logs around the attempt" in text and "TenantNotFound" in text and "<- Realtime tenant mismatch" in text
    tenant = check_line(report, "realtime tenant")
    assert tenant.startswith("  ✗") and "Realtime's tenant is 'other'" in tenant
    assert "fix: set SELF_HOST_TENANT_NAME=realtime-dev" in tenant
    assert status == "failed"


def test_realtime_stopped_is_502_upstream_down_and_exit_1(deployed, host, inventory_path, secrets):
    with stopped(deployed, host, secrets, deployed.realtime_container):
        proc = fab("verify-realtime", "-H", host.name, inventory=inventory_path)
        status, report = doctor_text(host)
    assert proc.returncode == 1
    assert "✗ upgrade" in proc.stdout and "502" in proc.stdout
    assert "Kong got no valid answer from Realtime (container stopped" in proc.stdout
    diagnosis_then_logs = proc.stdout.index("cause:") < proc.stdout.index("logs around the attempt")
    assert diagnosis_then_logs and "<- Kong cannot reach an upstream" in proc.stdout
    container = check_line(report, "realtime container")
    assert (
        container.startswith("  ✗")
        and "exited" in container
        and f"docker start {deployed.realtime_container}" in container
    )
    assert_no_secret(proc.stdout + proc.stderr + report, secrets)


def test_config_without_the_realtime_route_is_404_no_route(deployed, host, secrets):
    doc = yaml.safe_load(render_kong_config(host, secrets))
    doc["services"] = [s for s in doc["services"] if not s["name"].startswith("realtime")]
    with config_in_place(deployed, host, secrets, yaml.safe_dump(doc, sort_keys=False)):
        ok, text = verify_text(host, secrets)
        status, report = doctor_text(host)
    assert not ok and "404" in text and "Kong has no route for /realtime/v1/" in text
    assert "add the realtime-v1-ws route" in text
    tenant = check_line(report, "realtime tenant")
    assert tenant.startswith("  ✗") and "no Realtime route" in tenant and "realtime-v1-ws" in tenant
    assert status == "failed"


def test_kong_stopped_is_connection_refused(deployed, host, secrets):
    with stopped(deployed, host, secrets, deployed.kong_container):
        ok, text = verify_text(host, secrets)
        status, report = doctor_text(host)
    assert not ok and "✗ tcp" in text and "connection refused" in text
    assert "Kong is not reachable" in text and "start the Kong container" in text
    kong = check_line(report, "kong container")
    assert kong.startswith("  ✗") and "exited" in kong and f"docker start {deployed.kong_container}" in kong
    assert check_line(report, "live config").startswith("  ✓"), "the file on the host is still valid"
    assert status == "failed"


def test_kong_crash_looping_on_the_seeds_ws_fix_says_refused_and_names_the_ws_error(deployed, host, secrets):
    with config_in_place(deployed, host, secrets, (FIXTURES / "seed_user_fix.yml").read_text(), starts=False):
        wait_for_crash_loop(deployed)
        ok, text = verify_text(host, secrets)
        status, report = doctor_text(host)
    assert not ok and "✗ tcp" in text and "connection refused" in text
    live = check_line(report, "live config")
    assert live.startswith("  ✗") and "error(s) for Kong 2.8.1 OSS" in live
    assert "'ws' is not a Kong OSS protocol" in live and "'wss' is not a Kong OSS protocol" in live
    assert check_line(report, "kong container").startswith("  ✗")
    assert status == "failed"
    assert_no_secret(text + report, secrets)


def wait_for_crash_loop(spec: SandboxSpec, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = container_state(spec, spec.kong_container)
        if info["RestartCount"] > 0 or info["State"]["Restarting"]:
            return
        time.sleep(0.2)
    pytest.fail("Kong did not crash-loop on the ws/wss config")


def test_jwt_secret_mismatch_is_401_signature_and_doctor_says_the_key_is_not_signed_with_it(
    deployed, host, inventory_path, secrets
):
    other_secret = "a-different-jwt-secret-for-realtime-0123456789"
    with realtime_recreated(deployed, host, secrets, jwt_secret=other_secret):
        proc = fab("verify-realtime", "-H", host.name, "--json", inventory=inventory_path)
        status, report = doctor_text(host)
    assert proc.returncode == 1
    entry = json.loads(proc.stdout)["hosts"][host.name]
    assert entry["state"] == "CHANNEL_ERROR" and entry["diagnosis"]["status"] == 401
    assert "Failed to validate JWT signature" in entry["diagnosis"]["body"]
    assert "not signed with Realtime's API_JWT_SECRET" in entry["diagnosis"]["cause"]
    assert any("JwtSignatureError" in line for line in entry["logs"]), entry["logs"]
    anon = check_line(report, "anon key")
    assert anon.startswith("  ✗") and f"not signed with API_JWT_SECRET of {deployed.realtime_container}" in anon
    assert "fix: regenerate ANON_KEY from the current JWT_SECRET" in anon
    assert status == "failed"
    assert_no_secret(proc.stdout + proc.stderr + report, secrets, other_secret)


def test_key_auth_anonymous_fallback_lets_a_bad_key_through_and_the_negative_probe_says_so(deployed, host, secrets):
    good = render_kong_config(host, secrets)
    head, ws, tail = good.partition("  - name: realtime-v1-ws\n")
    tail = tail.replace("hide_credentials: false\n", "hide_credentials: false\n          anonymous: anon\n", 1)
    with config_in_place(deployed, host, secrets, head + ws + tail):
        ok, text = verify_text(host, secrets)
        status, report = doctor_text(host)
    assert not ok and "\nSUBSCRIBED, but failed: negative_key\n" in text
    assert "✗ negative_key" in text and "passed by Kong, refused by Realtime" in text
    assert "key-auth `anonymous` fallback is masking bad keys" in text
    assert "remove `anonymous:` from the key-auth plugin" in text
    assert "anonymous: 'anon' lets requests with a missing OR invalid apikey" in check_line(report, "live config")
    path = check_line(report, "realtime path")
    assert path.startswith("  ✗") and "negative_key" in path and "anonymous" in path
    assert status == "failed"
