"""Zero-downtime apply on the sandbox: a change is loaded into the running Kong through its
Admin API (POST /config from inside the container, with the image's own resty), its
container is not restarted, and every way that cannot work falls back to the restart or,
when Kong refuses the config, changes nothing."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from pathlib import Path

import pytest

from supakong.deploy import DeployOptions, RolledBackError, deploy_host, run_verification
from supakong.doctor import doctor_host
from supakong.errors import ValidationError
from supakong.redeploy import redeploy
from supakong.render import render_kong_config
from supakong.report import BufferOutput
from supakong.sandbox.stack import create_kong, docker_client, ensure_secrets, wait_running
from supakong.verify_run import VerifyOptions

BROKEN = "_format_version: '2.1'\nservices:\n  - name: broken\n    host: nowhere\n    port: -12\n"


def kong_state(spec) -> dict:
    client = docker_client(spec)
    try:
        return dict(client.inspect_container(spec.kong_container)["State"])
    finally:
        client.close()


def kong_exec(spec, *argv: str) -> tuple[int, str]:
    client = docker_client(spec)
    try:
        exec_id = client.exec_create(spec.kong_container, list(argv))["Id"]
        output = client.exec_start(exec_id).decode()
        return int(client.exec_inspect(exec_id)["ExitCode"]), output
    finally:
        client.close()


def running_hash(spec) -> str:
    """GET /status's configuration_hash, asked inside the container with its resty."""
    code, output = kong_exec(
        spec,
        "resty",
        "-e",
        'local r = require("resty.http").new():request_uri("http://127.0.0.1:8001/status") '
        'print(require("cjson").decode(r.body).configuration_hash)',
    )
    assert code == 0, output
    return output.strip()


def not_unhealthy(spec) -> None:
    """Docker marks Kong unhealthy after three healthchecks time out (a loaded machine), and
    an unhealthy Kong is restarted, not reloaded: wait until a check passes again."""
    for _ in range(120):
        if (kong_state(spec).get("Health") or {}).get("Status") != "unhealthy":
            return
        time.sleep(0.5)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def variant(host, secrets, tmp_path: Path, marker: str) -> Path:
    path = tmp_path / f"{marker}.yml"
    path.write_text(render_kong_config(host, secrets) + f"# variant {marker}\n")
    return path


def audit_entries(spec) -> list[dict]:
    log = spec.kong_config_path.parent / ".supakong" / "audit.log"
    return [json.loads(line) for line in log.read_text().splitlines()]


def test_the_image_has_resty_bash_and_perl_but_no_curl(sandbox_spec):
    for tool in ("resty", "bash", "perl"):
        assert kong_exec(sandbox_spec, "sh", "-c", f"command -v {tool}")[0] == 0, tool
    assert kong_exec(sandbox_spec, "sh", "-c", "command -v curl")[0] != 0


def test_a_change_is_reloaded_without_restarting_kong(fresh_sandbox, host, secrets, out, tmp_path):
    not_unhealthy(fresh_sandbox)
    before = kong_state(fresh_sandbox)
    result = deploy_host(host, DeployOptions(), out)

    assert result.status == "changed" and result.method == "reloaded", out.text
    assert result.verify_state == "SUBSCRIBED"
    assert "reloaded sandbox" in out.text or f"reloaded {host.kong_container}" in out.text
    after = kong_state(fresh_sandbox)
    assert (after["StartedAt"], after["Pid"]) == (before["StartedAt"], before["Pid"])
    assert sha256(fresh_sandbox.kong_config_path) == result.new_sha256
    # The container's own file follows, and it is what Kong runs (md5 = configuration_hash).
    code, loaded = kong_exec(fresh_sandbox, "sh", "-c", 'cat "$KONG_DECLARATIVE_CONFIG"')
    assert code == 0 and hashlib.md5(loaded.encode()).hexdigest() == running_hash(fresh_sandbox)
    assert audit_entries(fresh_sandbox)[-1]["method"] == "reloaded"
    # The file is newer than Kong's start, yet the next run knows Kong runs it: no restart.
    again = deploy_host(host, DeployOptions(), BufferOutput())
    assert again.message == "no change" and kong_state(fresh_sandbox)["StartedAt"] == before["StartedAt"]
    # doctor agrees: the container's mount still shows the start-time template, which is fine.
    doctor_out = BufferOutput()
    doctor_host(host, VerifyOptions(), doctor_out)
    assert "✓ config loaded" in doctor_out.text, doctor_out.text


