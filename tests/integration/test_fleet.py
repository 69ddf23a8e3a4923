"""A fleet of three sandbox VPSes (sandbox-f1..f3 by default, see tests/sandbox_specs.py): a
mixed deploy (ok, changed, rolled back) with its recap, JSON report and exit code; a rolling
deploy that stops at the first failure; one SSH connection per host and two commands for a
no-op; and the scheduled, unattended redeploy run exactly as its systemd unit would run it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from ports import free_port
from sandbox_specs import related_spec
from sshconfig import dialling_local_port

import supakong.deploy
from supakong.deploy import DeployOptions, deploy_host
from supakong.inventory import load_inventory
from supakong.render import render_kong_config, sha256_text
from supakong.report import BufferOutput, HostResult
from supakong.sandbox import SandboxSpec
from supakong.sandbox.inventory import write_sandbox_inventory
from supakong.sandbox.multi import fleet_up
from supakong.sandbox.stack import SEED_CONFIG, docker_client
from supakong.schedule import parse_exec_line
from supakong.secrets import load_secrets
from supakong.transport import HostConnection

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from latency import delayed_forward  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SPECS = [related_spec(f"f{i}", i) for i in (1, 2, 3)]
F1, F2, F3 = (s.name for s in SPECS)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """Three sandboxes in their before state and an inventory with them in group ``fleet``."""
    if os.geteuid() != 0:
        pytest.fail("integration tests need root: they create network namespaces, sshd and dockerd")
    fleet_up(SPECS, recreate=True)
    path = write_sandbox_inventory(tmp_path_factory.mktemp("fleet") / "hosts.yml", SPECS, group="fleet")
    inventory = load_inventory(path)
    return {"inventory": path, "hosts": {s.name: inventory.host(s.name) for s in SPECS}}


def spec(name: str) -> SandboxSpec:
    return next(s for s in SPECS if s.name == name)


def fab(fleet: dict[str, object], *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SUPAKONG_HOST_ALLOWLIST": "sandbox*", "SUPAKONG_INVENTORY": str(fleet["inventory"])}
    return subprocess.run([str(BIN / "fab"), *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def sshd_count(name: str, what: str) -> int:
    """How often sshd of sandbox ``name`` logged ``what`` (LogLevel VERBOSE)."""
    return (spec(name).state_dir / "sshd.log").read_text().count(what)


def logins() -> dict[str, int]:
    return {s.name: sshd_count(s.name, "Accepted publickey") for s in SPECS}


def sessions() -> dict[str, int]:
    """Channels sshd started: one per exec command, SFTP subsystem or docker dial-stdio."""
    return {s.name: sshd_count(s.name, "Starting session:") for s in SPECS}


def delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: after[k] - before[k] for k in after}


def kong_started_at(name: str) -> str:
    client = docker_client(spec(name))
    try:
        return str(client.inspect_container(spec(name).kong_container)["State"]["StartedAt"])
    finally:
        client.close()


def stop_realtime(name: str) -> None:
    client = docker_client(spec(name))
    try:
        client.stop(spec(name).realtime_container, timeout=2)
    finally:
        client.close()


def start_realtime(name: str) -> None:
    """Start Realtime again and wait until it serves (its start line logged since now)."""
    client = docker_client(spec(name))
    try:
        since = int(time.time()) - 1
        client.start(spec(name).realtime_container)
        deadline = time.monotonic() + 20
        while b"Running RealtimeWeb.Endpoint" not in client.logs(spec(name).realtime_container, since=since):
            assert time.monotonic() < deadline, "Realtime did not start again"
            time.sleep(0.1)
    finally:
        client.close()


def wait_until_docker_says_healthy(name: str) -> None:
    """Until Docker's own healthcheck of Kong has passed since its last restart."""
    client = docker_client(spec(name))
    try:
        deadline = time.monotonic() + 30
        while client.inspect_container(spec(name).kong_container)["State"]["Health"]["Status"] != "healthy":
            assert time.monotonic() < deadline, "Kong never became healthy"
            time.sleep(0.2)
    finally:
        client.close()


@pytest.fixture()
def realtime_down_on_f3() -> Iterator[None]:
    """sandbox-f3's Realtime is stopped: a new config's verification fails there."""
    stop_realtime(F3)
    try:
        yield
    finally:
        start_realtime(F3)


def converge(fleet: dict[str, object], *names: str) -> None:
    """Bring hosts to the rendered config (no verification: that is not what these tests test)."""
    hosts = fleet["hosts"]
    assert isinstance(hosts, dict)
    for name in names:
        deploy_host(hosts[name], DeployOptions(verify=False), BufferOutput())


