"""Faults on the sandbox VPS, each ending with nothing lost: the old config in place (or the
new one complete, never partial or empty), Kong serving (SUBSCRIBED), a clear one-line
error, and the next run converging.

Covered elsewhere, not repeated here:
- SIGKILL at every stage of a deploy, a stale lock after a crash, two concurrent deploys:
  tests/integration/test_safe_apply.py;
- a config Kong refuses at start (crash loop) is rolled back:
  tests/integration/test_walking_skeleton.py::test_config_kong_refuses_is_rolled_back_and_old_config_serves_again.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import functools
import hashlib
import os
import pwd
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

import supakong.deploy
from supakong.deploy import DeployOptions, RolledBackError, deploy_host, run_verification
from supakong.errors import DeployError, RestartError, TransportError, VerifyError
from supakong.render import render_kong_config
from supakong.report import BufferOutput
from supakong.rollback import rollback_host
from supakong.sandbox import sandbox_reset, sandbox_up
from supakong.sandbox.inventory import write_sandbox_inventory
from supakong.sandbox.stack import docker_client, wait_running
from supakong.sandbox.vps import start_sshd, wait_until_stopped
from supakong.transport import HostConnection

REPO = Path(__file__).resolve().parents[2]
FAB = Path(sys.executable).parent / "fab"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def serving(spec, host, secrets) -> bool:
    """Kong serves the file (SUBSCRIBED) and no lock or temp file is left."""
    directory = spec.kong_config_path.parent
    return (
        not (directory / ".supakong" / "lock").exists()
        and not list(directory.glob(".*.supakong-*.tmp"))
        and run_verification(host, secrets, BufferOutput()).state == "SUBSCRIBED"
    )


@pytest.fixture()
def served(sandbox_spec, host, secrets, tmp_path):
    """The sandbox serving a good config (SUBSCRIBED), and a variant of it to deploy next.

    Each test ends converged on its variant, so the next one starts from there; only a
    sandbox left in another state is reset (that takes seconds)."""
    if not serving(sandbox_spec, host, secrets):
        sandbox_reset(sandbox_spec)
        deploy_host(host, DeployOptions(), BufferOutput())
    variant = tmp_path / "variant.yml"
    # Unique per run: a test run again must still have something to deploy.
    variant.write_text(render_kong_config(host, secrets) + f"# variant {tmp_path.name} {time.time_ns()}\n")
    return sandbox_spec, sha256(sandbox_spec.kong_config_path), variant


def assert_nothing_lost(spec, host, secrets, old_sha: str) -> None:
    """The old config is in place, complete, and Kong serves it."""
    config = spec.kong_config_path
    assert sha256(config) == old_sha and config.stat().st_size > 0
    assert run_verification(host, secrets, BufferOutput()).state == "SUBSCRIBED"


def assert_the_next_run_converges(spec, host, secrets, variant: Path) -> None:
    out = BufferOutput()
    result = deploy_host(host, DeployOptions(file=variant), out)
    assert result.status == "changed" and result.verify_state == "SUBSCRIBED", out.text
    assert sha256(spec.kong_config_path) == sha256(variant)
    assert not list(spec.kong_config_path.parent.glob(".*.supakong-*.tmp")), "temp files are cleaned up"
    assert not (spec.kong_config_path.parent / ".supakong" / "lock").exists()
    assert deploy_host(host, DeployOptions(file=variant), BufferOutput()).message == "no change"


def failed_deploy(host, variant: Path, **options) -> tuple[DeployError, BufferOutput]:
    out = BufferOutput()
    with pytest.raises(DeployError) as err:
        deploy_host(host, DeployOptions(file=variant, **options), out)
    message = str(err.value)
    assert "\n" not in message and host.name in message, message
    return err.value, out


# -- the SSH connection is cut -------------------------------------------------------------


def sshd_sessions(spec) -> list[int]:
    """The per-connection sshd processes of this sandbox (children of its listener, and theirs)."""
    listener = int((spec.run_dir / "sshd.pid").read_text())
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            parents[int(stat.parent.name)] = int(fields[1])
    sessions = [pid for pid, ppid in parents.items() if ppid == listener]
    return sessions + [pid for pid, ppid in parents.items() if ppid in sessions]


def paused_deploy(host, inventory_path: Path, variant: Path, marker: Path, stage: str) -> subprocess.Popen[str]:
    """`fab deploy-kong --file variant` paused for 2 s at ``stage`` (returns once it is there)."""
    env = {
        **os.environ,
        "SUPAKONG_FAULT_PAUSE": stage,
        "SUPAKONG_FAULT_MARKER": str(marker),
        "SUPAKONG_FAULT_SECONDS": "2",
        "SUPAKONG_HOST_ALLOWLIST": "sandbox*",
        "SUPAKONG_INVENTORY": str(inventory_path),
    }
    argv = [str(FAB), "deploy-kong", "-H", host.name, "--file", str(variant)]
    proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"never reached {stage}"
        time.sleep(0.02)
    return proc


def cut_ssh_sessions(spec) -> None:
    """Kill the sshd processes of the connections open now (sshd's side of the TCP link)."""
    sessions = sshd_sessions(spec)
    assert sessions, "the deploy's SSH session is not there"
    for pid in sessions:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def test_ssh_connection_cut_before_the_replacement_reconnects_and_completes(
    served, host, secrets, inventory_path, tmp_path
):
    spec, _, variant = served
    log = spec.state_dir / "sshd.log"
    logins = log.read_text().count("Accepted publickey")
    proc = paused_deploy(host, inventory_path, variant, tmp_path / "paused", "replacing")
    cut_ssh_sessions(spec)
    stdout, stderr = proc.communicate(timeout=120)

    assert proc.returncode == 0, stdout + stderr
    assert "SUBSCRIBED" in stdout and "Traceback" not in stdout + stderr
    assert log.read_text().count("Accepted publickey") == logins + 2, "one login, then one reconnection"
    assert sha256(spec.kong_config_path) == sha256(variant)
    assert not list(spec.kong_config_path.parent.glob(".*.supakong-*.tmp"))
    assert deploy_host(host, DeployOptions(file=variant), BufferOutput()).message == "no change"


def test_ssh_connection_lost_for_good_before_the_replacement_keeps_the_old_config(
    served, host, secrets, inventory_path, tmp_path
):
    spec, old_sha, variant = served
    proc = paused_deploy(host, inventory_path, variant, tmp_path / "paused", "replacing")
    listener = int((spec.run_dir / "sshd.pid").read_text())
    sessions = sshd_sessions(spec)
    try:
        os.kill(listener, signal.SIGKILL)  # the server is gone: no new connections either
        for pid in sessions:
            os.kill(pid, signal.SIGKILL)
        stdout, stderr = proc.communicate(timeout=120)
        assert sha256(spec.kong_config_path) == old_sha
    finally:
        sandbox_up(spec)

    assert proc.returncode == 1, stdout + stderr
    assert "Traceback" not in stdout + stderr
    [failure] = [line for line in stdout.splitlines() if "✗" in line]
    assert "cannot connect" in failure or "SSH" in failure, failure
    assert_nothing_lost(spec, host, secrets, old_sha)
    assert_the_next_run_converges(spec, host, secrets, variant)


# -- the remote filesystem is full or read-only ---------------------------------------------


def restart_sshd(spec) -> None:
    """A new sshd listener (open sessions stay): it starts in a fresh mount namespace."""
    listener = int((spec.run_dir / "sshd.pid").read_text())
    os.kill(listener, signal.SIGTERM)
    assert wait_until_stopped(listener, 10), "sshd did not stop"
    start_sshd(spec)


@contextlib.contextmanager
def config_dir_on_a_small_tmpfs(spec, size: str = "512k") -> Iterator[Path]:
    """The config's directory on a tmpfs of ``size`` holding a copy of the config, seen by sshd
    (the SSH user) and by Kong (restarted so that its bind mount reads the copy). sshd runs in
    its own mount namespace (``ip netns exec``), so the directory is first made a shared mount
    and sshd restarted: the tmpfs mounted on it then appears in both. On exit Kong reads the
    file on the disk again (its content is the one from before the tmpfs)."""
    directory = spec.kong_config_path.parent
    content = spec.kong_config_path.read_bytes()
    user = pwd.getpwnam("supakong")
    subprocess.run(["mount", "--bind", str(directory), str(directory)], check=True)
    try:
        subprocess.run(["mount", "--make-shared", str(directory)], check=True)
        restart_sshd(spec)
        opts = f"size={size},mode=0755,uid={user.pw_uid},gid={user.pw_gid}"
        subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "supakong-fault", str(directory)], check=True)
        spec.kong_config_path.write_bytes(content)
        spec.kong_config_path.chmod(0o640)
        os.chown(spec.kong_config_path, user.pw_uid, user.pw_gid)
        client = docker_client(spec)
        try:
            client.restart(spec.kong_container, timeout=5)
            wait_running(client, spec.kong_container, healthy=True, timeout=120)
        finally:
            client.close()
        yield directory
    finally:
        subprocess.run(["umount", "-l", str(directory)], check=False)  # the tmpfs
        subprocess.run(["umount", "-l", str(directory)], check=False)  # the shared bind mount
        restart_sshd(spec)
        client = docker_client(spec)
        try:  # Kong reads the file on the disk again
            client.restart(spec.kong_container, timeout=5)
            wait_running(client, spec.kong_container, healthy=True, timeout=120)
        finally:
            client.close()