def test_a_config_kong_refuses_changes_nothing(fresh_sandbox, host, secrets, out, tmp_path):
    deploy_host(host, DeployOptions(), BufferOutput())
    old_sha, before, old_hash = sha256(fresh_sandbox.kong_config_path), kong_state(fresh_sandbox), None
    old_hash = running_hash(fresh_sandbox)
    backups = sorted((fresh_sandbox.kong_config_path.parent / ".supakong").glob("backups/*"))
    broken = tmp_path / "broken.yml"
    broken.write_text(BROKEN)

    not_unhealthy(fresh_sandbox)
    with pytest.raises(ValidationError) as err:
        deploy_host(host, DeployOptions(file=broken, skip_validate=True), out)

    assert "refuses the new config" in str(err.value) and "nothing was changed" in str(err.value)
    assert "port" in str(err.value)
    assert sha256(fresh_sandbox.kong_config_path) == old_sha
    assert kong_state(fresh_sandbox)["StartedAt"] == before["StartedAt"]
    assert running_hash(fresh_sandbox) == old_hash
    assert sorted((fresh_sandbox.kong_config_path.parent / ".supakong").glob("backups/*")) == backups
    assert run_verification(host, secrets, BufferOutput()).state == "SUBSCRIBED"


def test_restart_flag_restarts_kong(fresh_sandbox, host, secrets, out, tmp_path):
    before = kong_state(fresh_sandbox)
    result = deploy_host(host, DeployOptions(restart=True), out)
    assert result.method == "restarted" and result.verify_state == "SUBSCRIBED", out.text
    assert "apply: restart Kong (--restart)" in out.text and "! apply" not in out.text
    assert kong_state(fresh_sandbox)["StartedAt"] != before["StartedAt"]
    assert audit_entries(fresh_sandbox)[-1]["method"] == "restarted"


def test_a_disabled_admin_api_falls_back_to_the_restart_loudly(fresh_sandbox, host, secrets, out, tmp_path):
    spec = dataclasses.replace(fresh_sandbox, kong_admin_listen="off")
    client = docker_client(spec)
    try:
        client.remove_container(spec.kong_container, force=True)
        create_kong(client, spec, ensure_secrets(spec))
        client.start(spec.kong_container)
        wait_running(client, spec.kong_container, healthy=True, log_marker=b"declarative config loaded")
    finally:
        client.close()
    before = kong_state(spec)
    result = deploy_host(host, DeployOptions(), out)
    assert result.method == "restarted" and result.verify_state == "SUBSCRIBED", out.text
    assert "! apply: restart Kong (the Admin API is off (KONG_ADMIN_LISTEN=off))" in out.text
    assert kong_state(spec)["StartedAt"] != before["StartedAt"]


def test_an_image_without_resty_falls_back_to_the_restart_and_says_why(fresh_sandbox, host, secrets, out):
    assert kong_exec(fresh_sandbox, "rm", "-f", "/bin/resty")[0] == 0  # this container only
    before = kong_state(fresh_sandbox)
    result = deploy_host(host, DeployOptions(), out)
    assert result.method == "restarted" and result.verify_state == "SUBSCRIBED", out.text
    assert "! RELOAD NOT POSSIBLE, RESTARTING" in out.text and "no resty in the image" in out.text
    assert kong_state(fresh_sandbox)["StartedAt"] != before["StartedAt"]


def test_a_stopped_kong_is_started(fresh_sandbox, host, secrets, out):
    client = docker_client(fresh_sandbox)
    try:
        client.stop(fresh_sandbox.kong_container, timeout=2)
    finally:
        client.close()
    result = deploy_host(host, DeployOptions(), out)
    assert result.method == "restarted" and result.verify_state == "SUBSCRIBED", out.text
    assert kong_state(fresh_sandbox)["Running"]


def test_a_failed_verification_rolls_back_by_reloading(fresh_sandbox, host, secrets, tmp_path):
    deploy_host(host, DeployOptions(), BufferOutput())
    not_unhealthy(fresh_sandbox)
    old_sha, before = sha256(fresh_sandbox.kong_config_path), kong_state(fresh_sandbox)
    # The realtime route's upstream moved to a closed port: Kong loads it, Realtime fails.
    bad = tmp_path / "bad.yml"
    bad.write_text(fresh_sandbox.kong_config_path.read_text().replace(":4000/socket", ":4999/socket"))
    assert bad.read_text() != fresh_sandbox.kong_config_path.read_text()
    out = BufferOutput()
    with pytest.raises(RolledBackError) as err:
        deploy_host(host, DeployOptions(file=bad), out)
    assert "the previous config is serving again" in str(err.value), out.text
    assert "reloaded the previous config" in out.text
    assert sha256(fresh_sandbox.kong_config_path) == old_sha
    assert kong_state(fresh_sandbox)["StartedAt"] == before["StartedAt"]
    assert run_verification(host, secrets, BufferOutput()).state == "SUBSCRIBED"


def test_the_scheduled_redeploy_corrects_drift_by_reloading(fresh_sandbox, host, secrets, tmp_path):
    not_unhealthy(fresh_sandbox)
    before = kong_state(fresh_sandbox)
    run = redeploy([host], DeployOptions(), BufferOutput(), log=tmp_path / "redeploy.log", inventory="test")
    record = run.record["hosts"][host.name]
    assert (record["status"], record["method"]) == ("changed", "reloaded")
    assert kong_state(fresh_sandbox)["StartedAt"] == before["StartedAt"]
