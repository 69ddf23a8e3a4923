"""Safe apply on the sandbox: a restart that cannot be lost, the host lock (concurrency,
stale locks), and SIGKILL at every stage of a deploy with nothing lost."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from supakong.deploy import DeployOptions, deploy_host, run_verification
from supakong.faults import CHECKPOINTS, RELOAD_CHECKPOINTS
from supakong.hostlock import LockedError
from supakong.render import render_kong_config
from supakong.report import BufferOutput
from supakong.sandbox.stack import docker_client

REPO = Path(__file__).resolve().parents[2]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def kong_state(spec) -> dict:
    client = docker_client(spec)
    try:
        return client.inspect_container(spec.kong_container)["State"]
    finally:
        client.close()


def variant(host, secrets, tmp_path: Path, marker: str) -> Path:
    """The rendered config plus a harmless comment, so that it differs from the current one."""
    path = tmp_path / f"{marker}.yml"
    path.write_text(render_kong_config(host, secrets) + f"# variant {marker}\n")
    return path


def test_a_replaced_but_never_restarted_file_is_restarted_by_the_next_run(fresh_sandbox, host, secrets, out):
    # An earlier run renamed the new file into place and died before restarting Kong.
    config = fresh_sandbox.kong_config_path
    time.sleep(1.1)  # the file's mtime must be later than Kong's start, as it would be
    config.write_text(render_kong_config(host, secrets))
    started = kong_state(fresh_sandbox)["StartedAt"]

    result = deploy_host(host, DeployOptions(), out)

    assert "restart pending" in result.plan and "replace" not in result.plan
    assert kong_state(fresh_sandbox)["StartedAt"] != started
    assert result.verify_state == "SUBSCRIBED"


def plant_lock(spec, holder: dict) -> Path:
    """A lock directory as another run (as the SSH user) would have left it."""
    state = spec.kong_config_path.parent / ".supakong"
    lock = state / "lock"
    lock.mkdir(parents=True)
    (lock / "details").write_text(json.dumps(holder) + "\n")
    subprocess.run(["chown", "-R", "supakong:supakong", str(state)], check=True)
    return lock


def test_a_held_lock_refuses_a_second_deploy_naming_the_holder(fresh_sandbox, host, secrets, out, tmp_path):
    lock = plant_lock(
        fresh_sandbox,
        {
            "token": "t",
            "user": "alice",
            "machine": "laptop-of-alice",
            "pid": 4242,
            "task": "deploy-kong",
            "started": "2026-11-26T10:00:00+00:00",
        },
    )
    before = sha256(fresh_sandbox.kong_config_path)
    try:
        with pytest.raises(LockedError) as err:
            deploy_host(host, DeployOptions(), out)
        assert "alice@laptop-of-alice pid 4242" in str(err.value) and "--lock-wait" in str(err.value)
        assert sha256(fresh_sandbox.kong_config_path) == before
    finally:
        subprocess.run(["rm", "-rf", str(lock)], check=True)


def test_a_stale_lock_of_a_dead_local_process_is_broken(fresh_sandbox, host, out):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    lock = plant_lock(
        fresh_sandbox,
        {
            "token": "t",
            "user": "root",
            "machine": os.uname().nodename,
            "pid": int(dead.stdout),
            "task": "deploy-kong",
            "started": "2026-11-26T10:00:00+00:00",
        },
    )
    result = deploy_host(host, DeployOptions(verify=False), out)
    assert result.status == "changed" and "breaking a stale lock" in out.text
    assert not lock.exists(), "the lock is released after the run"


def test_two_concurrent_deploys_are_serialised_by_the_lock(fresh_sandbox, host, secrets, tmp_path):
    files = [variant(host, secrets, tmp_path, m) for m in ("a", "b")]
    outs, results, errors = [BufferOutput(), BufferOutput()], {}, {}

    def run(i: int) -> None:
        try:
            results[i] = deploy_host(host, DeployOptions(file=files[i], lock_wait=90, verify=False), outs[i])
        except Exception as exc:  # noqa: BLE001
            errors[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in (0, 1)]
    for t in threads:
        t.start()
        time.sleep(0.05)
    for t in threads:
        t.join(180)
    assert not errors, errors
    assert {r.status for r in results.values()} == {"changed"}
    assert any("waiting up to 90s for the lock held by" in o.text for o in outs)
    final = fresh_sandbox.kong_config_path.read_text()
    assert final in {f.read_text() for f in files}
    audit = (fresh_sandbox.kong_config_path.parent / ".supakong" / "audit.log").read_text().splitlines()
    assert [json.loads(line)["result"] for line in audit[-2:]] == ["changed", "changed"]


KILL_POINTS = [("restart", c) for c in CHECKPOINTS if c not in ("verified",)]
KILL_POINTS += [("reload", c) for c in RELOAD_CHECKPOINTS if c not in ("verified",)]


@pytest.mark.parametrize(("method", "stage"), KILL_POINTS)
def test_sigkill_at_each_stage_loses_nothing_and_the_next_run_converges(
    fresh_sandbox, host, secrets, method, stage, tmp_path, inventory_path
):
    config = fresh_sandbox.kong_config_path
    old_sha = sha256(config)
    new_sha = hashlib.sha256(render_kong_config(host, secrets).encode()).hexdigest()
    marker = tmp_path / "paused"
    env = {
        **os.environ,
        "SUPAKONG_FAULT_PAUSE": stage,
        "SUPAKONG_FAULT_MARKER": str(marker),
        "SUPAKONG_HOST_ALLOWLIST": "sandbox*",
        "SUPAKONG_INVENTORY": str(inventory_path),
    }
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "fab"), "deploy-kong", "-H", host.name]
        + (["--restart"] if method == "restart" else []),
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert proc.poll() is None, proc.stdout.read()
        assert time.monotonic() < deadline, f"never reached {stage}"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()

    assert sha256(config) in {old_sha, new_sha}, "the file is the old or the new one, never partial"
    assert config.stat().st_size > 0

    out = BufferOutput()
    result = deploy_host(host, DeployOptions(), out)
    # Killed before the rename: the next run replaces and restarts. Killed after it, before
    # the restart: the restart is still pending and happens now. Killed after the restart:
    # Kong already serves the new file and there is nothing left to do. A reload: killed
    # after it, the next run writes the file (Kong answers 304); killed after the rename,
    # before the reload marker, it restarts (safe); after the marker nothing is left to do.
    if stage in ("restarted", "up", "marked"):
        assert result.message == "no change", out.text
    else:
        assert result.status == "changed" and result.verify_state == "SUBSCRIBED", out.text
    assert sha256(config) == new_sha
    assert not list(config.parent.glob(".*.supakong-*.tmp")), "left-over temp files are cleaned up"
    assert not (config.parent / ".supakong" / "lock").exists()
    assert deploy_host(host, DeployOptions(), BufferOutput()).message == "no change"
    assert run_verification(host, secrets, BufferOutput()).state == "SUBSCRIBED"