def fill(directory: Path, leave: int = 0) -> Path:
    """Fill the filesystem of ``directory``, then free ``leave`` bytes again."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError as exc:
        assert exc.errno == errno.ENOSPC
    finally:
        os.close(fd)
    os.truncate(filler, filler.stat().st_size - leave)
    return filler


def test_remote_disk_full_keeps_the_old_config(served, host, secrets):
    spec, old_sha, variant = served
    with config_dir_on_a_small_tmpfs(spec) as directory:
        filler = fill(directory)
        full, _ = failed_deploy(host, variant)  # not even room for the lock
        assert "cannot take the lock" in str(full) and "No space left on device" in str(full), str(full)
        assert_nothing_lost(spec, host, secrets, old_sha)

        fill(directory, leave=4096)  # room for the lock, not for the new file
        nearly, _ = failed_deploy(host, variant)
        assert "cannot upload" in str(nearly) and "No space left on device" in str(nearly), str(nearly)
        assert_nothing_lost(spec, host, secrets, old_sha)

        filler.unlink()
        assert_the_next_run_converges(spec, host, secrets, variant)


@contextlib.contextmanager
def read_only(spec, directory: Path) -> Iterator[None]:
    """``directory`` bind-mounted read-only over itself, as the SSH user sees it: in sshd's
    mount namespace (``ip netns exec`` gave it its own, and a remount does not propagate)."""
    in_sshd = ["nsenter", "-t", (spec.run_dir / "sshd.pid").read_text().strip(), "-m", "--"]
    subprocess.run([*in_sshd, "mount", "--bind", str(directory), str(directory)], check=True)
    try:
        subprocess.run([*in_sshd, "mount", "-o", "remount,bind,ro", str(directory)], check=True)
        yield
    finally:
        subprocess.run([*in_sshd, "umount", str(directory)], check=True)


def test_read_only_volume_changes_nothing_and_says_so(served, host, secrets):
    spec, old_sha, variant = served
    directory = spec.kong_config_path.parent
    before = sorted(p.name for p in directory.rglob("*"))
    with read_only(spec, directory):
        error, _ = failed_deploy(host, variant)
        assert "Read-only file system" in str(error), str(error)
        assert_nothing_lost(spec, host, secrets, old_sha)
    assert sorted(p.name for p in directory.rglob("*")) == before, "nothing was added or removed"
    assert_the_next_run_converges(spec, host, secrets, variant)


# -- a container or the engine is down -------------------------------------------------------


def test_realtime_down_rolls_back_and_reports_both_attempts(served, host, secrets):
    spec, old_sha, variant = served
    client = docker_client(spec)
    try:
        client.stop(spec.realtime_container, timeout=2)
        error, out = failed_deploy(host, variant)
        assert isinstance(error, RolledBackError)
        message = str(error)
        assert "Realtime verification failed" in message and "the previous config fails too" in message
        assert "ROLLING BACK" in out.text and out.text.count("CHANNEL_ERROR") >= 2, out.text
        assert sha256(spec.kong_config_path) == old_sha
        assert client.inspect_container(spec.kong_container)["State"]["Running"]
    finally:
        client.start(spec.realtime_container)
        wait_running(client, spec.realtime_container, timeout=120)
        client.close()
    deadline = time.monotonic() + 30
    while run_verification(host, secrets, BufferOutput()).state != "SUBSCRIBED":
        assert time.monotonic() < deadline, "Realtime did not come back"
        time.sleep(0.5)
    assert_nothing_lost(spec, host, secrets, old_sha)
    assert_the_next_run_converges(spec, host, secrets, variant)


def test_rollback_to_the_oldest_backup_then_a_failed_deploy_still_rolls_back(served, host, secrets, tmp_path):
    # Issue #24: backups were pruned by mtime, which `cp -p` keeps: after `rollback-kong --to
    # <oldest>` the next deploy's own backup sorted last and the same command deleted it, so
    # that deploy's automatic rollback found "no such backup" and the bad config stayed live.
    spec, _, variant = served
    kept = dataclasses.replace(host, backups_keep=3)
    for n in range(3):
        other = tmp_path / f"v{n}.yml"
        other.write_text(variant.read_text() + f"# v{n}\n")
        assert deploy_host(kept, DeployOptions(file=other, verify=False), BufferOutput()).status == "changed"
    backups = spec.kong_config_path.parent / ".supakong" / "backups"
    oldest = sorted(backups.glob(f"{spec.kong_config_path.name}.*"))[0]
    rollback_host(kept, oldest.name.rsplit(".", 1)[1], False, BufferOutput())
    restored = sha256(spec.kong_config_path)
    client = docker_client(spec)
    try:
        client.stop(spec.realtime_container, timeout=2)
        error, out = failed_deploy(kept, variant)
        assert isinstance(error, RolledBackError), out.text
        assert sha256(spec.kong_config_path) == restored, "the failed deploy's own backup was there to restore"
    finally:
        start_realtime(spec, client, host, secrets)
        client.close()


def test_no_rollback_leaves_the_failed_file_in_place_and_names_its_backup(served, host, secrets):
    spec, old_sha, variant = served
    client = docker_client(spec)
    try:
        client.stop(spec.realtime_container, timeout=2)
        error, out = failed_deploy(host, variant, rollback=False)
        assert isinstance(error, VerifyError) and not isinstance(error, RolledBackError)
        [backup] = re.findall(r"backup: (\S+)\)", out.text)
        assert str(error).endswith(f"; --no-rollback: the new file stays in place (its backup: {backup})")
        assert "ROLLING BACK" not in out.text and out.text.count("CHANNEL_ERROR") == 1, out.text
        assert sha256(spec.kong_config_path) == sha256(variant), "the failed file stays"
        assert sha256(Path(backup)) == old_sha, "the backup holds the previous file"
    finally:
        start_realtime(spec, client, host, secrets)
        client.close()
    assert sha256(spec.kong_config_path) == sha256(variant)  # and it serves, now that Realtime is back


def within(seconds: float, call: Callable[[], object]) -> object:
    """``call()``, failing the test if it has not returned after ``seconds`` (a wait whose
    deadline was lost would otherwise hang the suite instead of failing it)."""
    outcome: list[tuple[bool, object]] = []

    def run() -> None:
        try:
            outcome.append((True, call()))
        except BaseException as exc:  # noqa: BLE001 - handed to the test's thread
            outcome.append((False, exc))

    thread = threading.Thread(target=run, daemon=True)  # a lost one must not hold the exit
    thread.start()
    thread.join(seconds)
    if not outcome:
        pytest.fail(f"still waiting after {seconds:.0f} s: the deadline was not kept")
    returned, value = outcome[0]
    if not returned:
        raise value  # type: ignore[misc]
    return value


def test_a_kong_that_never_comes_up_after_the_restart_fails_at_the_deadline(served, host, secrets, monkeypatch):
    """Frozen (docker pause) right after the restart, Kong stays "starting" and its
    healthcheck cannot run: the wait ends at its deadline naming the last state."""
    spec, _, variant = served
    client = docker_client(spec)
    frozen = []

    def freeze_after_restart(name: str) -> None:
        if name == "restarted" and not frozen:
            client.pause(spec.kong_container)
            frozen.append(name)

    monkeypatch.setattr(supakong.deploy, "checkpoint", freeze_after_restart)
    out = BufferOutput()
    try:
        with pytest.raises(RestartError) as err:
            options = DeployOptions(file=variant, wait_timeout=3, rollback=False, restart=True)  # the restart path
            within(60, lambda: deploy_host(host, options, out))
    finally:
        if frozen:
            client.unpause(spec.kong_container)
        client.close()
    message = str(err.value)
    assert frozen and f"{spec.kong_container} did not come up within 3s: paused (unhealthy)" in message, message
    assert "logs since the restart" in out.text
    monkeypatch.undo()
    wait_until_kong_is_healthy(spec)


def test_a_no_op_waits_for_a_starting_kong_and_fails_at_the_deadline_if_it_never_turns_healthy(
    sandbox_spec, host, tmp_path
):
    """A Kong container just started whose healthcheck never passes (Docker keeps it
    "starting" for a whole interval): a no-op waits for it, then fails at its deadline."""
    name = f"{sandbox_spec.name}-never-healthy"
    client = docker_client(sandbox_spec)
    if client.containers(all=True, filters={"name": name}):
        client.remove_container(name, force=True)
    binds = {str(sandbox_spec.kong_config_path): {"bind": host.kong_config_mount, "mode": "ro"}}
    client.create_container(
        sandbox_spec.kong_image,
        name=name,
        entrypoint=["/bin/sh", "-c"],
        command=["exec sleep 600"],
        healthcheck={"test": ["CMD", "false"], "interval": 600 * 1_000_000_000, "retries": 3},
        host_config=client.create_host_config(network_mode="none", binds=binds),
    )
    unchanged = tmp_path / "unchanged.yml"
    unchanged.write_bytes(sandbox_spec.kong_config_path.read_bytes())
    out = BufferOutput()
    try:
        client.start(name)
        starting = dataclasses.replace(host, kong_container=name)
        with pytest.raises(RestartError) as err:
            within(60, lambda: deploy_host(starting, DeployOptions(file=unchanged, wait_timeout=2), out))
    finally:
        client.remove_container(name, force=True)
        client.close()
    assert f"{name} is starting: waiting for its healthcheck" in out.text
    assert str(err.value) == f"{name} did not become healthy within 2s: running (starting), 0 restarts"


def wait_until_kong_is_healthy(spec) -> None:
    client = docker_client(spec)
    try:
        wait_running(client, spec.kong_container, healthy=True, timeout=60)
    finally:
        client.close()


def start_realtime(spec, client, host, secrets) -> None:
    """Start Realtime again and wait until the path through Kong is SUBSCRIBED."""
    client.start(spec.realtime_container)
    wait_running(client, spec.realtime_container, timeout=120)
    deadline = time.monotonic() + 30
    while run_verification(host, secrets, BufferOutput()).state != "SUBSCRIBED":
        assert time.monotonic() < deadline, "Realtime did not come back"
        time.sleep(0.5)


def test_docker_daemon_stopped_fails_clearly_and_changes_nothing(served, host, secrets):
    spec, old_sha, variant = served
    pid = int((spec.run_dir / "docker.pid").read_text())
    os.kill(pid, signal.SIGTERM)
    try:
        assert wait_until_stopped(pid, 60), "dockerd did not stop"
        error, _ = failed_deploy(host, variant)
        message = str(error)
        assert "Docker" in message and "SSH" in message, message
        assert sha256(spec.kong_config_path) == old_sha
    finally:
        sandbox_up(spec)
    assert_nothing_lost(spec, host, secrets, old_sha)
    assert_the_next_run_converges(spec, host, secrets, variant)


# -- a slow, lossy link ----------------------------------------------------------------------


@contextlib.contextmanager
def slow_lossy_link(spec) -> Iterator[str]:
    """The host side of the VPS's link made slow and lossy: ``tc netem delay 100ms loss 2%``,
    or where the kernel has no netem (this sandbox's), a 512 kbit/s token bucket (``tc tbf``)
    plus iptables dropping one packet in 50 each way (iptables comes with docker.io)."""
    device = spec.host_if
    netem = subprocess.run(
        ["tc", "qdisc", "add", "dev", device, "root", "netem", "delay", "100ms", "loss", "2%"], capture_output=True
    )
    drops = [
        ["OUTPUT", "-o", device, "-m", "statistic", "--mode", "random", "--probability", "0.02", "-j", "DROP"],
        ["INPUT", "-i", device, "-m", "statistic", "--mode", "random", "--probability", "0.02", "-j", "DROP"],
    ]
    if netem.returncode != 0:
        tbf = ["tbf", "rate", "512kbit", "burst", "16kbit", "latency", "200ms"]
        subprocess.run(["tc", "qdisc", "add", "dev", device, "root", *tbf], check=True)
        for rule in drops:
            subprocess.run(["iptables", "-I", *rule], check=True)
    try:
        yield "netem" if netem.returncode == 0 else "tbf+iptables"
    finally:
        subprocess.run(["tc", "qdisc", "del", "dev", device, "root"], check=False)
        if netem.returncode != 0:
            for rule in drops:
                subprocess.run(["iptables", "-D", *rule], check=False)


def test_a_slow_lossy_link_still_converges(served, host, secrets):
    spec, _, variant = served
    with slow_lossy_link(spec):  # the run's own deadlines bound it; speed is the benchmark's
        assert_the_next_run_converges(spec, host, secrets, variant)


# -- a host key that changed, or was never seen ------------------------------------------------

FAKE_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBq2hJ0oVQkbG4ofQ9wqH3ytbqL1l4r8mvSv8bHZZ0u5"


def with_known_hosts(host, spec, tmp_path: Path, lines: str):
    """The host with an ssh config whose UserKnownHostsFile holds ``lines``."""
    known = tmp_path / "known_hosts"
    known.write_text(lines)
    config = tmp_path / "ssh_config"
    config.write_text(spec.ssh_config_path.read_text().replace(str(spec.known_hosts_path), str(known)))
    return dataclasses.replace(host, ssh_config_file=config)


def test_a_changed_host_key_refuses_commands_sftp_and_the_docker_api_and_changes_nothing(
    served, host, secrets, tmp_path
):
    spec, old_sha, variant = served
    changed = with_known_hosts(host, spec, tmp_path, f"{spec.vps_addr} {FAKE_KEY}\n")
    audit = spec.kong_config_path.parent / ".supakong" / "audit.log"
    audit_before = audit.read_text()
    client = docker_client(spec)
    try:
        started = client.inspect_container(spec.kong_container)["State"]["StartedAt"]
        for accept_new in (False, True):  # --accept-new trusts new keys, never changed ones
            conn = HostConnection(changed, accept_new=accept_new)
            for channel in (functools.partial(conn.run, ["true"]), conn.sftp, conn.docker):
                with pytest.raises(TransportError, match="HOST KEY HAS CHANGED"):
                    channel()
        with pytest.raises(TransportError, match="HOST KEY HAS CHANGED"):
            deploy_host(changed, DeployOptions(file=variant), BufferOutput())
        assert client.inspect_container(spec.kong_container)["State"]["StartedAt"] == started
    finally:
        client.close()
    assert audit.read_text() == audit_before
    assert_nothing_lost(spec, host, secrets, old_sha)


def test_the_docker_api_is_reached_only_through_the_verified_ssh_connection(served, host):
    spec, _, _ = served
    listening = subprocess.run(
        ["ip", "netns", "exec", spec.netns, "ss", "-Hltnp"], capture_output=True, text=True, check=True
    ).stdout
    assert "dockerd" not in listening and ":2375 " not in listening and ":2376 " not in listening, listening
    conn = HostConnection(host).open()
    api = conn.docker()
    assert api.inspect_container(spec.kong_container)["State"]["Running"]
    assert set(api.adapters) == {"http+docker://"}, "no plain HTTP route to any other engine"
    conn.close()
    with pytest.raises(Exception):  # noqa: B017 - whatever it is, it must not reach an engine
        api.inspect_container(spec.kong_container)


def test_the_users_ssh_config_and_its_known_hosts_file_are_honoured(sandbox_spec, tmp_path):
    spec = sandbox_spec
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    known = home / ".ssh" / "known_hosts_supakong"
    config = spec.ssh_config_path.read_text().replace(str(spec.known_hosts_path), "~/.ssh/known_hosts_supakong")
    (home / ".ssh" / "config").write_text(config)
    inventory = write_sandbox_inventory(tmp_path / "inventory" / "hosts.yml", [spec])
    inventory.write_text(re.sub(r"\n\s+ssh_config_file: .*", "", inventory.read_text()))
    env = {**os.environ, "HOME": str(home), "SUPAKONG_INVENTORY": str(inventory), "SUPAKONG_HOST_ALLOWLIST": "sandbox*"}

    def backups() -> subprocess.CompletedProcess[str]:
        argv = [str(FAB), "backups", "-H", spec.name]
        return subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)

    unknown = backups()
    assert unknown.returncode == 1 and f"host key is unknown (looked in {known})" in unknown.stderr, unknown.stderr
    known.write_text(spec.known_hosts_path.read_text())
    trusted = backups()
    assert trusted.returncode == 0 and "backups of" in trusted.stdout, trusted.stderr


# -- bad input: refused before anything remote happens ------------------------------------------


BAD_INPUTS = {
    "broken YAML": ("inventory", lambda text: text + "  bad: [unclosed\n", r"hosts\.yml:\d+:\d+: invalid YAML"),
    "shell in a container name": ("vars", {"kong_container": "kong; rm -rf /"}, r"/kong_container: invalid value"),
    "shell in the config path": ("vars", {"kong_config_path": "/srv/$(id)/k.yml"}, r"/kong_config_path: invalid value"),
    "an option as the config file": ("vars", {"kong_config_path": "/srv/-rf"}, r"/kong_config_path: invalid value"),
    "port out of range": ("vars", {"ansible_port": 99999}, r"/ansible_port: 99999 is out of range 1\.\.65535"),
    "port not a number": ("vars", {"ansible_port": "22; id"}, r"/ansible_port: expected an integer"),
    "undefined variable": ("template", lambda text: text + "x: {{ no_such_variable }}\n", r"\.j2:\d+: .*no_such_var"),
    "template syntax error": ("template", lambda text: text + "{% if %}\n", r"\.j2:\d+: template syntax error"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_refused_in_one_line_before_any_ssh_connection(sandbox_spec, tmp_path, case):
    where, change, expected = BAD_INPUTS[case]
    spec = sandbox_spec
    template = tmp_path / "kong.yml.j2"
    template.write_text((REPO / "templates" / "kong-simple.yml.j2").read_text())
    inventory = write_sandbox_inventory(tmp_path / "inventory" / "hosts.yml", [spec])
    doc = yaml.safe_load(inventory.read_text())
    host_vars = doc["all"]["children"]["sandboxes"]["hosts"][spec.name]
    host_vars["kong_template"] = str(template)
    if where == "vars":
        host_vars.update(change)
    inventory.write_text(yaml.safe_dump(doc))
    if where == "inventory":
        inventory.write_text(change(inventory.read_text()))
    if where == "template":
        template.write_text(change(template.read_text()))
    log = spec.state_dir / "sshd.log"
    logins = log.read_text().count("Accepted publickey")
    env = {**os.environ, "SUPAKONG_INVENTORY": str(inventory), "SUPAKONG_HOST_ALLOWLIST": "sandbox*"}
    argv = [str(FAB), "deploy-kong", "-H", spec.name]
    proc = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)

    assert proc.returncode == 1 and "Traceback" not in proc.stdout + proc.stderr
    errors = proc.stderr.splitlines() or [line for line in proc.stdout.splitlines() if "✗" in line]
    assert len(errors) == 1 and re.search(expected, errors[0]), proc.stdout + proc.stderr
    assert str(inventory if where != "template" else template) in errors[0], "the line names the file"
    assert log.read_text().count("Accepted publickey") == logins, "nothing connected to the host"