def rendered(fleet: dict[str, object], name: str) -> str:
    hosts = fleet["hosts"]
    assert isinstance(hosts, dict)
    host = hosts[name]
    return render_kong_config(host, load_secrets(host.secrets_env_file))


def recap_rows(stdout: str) -> dict[str, list[str]]:
    """``{host: [status, seconds, ...]}`` from the RECAP table."""
    tail = stdout[stdout.rindex("RECAP") :].splitlines()[1:]
    return {row.split()[0]: row.split()[1:] for row in tail if row.strip()}


def file_sha(name: str) -> str:
    return sha256_text(spec(name).kong_config_path.read_text())


def test_mixed_fleet_recap_report_and_exit_code_follow_each_host(fleet, realtime_down_on_f3, tmp_path):
    converge(fleet, F1)  # f1: nothing to do; f2: seed config, changes; f3: changes, fails, rolls back
    report = tmp_path / "report.json"
    before = logins()

    proc = fab(fleet, "deploy-kong", "-H", f"{F1},{F2},{F3}", "--report", str(report))

    assert proc.returncode == 1, proc.stdout + proc.stderr
    rows = recap_rows(proc.stdout)
    assert rows[F1][0] == "ok" and rows[F2][0] == "changed" and rows[F3][0] == "rolled_back"
    assert "realtime=SUBSCRIBED" in rows[F2]
    doc = json.loads(report.read_text())
    assert doc["task"] == "deploy-kong" and doc["status"] == "rolled_back"
    assert {h: r["status"] for h, r in doc["hosts"].items()} == {F1: "ok", F2: "changed", F3: "rolled_back"}
    assert "rolled back" in doc["hosts"][F3]["message"], doc["hosts"][F3]
    assert file_sha(F2) == sha256_text(rendered(fleet, F2))
    assert file_sha(F3) == sha256_text(SEED_CONFIG.read_text()), "f3 must be back on its previous file"
    assert delta(logins(), before) == {F1: 1, F2: 1, F3: 1}, "one SSH connection per host per run"


def test_rolling_serial_one_max_fail_zero_stops_after_the_first_failure(fleet, realtime_down_on_f3, tmp_path):
    report = tmp_path / "report.json"
    spec(F2).kong_config_path.write_text(SEED_CONFIG.read_text())  # f2 would change if it ran
    untouched = {F1: file_sha(F1), F2: file_sha(F2)}
    before = logins()

    proc = fab(
        fleet, "deploy-kong", "-H", f"{F3},{F1},{F2}", "--serial", "1", "--max-fail", "0", "--report", str(report)
    )

    assert proc.returncode == 1, proc.stdout + proc.stderr
    rows = recap_rows(proc.stdout)
    assert rows[F3][0] == "rolled_back"
    for name in (F1, F2):
        assert "not run" in " ".join(rows[name]), rows[name]
        assert json.loads(report.read_text())["hosts"][name]["message"].startswith("not run")
    assert delta(logins(), before) == {F1: 0, F2: 0, F3: 1}, "hosts after the failure are never contacted"
    assert {F1: file_sha(F1), F2: file_sha(F2)} == untouched


def test_a_fleet_no_op_is_one_connection_and_one_session_per_host(fleet):
    converge(fleet, F1, F2, F3)
    before_logins, before_sessions = logins(), sessions()

    proc = fab(fleet, "deploy-kong", "--group", "fleet", "--parallel", "3")

    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert all(row[0] == "ok" for row in recap_rows(proc.stdout).values())
    assert delta(logins(), before_logins) == {F1: 1, F2: 1, F3: 1}
    # A no-op is one session: the look (file hash + stat, lock state; the containers are
    # inspected over the Docker API meanwhile), which then appends the audit line it is sent.
    assert delta(sessions(), before_sessions) == {F1: 1, F2: 1, F3: 1}


