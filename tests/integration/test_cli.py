"""The commands a user types: `fab` in the checkout and the `supakong` console script."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def fab(*args: str, cwd: Path = REPO, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "SUPAKONG_HOST_ALLOWLIST": "sandbox*", **(env or {})}
    return subprocess.run([str(BIN / "fab"), *args], cwd=cwd, env=environ, capture_output=True, text=True, timeout=300)


def test_fab_list_shows_every_task_with_help():
    proc = fab("--list")
    assert proc.returncode == 0
    for name in ("deploy-kong", "verify-realtime", "check-kong", "render-kong", "sandbox-up", "sandbox-down", "logs"):
        line = next(row for row in proc.stdout.splitlines() if row.strip().startswith(name + " "))
        assert len(line.split()) > 1, f"{name} has no help line"


def test_unknown_host_is_a_one_line_error_listing_known_hosts():
    proc = fab("deploy-kong", "-H", "nope")
    assert proc.returncode == 1
    assert proc.stderr.strip() == (
        "supakong: inventory/hosts.yml: unknown host 'nope'"
        " (known hosts: mudrock-enterprise, sandbox, sandbox-dokploy, sandbox-modern)"
    )


@pytest.fixture()
def on_sandbox(host, inventory_path):
    """`fab` bound to the test sandbox: its inventory and its host name."""

    def run(task: str, *args: str) -> subprocess.CompletedProcess[str]:
        return fab(task, "-H", host.name, *args, env={"SUPAKONG_INVENTORY": str(inventory_path)})

    return run


def test_deploy_check_then_deploy_then_no_op_through_fab(fresh_sandbox, secrets, on_sandbox):
    check = on_sandbox("deploy-kong", "--check")
    assert check.returncode == 2, check.stdout + check.stderr
    assert "pending" in check.stdout

    first = on_sandbox("deploy-kong", "--diff")
    assert first.returncode == 0, first.stdout + first.stderr
    assert "SUBSCRIBED" in first.stdout and "RECAP" in first.stdout and "changed" in first.stdout

    second = on_sandbox("deploy-kong")
    assert second.returncode == 0 and "no change" in second.stdout

    everything = check.stdout + check.stderr + first.stdout + first.stderr + second.stdout
    for name in ("SUPABASE_ANON_KEY", "SUPABASE_SERVICE_KEY", "JWT_SECRET"):
        assert secrets.get(name) not in everything, f"{name} leaked into the output"


def test_verify_realtime_alone_prints_stage_timings_and_subscribed(on_sandbox):
    on_sandbox("deploy-kong", "--no-verify")
    proc = on_sandbox("verify-realtime")
    assert proc.returncode == 0, proc.stdout
    assert "SUBSCRIBED" in proc.stdout and " ms " in proc.stdout


def test_console_script_runs_outside_the_checkout(tmp_path):
    env = {**os.environ, "SUPAKONG_INVENTORY": str(REPO / "inventory" / "hosts.yml")}
    proc = subprocess.run([str(BIN / "supakong"), "hosts"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert proc.returncode == 0 and "sandbox" in proc.stdout and "mudrock-enterprise" in proc.stdout


def test_a_host_outside_the_allowlist_is_never_contacted(sandbox_spec):
    proc = fab("verify-realtime", "-H", "mudrock-enterprise")
    assert proc.returncode == 1 and "not allowed by SUPAKONG_HOST_ALLOWLIST" in proc.stdout


def test_backups_rollback_and_audit_tasks(fresh_sandbox, on_sandbox, host, tmp_path):
    seed = fresh_sandbox.kong_config_path.read_text()
    assert on_sandbox("deploy-kong", "--no-verify").returncode == 0
    listed = on_sandbox("backups")
    assert listed.returncode == 0 and "1 backups" in listed.stdout
    stamp = listed.stdout.splitlines()[1].split()[0]

    rolled = on_sandbox("rollback-kong", "--to", stamp, "--no-verify")
    assert rolled.returncode == 0, rolled.stdout + rolled.stderr
    assert fresh_sandbox.kong_config_path.read_text() == seed

    missing = on_sandbox("rollback-kong", "--to", "19700101T000000000000Z")
    assert missing.returncode == 1 and "no backup 19700101T000000000000Z" in missing.stdout

    audit = on_sandbox("audit")
    assert audit.returncode == 0 and "deploy-kong changed" in audit.stdout
    assert "rollback-kong changed" in audit.stdout
