"""deploy-kong on a Dokploy-managed Supabase (the sandbox-dokploy profile): through Dokploy's
API when the inventory gives dokploy_url and a key, refused without it, in place and loudly
with --direct; doctor reports the stack. Real sshd, dockerd, Kong/Realtime/Dokploy stand-ins,
Realtime verified over a real WebSocket."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import yaml

from supakong.audit import read_audit
from supakong.deploy import DeployOptions, RolledBackError, deploy_host
from supakong.doctor import gather_facts
from supakong.doctor_checks import build_checklist
from supakong.dokploy.api import DokployApiError
from supakong.dokploy.policy import DokployRefusal
from supakong.inventory import HostConfig, load_inventory
from supakong.report import BufferOutput
from supakong.sandbox import SandboxSpec
from supakong.sandbox import dokploy as dk
from supakong.sandbox.inventory import write_sandbox_inventory
from supakong.secrets import load_host_secrets
from supakong.transport import HostConnection
from supakong.verify_run import VerifyOptions

pytestmark = pytest.mark.sandbox



@pytest.fixture(scope="module")
def dk_host(dokploy: SandboxSpec, tmp_path_factory: pytest.TempPathFactory) -> HostConfig:
    path = write_sandbox_inventory(tmp_path_factory.mktemp("dokploy-inv") / "hosts.yml", [dokploy])
    return load_inventory(path).host(dokploy.name)


@pytest.fixture()
def no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(dk.KEY_ENV, raising=False)


@pytest.fixture()
def owner_key(dokploy: SandboxSpec, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(dk.KEY_ENV, dk.api_keys(dokploy)[dk.KEY_ENV])


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def stored_copy(spec: SandboxSpec) -> str:
    return next(m["content"] for m in dk.the_compose(spec)["mounts"] if m["filePath"] == dk.KONG_MOUNT)


def reset_mount(spec: SandboxSpec) -> None:
    """The template's seed back in Dokploy and on disk, and Kong restarted on it."""
    mount = next(m for m in dk.the_compose(spec)["mounts"] if m["filePath"] == dk.KONG_MOUNT)
    dk.call(spec, "mounts.update", {"mountId": mount["mountId"], "content": dk.SEED.read_text()})
    dk.call(spec, "docker.restartContainer", {"containerId": spec.kong_container})


def dokploy_row(host: HostConfig):  # type: ignore[no-untyped-def]
    facts = gather_facts(host, load_host_secrets(host), VerifyOptions())
    return next(c for c in build_checklist(facts) if c.name == "dokploy")


