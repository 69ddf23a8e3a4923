"""The walking skeleton end to end: render → validate → diff → replace → restart → wait →
logs → verify → roll back, against the sandbox VPS (real sshd, real dockerd, real files,
real WebSocket frames). Host state is observed independently of supakong: the VPS shares
this machine's filesystem, and its engine is reachable on a local socket."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import pytest

from supakong.deploy import DeployOptions, RolledBackError, deploy_host, run_verification
from supakong.errors import ValidationError
from supakong.render import render_kong_config
from supakong.sandbox.stack import docker_client

FIXTURES = Path(__file__).resolve().parents[1] / "unit" / "kong" / "fixtures"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def kong_started_at(spec) -> str:
    client = docker_client(spec)
    try:
        return client.inspect_container(spec.kong_container)["State"]["StartedAt"]
    finally:
        client.close()


def test_seed_config_breaks_realtime_with_a_tenant_diagnosis(fresh_sandbox, host, secrets, out):
    report = run_verification(host, secrets, out)
    assert report.state == "CHANNEL_ERROR"
    assert report.diagnosis is not None and "tenant" in report.diagnosis.cause.lower()
    assert "preserve_host" in out.text


def test_deploy_replaces_restarts_verifies_then_second_run_is_a_no_op(fresh_sandbox, host, secrets, out):
    config = fresh_sandbox.kong_config_path
    seed_sha, started_before = sha256(config), kong_started_at(fresh_sandbox)

    result = deploy_host(host, DeployOptions(restart=True), out)  # the restart path (reload: test_reload.py)

    assert result.status == "changed" and result.verify_state == "SUBSCRIBED"
    assert config.read_text() == render_kong_config(host, secrets)
    # the keys stay references the entrypoint expands: none in the file nor its backup
    assert "key: '$SUPABASE_ANON_KEY'" in config.read_text()
    for written in (config, *config.parent.glob(".supakong/backups/*")):
        assert secrets.anon_key not in written.read_text() and secrets.service_key not in written.read_text()
    assert oct(config.stat().st_mode & 0o777) == oct(host.file_mode)
    assert result.backup and sha256(Path(result.backup)) == seed_sha
    assert kong_started_at(fresh_sandbox) != started_before
    assert "logs since the restart" in out.text and "declarative config loaded" in out.text
    assert not list(config.parent.glob(".*.tmp")), "temp files must not be left behind"

    started_after = kong_started_at(fresh_sandbox)
    second = deploy_host(host, DeployOptions(), out)
    assert second.status == "ok" and second.message == "no change"
    assert kong_started_at(fresh_sandbox) == started_after, "a no-op must not restart Kong"


def test_without_a_local_key_the_verification_uses_the_kong_containers_own(
    fresh_sandbox, host, secrets, out, monkeypatch
):
    for name in ("SUPABASE_ANON_KEY", "SUPABASE_SERVICE_KEY"):
        monkeypatch.delenv(name, raising=False)
    keyless = dataclasses.replace(host, secrets_env_file=None)
    result = deploy_host(keyless, DeployOptions(), out)
    assert result.status == "changed" and result.verify_state == "SUBSCRIBED"
    assert secrets.anon_key not in out.text and "apikey=***" in out.text


def test_check_mode_shows_a_masked_diff_and_changes_nothing(fresh_sandbox, host, secrets, out):
    config = fresh_sandbox.kong_config_path
    before, started = sha256(config), kong_started_at(fresh_sandbox)
    result = deploy_host(host, DeployOptions(check=True), out)
    assert result.status == "pending"
    assert "+++ " in out.text and "preserve_host: true" in out.text
    assert secrets.anon_key not in out.text and "'$SUPABASE_ANON_KEY'" in out.text
    assert sha256(config) == before and kong_started_at(fresh_sandbox) == started


def test_check_mode_never_prints_the_live_files_dashboard_password(fresh_sandbox, host, out):
    # The live file holds a short dashboard password in clear that no local secret names:
    # the --check diff shows the line changing, never its value.
    config = fresh_sandbox.kong_config_path
    live = config.read_text() + "basicauth_credentials:\n  - consumer: DASHBOARD\n    password: hunt3\n"
    config.write_text(live)
    keyless = dataclasses.replace(host, secrets_env_file=None)
    result = deploy_host(keyless, DeployOptions(check=True), out)
    assert result.status == "pending" and "-    password: ***" in out.text
    assert "hunt3" not in out.text and config.read_text() == live


def test_seed_users_ws_fix_is_refused_before_the_host_is_touched(fresh_sandbox, host, out):
    config = fresh_sandbox.kong_config_path
    before = (sha256(config), config.stat().st_mtime_ns)
    with pytest.raises(ValidationError) as err:
        deploy_host(host, DeployOptions(file=FIXTURES / "seed_user_fix.yml"), out)
    assert "nothing was changed" in str(err.value) and "\n" not in str(err.value)
    assert "ws" in out.text
    assert (sha256(config), config.stat().st_mtime_ns) == before
    assert not (config.parent / ".supakong").exists(), "not even an audit line or a lock"


def test_a_key_the_kong_container_does_not_hold_is_refused_before_the_host_is_touched(
    fresh_sandbox, host, secrets, out, tmp_path
):
    config = fresh_sandbox.kong_config_path
    before = (sha256(config), config.stat().st_mtime_ns)
    edited = tmp_path / "edited.yml"
    edited.write_text(
        render_kong_config(host, secrets).replace(
            "      - key: '$SUPABASE_SERVICE_KEY'\n",
            "      - key: '$SUPABASE_SERVICE_KEY'\n      - key: '$SUPABASE_SECRET_KEY'\n",
        )
    )
    with pytest.raises(ValidationError) as err:
        deploy_host(host, DeployOptions(file=edited, skip_validate=True), out)
    message = str(err.value)
    assert "$SUPABASE_SECRET_KEY is not in the environment of sandbox" in message and "\n" not in message
    assert fresh_sandbox.kong_container in message and "nothing was changed" in message
    assert (sha256(config), config.stat().st_mtime_ns) == before


def test_config_kong_refuses_is_rolled_back_and_old_config_serves_again(fresh_sandbox, host, secrets, out, tmp_path):
    # First a good deploy, so the rollback target is a working config.
    deploy_host(host, DeployOptions(), out)
    good = sha256(fresh_sandbox.kong_config_path)
    broken = tmp_path / "broken.yml"
    broken.write_text(
        render_kong_config(host, secrets).replace(
            "      - name: realtime-v1-ws\n",
            "      - name: realtime-v1-ws\n        protocols: [http, https, ws, wss]\n",
        )
    )
    with pytest.raises(RolledBackError) as err:
        # Restarted into it (a reload changes nothing instead: test_reload.py).
        deploy_host(host, DeployOptions(file=broken, skip_validate=True, wait_timeout=30, restart=True), out)
    assert "previous config is serving again" in str(err.value)
    assert "--skip-validate" in out.text
    assert "error parsing declarative config" in out.text  # Kong's own refusal, from its logs
    assert sha256(fresh_sandbox.kong_config_path) == good
    assert run_verification(host, secrets, out).state == "SUBSCRIBED"


def test_a_path_the_kong_container_does_not_mount_is_refused(fresh_sandbox, host, out):
    import dataclasses

    from supakong.errors import InventoryError

    wrong = dataclasses.replace(host, kong_config_path=str(fresh_sandbox.srv_dir / "other" / "kong-simple.yml"))
    with pytest.raises(InventoryError) as err:
        deploy_host(wrong, DeployOptions(), out)
    assert f"hosts/{host.name}/kong_config_path" in str(err.value) and "mounts" in str(err.value)
    assert not (fresh_sandbox.srv_dir / "other").exists()


def test_a_symlinked_config_path_is_the_mounted_file(fresh_sandbox, host, secrets, out):
    import dataclasses
    import os

    link = fresh_sandbox.srv_dir / "kong-link.yml"
    link.unlink(missing_ok=True)
    os.symlink(fresh_sandbox.kong_config_path, link)
    try:
        via_link = dataclasses.replace(host, kong_config_path=str(link))
        result = deploy_host(via_link, DeployOptions(check=True), out)
        assert result.status == "pending"
    finally:
        link.unlink()