def test_a_no_op_never_loads_docker_py_or_the_validator(fleet):
    # Speed: the look reads the containers with the standard library's HTTP client, and
    # nothing is validated when nothing changes (docker-py + requests + urllib3 and the Kong
    # validator cost ~120 ms of start-up that a scheduled no-op run would pay every time).
    converge(fleet, F1)
    wait_until_docker_says_healthy(F1)  # the steady state
    env = {**os.environ, "SUPAKONG_HOST_ALLOWLIST": "sandbox*", "SUPAKONG_INVENTORY": str(fleet["inventory"])}
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", str(BIN / "fab"), "deploy-kong", "-H", F1, "--no-verify"],
        capture_output=True, text=True, cwd=REPO, env=env, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0 and "no change" in proc.stdout, proc.stdout + proc.stderr[-2000:]
    imported = {line.rsplit("|", 1)[1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    assert "supakong.deploy" in imported and "paramiko" in imported
    assert not {"docker", "requests", "urllib3", "supakong.kong"} & imported


def test_a_change_restarts_and_reads_logs_without_docker_py(fleet, tmp_path):
    # The restart, the waits, the execs and the two log reads are plain requests too.
    variant = tmp_path / "variant.yml"
    variant.write_text(rendered(fleet, F1) + "# a change\n")
    env = {**os.environ, "SUPAKONG_HOST_ALLOWLIST": "sandbox*", "SUPAKONG_INVENTORY": str(fleet["inventory"])}
    try:
        proc = subprocess.run(
            [sys.executable, "-X", "importtime", str(BIN / "fab"), "deploy-kong", "-H", F1, "--file", str(variant),
             "--no-verify", "--restart"],
            capture_output=True, text=True, cwd=REPO, env=env, timeout=180,
        )  # fmt: skip
    finally:
        converge(fleet, F1)
    assert proc.returncode == 0 and "restarted" in proc.stdout, proc.stdout + proc.stderr[-2000:]
    assert "logs since the restart" in proc.stdout
    imported = {line.rsplit("|", 1)[1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    assert "supakong.kong" in imported, "a change is validated"
    assert not {"docker", "requests", "urllib3"} & imported


def test_rollback_kong_and_doctor_use_the_light_engine_client_too(fleet, tmp_path):
    # rollback-kong restarts and waits like a deploy; doctor reads the containers, what Kong
    # loaded and the mount's sha256: neither needs docker-py's ~0.1 s of imports.
    variant = tmp_path / "variant.yml"
    variant.write_text(rendered(fleet, F1) + "# a change to roll back\n")
    env = {**os.environ, "SUPAKONG_HOST_ALLOWLIST": "sandbox*", "SUPAKONG_INVENTORY": str(fleet["inventory"])}

    def fab(*args: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
        proc = subprocess.run(
            [sys.executable, "-X", "importtime", str(BIN / "fab"), *args],
            capture_output=True, text=True, cwd=REPO, env=env, timeout=180,
        )  # fmt: skip
        lines = proc.stderr.splitlines()
        return proc, {line.rsplit("|", 1)[1].strip() for line in lines if line.startswith("import time:")}

    try:
        deployed, _ = fab("deploy-kong", "-H", F1, "--file", str(variant), "--no-verify")
        assert deployed.returncode == 0, deployed.stdout + deployed.stderr[-2000:]
        rolled, imported = fab("rollback-kong", "-H", F1, "--no-verify")
        assert rolled.returncode == 0 and "restored" in rolled.stdout, rolled.stdout + rolled.stderr[-2000:]
        assert "supakong.rollback" in imported and not {"docker", "requests", "urllib3"} & imported
        doctor, imported = fab("doctor", "-H", F1)
        assert "supakong.doctor" in imported and not {"docker", "requests", "urllib3"} & imported, doctor.stdout
        assert "Traceback" not in doctor.stdout + doctor.stderr
    finally:
        converge(fleet, F1)


def test_deploy_kong_verifies_with_verify_realtimes_overrides(fleet, tmp_path):
    variant = tmp_path / "variant.yml"
    variant.write_text(rendered(fleet, F1) + "# verified on another channel\n")
    env = {**os.environ, "SUPAKONG_HOST_ALLOWLIST": "sandbox*", "SUPAKONG_INVENTORY": str(fleet["inventory"])}
    argv = [str(BIN / "fab"), "deploy-kong", "-H", F1, "--file", str(variant)]
    try:
        proc = subprocess.run(
            [*argv, "--channel", "deploy-probe", "--table", "", "--vsn", "1.0.0"],
            capture_output=True, text=True, cwd=REPO, env=env, timeout=180,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stdout + proc.stderr[-2000:]
        assert "vsn=1.0.0" in proc.stdout and "phx_reply ok for realtime:deploy-probe" in proc.stdout
        assert "postgres_changes" not in proc.stdout.split("phx_reply ok", 1)[1].split("\n", 1)[0]
        refused = subprocess.run([*argv, "--vsn", "3.0.0"], capture_output=True, text=True, cwd=REPO, env=env)
        said = refused.stdout + refused.stderr
        assert refused.returncode == 1 and "--vsn: expected 1.0.0 or 2.0.0, got '3.0.0'" in said
    finally:
        converge(fleet, F1)


def test_a_no_op_converge_runs_one_remote_command_that_also_writes_the_audit_line(fleet, monkeypatch):
    converge(fleet, F1)
    opened: list[HostConnection] = []
    used: list[str] = []

    class CountingConnection(HostConnection):
        def __enter__(self) -> HostConnection:
            opened.append(self)
            return super().__enter__()

        def sftp(self):  # type: ignore[no-untyped-def]
            used.append("sftp")
            return super().sftp()

        def docker(self):  # type: ignore[no-untyped-def]
            used.append("docker")
            return super().docker()

    monkeypatch.setattr(supakong.deploy, "HostConnection", CountingConnection)
    hosts = fleet["hosts"]
    assert isinstance(hosts, dict)

    result = deploy_host(hosts[F1], DeployOptions(), BufferOutput())

    assert result.status == "ok" and result.plan == "no change"
    [conn] = opened
    # One command: the look (file hash + stat and the lock, with the container inspections
    # over the Docker API running concurrently with it), which then appends the audit line
    # sent on its stdin: one session (its round trips: the test below).
    assert conn.commands_run == 1
    assert "sftp" not in used, "a no-op uploads nothing"
    last = json.loads((spec(F1).kong_config_path.parent / ".supakong" / "audit.log").read_text().splitlines()[-1])
    assert last["result"] == "ok" and last["plan"] == "no change" and last["task"] == "deploy-kong"


def proxied_host(fleet: dict[str, object], tmp_path: Path, port: int):
    """F1's host config dialling 127.0.0.1:``port`` (where bench's delaying proxy listens)."""
    hosts = fleet["hosts"]
    assert isinstance(hosts, dict)
    return dialling_local_port(hosts[F1], spec(F1).known_hosts_path, tmp_path, port)


def counted_deploy(monkeypatch, host, options: DeployOptions, rtt: float = 0.3) -> tuple[HostResult, dict[str, int]]:
    """Deploy to ``host`` through bench's delaying proxy: the result, and the round trips its
    client had waited for at the end of authentication ("authenticated"), at each deploy
    checkpoint it passed (supakong.faults: "looked", "restarted", "up"…) and at the end of
    the run, before the connection's own closing ("end"). They are the proxy's flights (see
    bench/latency.py): no clock is read; ``rtt`` only keeps causes apart."""
    flights: dict[str, int] = {}
    with delayed_forward(spec(F1).vps_addr, rtt * 1000, host.ssh_port) as proxy:

        def mark(name: str) -> None:
            flights.setdefault(name, proxy.round_trips()[-1])

        class CountedConnection(HostConnection):
            def open(self) -> HostConnection:
                super().open()
                mark("authenticated")
                return self

            def close(self) -> None:
                mark("end")
                super().close()

        monkeypatch.setattr(supakong.deploy, "HostConnection", CountedConnection)
        monkeypatch.setattr(supakong.deploy, "checkpoint", mark)
        result = deploy_host(host, options, BufferOutput())
        assert proxy.accepted() == 1, "the run went through the delay, on one connection"
    return result, flights


def test_a_no_op_converge_makes_two_round_trips_after_the_handshake(fleet, monkeypatch, tmp_path):
    """The look's session and the Docker Engine channel open with the authentication; then
    the look (command + inspections), then the audit line's exit."""
    converge(fleet, F1)
    wait_until_docker_says_healthy(F1)  # not "starting": a no-op would wait for it
    host = proxied_host(fleet, tmp_path, free_port())
    result, flights = counted_deploy(monkeypatch, host, DeployOptions())

    assert result.status == "ok" and result.plan == "no change", result.message
    assert flights["end"] - flights["authenticated"] == 2, flights


def test_a_change_runs_its_read_only_steps_while_it_takes_the_lock(fleet, monkeypatch, tmp_path):
    """A change's round trips after the handshake, apart from the polls while Kong starts
    (their number follows how long Kong takes to start: the benchmark times them). Before
    the restart: 9, since `kong config parse` and the probe of Kong's port run while the lock
    is taken and the replace's session opens while the preflight ends (12 when each step
    waited for the one before); 10 when the host's CPU is so slow that Kong's answer to the
    parse comes after the step beside it was sent. Once Kong is up: the logs, then the
    audit line on a session that opened meanwhile; the container's content was checked
    while Kong started."""
    host = proxied_host(fleet, tmp_path, free_port())
    converge(fleet, F1)
    spec(F1).kong_config_path.write_text(rendered(fleet, F1) + "# edited on the server\n")
    wait_until_docker_says_healthy(F1)  # the converge's restart is not part of the count
    result, flights = counted_deploy(monkeypatch, host, DeployOptions(verify=False, restart=True))

    assert result.status == "changed" and result.plan == "replace file + load into Kong (file differs)"
    assert flights["restarted"] - flights["authenticated"] <= 10, flights
    assert flights["end"] - flights["up"] == 2, flights


# -- the scheduled, unattended redeploy --------------------------------------------------
def installed_exec_start(fleet: dict[str, object], root: Path, log: Path, *extra: str) -> list[str]:
    """Install the units under ``root`` (checked by systemd-analyze) and return ExecStart's argv."""
    proc = fab(
        fleet,
        "schedule-redeploy",
        "--every",
        "15m",
        "--install",
        "--as-root",  # the test runs it as root: the checkout, venv and inventory are root's
        "--root",
        str(root),
        "--log",
        str(log),
        *extra,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    units = root / "etc/systemd/system"
    service, timer = units / "supakong-redeploy.service", units / "supakong-redeploy.timer"
    verify = subprocess.run(["systemd-analyze", "verify", str(service), str(timer)], capture_output=True, text=True)
    assert verify.returncode == 0 and not verify.stderr.strip(), verify.stderr
    line = next(row for row in service.read_text().splitlines() if row.startswith("ExecStart="))
    return parse_exec_line(line.removeprefix("ExecStart="))


def run_unattended(argv: list[str]) -> subprocess.CompletedProcess[str]:
    """As systemd runs a system service: another directory, a minimal environment."""
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": os.environ.get("HOME", "/root"), "LANG": "C.UTF-8"}
    return subprocess.run(argv, cwd="/", env=env, capture_output=True, text=True, timeout=300)


def test_the_scheduled_job_corrects_drift_on_one_host_and_leaves_the_others_alone(fleet, tmp_path):
    converge(fleet, F1, F2, F3)
    log = tmp_path / "state" / "redeploy.log"
    argv = installed_exec_start(fleet, tmp_path / "root", log)
    assert "SUPAKONG_HOST_ALLOWLIST=sandbox*" in argv and f"SUPAKONG_INVENTORY={fleet['inventory']}" in argv
    path = spec(F2).kong_config_path
    path.write_text(path.read_text() + "# edited by hand on the server\n")  # drift
    others = {n: (file_sha(n), kong_started_at(n)) for n in (F1, F3)}
    f2_started = kong_started_at(F2)

    proc = run_unattended(argv)

    assert proc.returncode == 0, proc.stdout + proc.stderr
    # Drift is corrected through Kong's Admin API: the file is replaced, Kong not restarted.
    assert file_sha(F2) == sha256_text(rendered(fleet, F2)) and kong_started_at(F2) == f2_started
    assert {n: (file_sha(n), kong_started_at(n)) for n in (F1, F3)} == others
    [line] = log.read_text().splitlines()
    record = json.loads(line)
    assert record["task"] == "redeploy" and record["status"] == "changed" and record["exit_code"] == 0
    assert record["hosts"][F2]["method"] == "reloaded"
    assert record["drift_corrected"] == [F2] and record["counts"] == {"ok": 2, "changed": 1}
    assert record["hosts"][F2]["verify"] == "SUBSCRIBED"


class _Hook(BaseHTTPRequestHandler):
    bodies: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        _Hook.bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def webhook() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    _Hook.bodies = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/supakong"
    server.shutdown()
    server.server_close()


def test_a_failed_scheduled_run_exits_non_zero_logs_and_posts_the_webhook(
    fleet, realtime_down_on_f3, webhook, tmp_path
):
    converge(fleet, F1, F2)
    path = spec(F3).kong_config_path
    path.write_text(rendered(fleet, F3) + "# drifted\n")
    log = tmp_path / "redeploy.log"
    argv = installed_exec_start(fleet, tmp_path / "root", log, "--webhook", webhook)

    proc = run_unattended(argv)

    assert proc.returncode == 1, proc.stdout + proc.stderr
    record = json.loads(log.read_text().splitlines()[-1])
    assert record["failed"] == [F3] and record["status"] == "rolled_back" and record["webhook"] == "sent"
    [body] = _Hook.bodies
    assert body["failed"] == [F3] and body["hosts"][F3]["status"] == "rolled_back"
    assert body["hosts"][F1]["status"] == "ok"
    for secret in load_secrets(spec(F3).secrets_path).values.values():
        assert secret not in log.read_text() and secret not in json.dumps(body)