def test_doctor_reports_the_stack_as_dokploy_managed(
    dokploy: SandboxSpec, dk_host: HostConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(dk.KEY_ENV, dk.api_keys(dokploy)[dk.KEY_ENV])
    row = dokploy_row(dk_host)
    assert row.status == "ok", row
    assert f"appName {dk.app_name(dokploy)}" in row.detail and "file mount /volumes/api/kong.yml" in row.detail
    assert "compose mode" in row.detail and any(dk.api_url(dokploy) in n for n in row.notes)
    monkeypatch.delenv(dk.KEY_ENV)
    row = dokploy_row(dk_host)
    assert row.status == "fail" and f"{dk.KEY_ENV} (hosts/{dokploy.name}/dokploy_api_key_env) is empty" in row.fix


def test_without_an_api_key_the_deploy_refuses_and_explains(dokploy: SandboxSpec, dk_host: HostConfig, no_key) -> None:
    before = sha(dokploy.kong_config_path)
    with pytest.raises(DokployRefusal) as refused:
        deploy_host(dk_host, DeployOptions(), BufferOutput())
    message = str(refused.value)
    assert f"file mount {dk.KONG_MOUNT} of compose {dk.app_name(dokploy)}" in message
    assert "writes it back the next time anyone saves that mount" in message
    assert f"{dk.KEY_ENV} (hosts/{dokploy.name}/dokploy_api_key_env) is empty" in message and "--direct" in message
    assert sha(dokploy.kong_config_path) == before


def test_direct_writes_in_place_warns_and_a_ui_save_reverts_it(
    dokploy: SandboxSpec, dk_host: HostConfig, no_key
) -> None:
    path = dokploy.kong_config_path
    inode = path.stat().st_ino
    out = BufferOutput()
    result = deploy_host(dk_host, DeployOptions(direct=True), out)
    text = out.text
    assert result.status == "changed" and result.verify_state == "SUBSCRIBED", text
    assert "--direct: wrote" in text and "Dokploy's stored copy of file mount /volumes/api/kong.yml" in text
    assert "is now stale" in text and "writes the old content back" in text
    assert path.stat().st_ino == inode  # in place: Kong's single-file bind mount still sees it
    assert result.new_sha256 == sha(path) != hashlib.sha256(stored_copy(dokploy).encode()).hexdigest()
    with HostConnection(dk_host) as conn:
        last = read_audit(conn, dk_host.kong_config_path, 1)[-1]
    assert last["result"] == "changed" and "is now stale" in last["message"]
    with pytest.MonkeyPatch.context() as env:  # with a key, a run with nothing to change sees the drift
        env.setenv(dk.KEY_ENV, dk.api_keys(dokploy)[dk.KEY_ENV])
        again = deploy_host(dk_host, DeployOptions(), BufferOutput())
        assert again.status == "ok", again.plan
        assert "the next save of that mount in Dokploy reverts the host" in again.message
        assert dokploy_row(dk_host).status == "fail"  # doctor sees the drift too
    dk.ui_save_mount(dokploy)  # the hazard --direct warned about
    assert path.read_text() == dk.SEED.read_text()
    reset_mount(dokploy)


def test_deploy_through_the_api_subscribes_and_a_ui_save_keeps_it(
    dokploy: SandboxSpec, dk_host: HostConfig, owner_key
) -> None:
    path = dokploy.kong_config_path
    out = BufferOutput()
    result = deploy_host(dk_host, DeployOptions(), out)
    text = out.text
    assert result.status == "changed" and result.verify_state == "SUBSCRIBED", text
    assert "updated Dokploy's file mount /volumes/api/kong.yml" in text and "(mounts.update)" in text
    assert dk.api_keys(dokploy)[dk.KEY_ENV] not in text
    assert stored_copy(dokploy) == path.read_text()  # Dokploy's copy equals the host's file
    second = deploy_host(dk_host, DeployOptions(), BufferOutput())
    assert second.status == "ok" and second.message == "no change"
    deployed = sha(path)
    dk.ui_save_mount(dokploy)  # someone saves the mount in Dokploy's UI afterwards
    assert sha(path) == deployed


def test_a_key_without_permission_is_named_and_nothing_changes(
    dokploy: SandboxSpec, dk_host: HostConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    reset_mount(dokploy)
    monkeypatch.setenv(dk.KEY_ENV, dk.api_keys(dokploy)[dk.READONLY_KEY_ENV])
    before = sha(dokploy.kong_config_path)
    with pytest.raises(DokployApiError) as failed:
        deploy_host(dk_host, DeployOptions(), BufferOutput())
    message = str(failed.value)
    assert f"POST {dk.api_url(dokploy)}/api/mounts.update: 401" in message and "\n" not in message
    assert "lacks the permission this call needs (volume create)" in message
    assert sha(dokploy.kong_config_path) == before


def test_a_failed_verification_rolls_back_through_the_api(
    dokploy: SandboxSpec, dk_host: HostConfig, owner_key, tmp_path: Path
) -> None:
    reset_mount(dokploy)
    previous = dokploy.kong_config_path.read_text()
    broken = tmp_path / "kong.yml"  # Kong loads it; Realtime refuses its tenant (realtime:4000)
    broken.write_text(previous + "\n# a change Kong accepts and Realtime still refuses\n")
    out = BufferOutput()
    with pytest.raises(RolledBackError, match="rolled back to /etc/dokploy/compose/.*/.supakong/backups/kong.yml"):
        deploy_host(dk_host, DeployOptions(file=broken, skip_validate=True), out)
    assert "restored the previous content of file mount /volumes/api/kong.yml through Dokploy" in out.text
    assert dokploy.kong_config_path.read_text() == previous == stored_copy(dokploy)


def test_init_records_the_dokploy_service_and_changes_nothing(dokploy: SandboxSpec, tmp_path: Path) -> None:
    from supakong.adopt import InitRequest, init_host

    before = sha(dokploy.kong_config_path)
    out = BufferOutput()
    request = InitRequest(
        name=dokploy.name, ssh=dokploy.ssh_alias, ssh_config=dokploy.ssh_config_path, directory=tmp_path
    )
    result = init_host(request, out)
    assert result.status == "changed", out.text
    assert f"Dokploy:  Dokploy-managed: appName {dk.app_name(dokploy)}, compose mode" in out.text
    assert "file mount /volumes/api/kong.yml" in out.text
    discovered = yaml.safe_load((tmp_path / "inventory" / "host_vars" / f"{dokploy.name}.yml").read_text())
    assert "dokploy_app_name" in json.dumps(discovered) and dk.app_name(dokploy) in json.dumps(discovered)
    assert sha(dokploy.kong_config_path) == before  # read-only


def test_rollback_kong_goes_through_the_api_and_is_refused_without_it(
    dokploy: SandboxSpec, dk_host: HostConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    from supakong.rollback import rollback_host

    reset_mount(dokploy)
    monkeypatch.setenv(dk.KEY_ENV, dk.api_keys(dokploy)[dk.KEY_ENV])
    deployed = deploy_host(dk_host, DeployOptions(), BufferOutput())
    assert deployed.backup and deployed.verify_state == "SUBSCRIBED"  # a copy of the seed was kept
    monkeypatch.delenv(dk.KEY_ENV)
    with pytest.raises(DokployRefusal):
        rollback_host(dk_host, None, False, BufferOutput())
    assert sha(dokploy.kong_config_path) == deployed.new_sha256
    monkeypatch.setenv(dk.KEY_ENV, dk.api_keys(dokploy)[dk.KEY_ENV])
    out = BufferOutput()
    result = rollback_host(dk_host, None, False, out)
    assert result.status == "changed", out.text
    assert "through http://" in out.text and "(mounts.update)" in out.text
    assert dokploy.kong_config_path.read_text() == dk.SEED.read_text() == stored_copy(dokploy)
