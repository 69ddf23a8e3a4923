"""Scheduling a redeploy: intervals, the systemd units (checked by systemd-analyze), the
ExecStart quoting, the cron line, the run record and the webhook."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from supakong.errors import FenceError
from supakong.redeploy import append_log, default_log_path, post_webhook, run_record
from supakong.report import HostResult
from supakong.schedule import (
    Schedule,
    ScheduleError,
    cron_line,
    cron_schedule,
    exec_line,
    install_units,
    parse_exec_line,
    parse_interval,
    redeploy_command,
    render_units,
    systemd_timespan,
    unit_dir,
)

SUPAKONG = "/opt/supakong/.venv/bin/supakong"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("15m", 900), ("1h", 3600), ("1h30m", 5400), ("90s", 90), ("1d", 86400), (" 2H ", 7200)],
)
def test_intervals_read_like_people_write_them(text, seconds):
    assert parse_interval(text) == seconds


@pytest.mark.parametrize("text", ["", "15", "15 minutes", "m15", "-5m", "1.5h", "30s"])
def test_nonsense_or_sub_minute_intervals_are_refused_naming_the_flag(text):
    with pytest.raises(ScheduleError, match="--every"):
        parse_interval(text)


@pytest.mark.parametrize(
    ("seconds", "span"), [(900, "15min"), (3600, "1h"), (5400, "1h30min"), (90, "1min30s"), (86400, "1d")]
)
def test_time_spans_are_written_the_way_systemd_reads_them(seconds, span):
    assert systemd_timespan(seconds) == span


@pytest.mark.parametrize(
    ("seconds", "fields"),
    [(60, "* * * * *"), (900, "*/15 * * * *"), (3600, "0 * * * *"), (6 * 3600, "0 */6 * * *"), (86400, "0 0 * * *")],
)
def test_cron_schedules_for_even_intervals(seconds, fields):
    assert cron_schedule(seconds) == fields


@pytest.mark.parametrize("seconds", [7 * 60, 90 * 60, 5 * 3600, 2 * 86400])
def test_cron_refuses_intervals_it_cannot_run_evenly(seconds):
    with pytest.raises(ScheduleError, match="cron cannot"):
        cron_schedule(seconds)


def command(**kwargs) -> list[str]:
    return redeploy_command(SUPAKONG, Path("/etc/supakong/hosts.yml"), log=Path("/var/log/redeploy.log"), **kwargs)


def test_the_command_is_self_contained_and_passes_the_allowlist_through_when_set():
    argv = command(group="edge", environ={"SUPAKONG_HOST_ALLOWLIST": "sandbox*"})
    assert argv == [
        "/usr/bin/env",
        "SUPAKONG_INVENTORY=/etc/supakong/hosts.yml",
        "SUPAKONG_HOST_ALLOWLIST=sandbox*",
        SUPAKONG,
        "redeploy",
        "--group",
        "edge",
        "--log",
        "/var/log/redeploy.log",
    ]
    assert not any("ALLOWLIST" in w for w in command(environ={}))


def test_an_empty_allowlist_is_refused_instead_of_scheduling_unfenced_runs():
    with pytest.raises(FenceError, match="SUPAKONG_HOST_ALLOWLIST is set but empty"):
        command(environ={"SUPAKONG_HOST_ALLOWLIST": " "})


@given(st.lists(st.text(alphabet=st.characters(min_codepoint=32, exclude_characters="\x7f"), min_size=1), min_size=1))
def test_exec_start_quoting_round_trips_any_printable_argv(argv):
    assert parse_exec_line(exec_line(argv)) == argv


def test_exec_start_doubles_specifiers_and_dollars_and_quotes_spaces():
    line = exec_line(["/usr/bin/env", "A=100%", "--webhook", "http://h/x?a=$b", "my file"])
    assert line == '/usr/bin/env "A=100%%" --webhook "http://h/x?a=$$b" "my file"'


def test_exec_start_refuses_control_characters():
    with pytest.raises(ScheduleError):
        exec_line(["/bin/echo", "two\nlines"])


def every_15m(**kwargs) -> Schedule:
    return Schedule(argv=tuple(command(environ={"SUPAKONG_HOST_ALLOWLIST": "sandbox*"})), every=900, **kwargs)


def test_service_is_a_oneshot_with_a_timeout_running_the_exact_command():
    units = render_units(every_15m(timeout=300))
    service = units["supakong-redeploy.service"]
    assert "Type=oneshot" in service and "TimeoutStartSec=5min" in service
    exec_start = next(line for line in service.splitlines() if line.startswith("ExecStart="))
    assert parse_exec_line(exec_start.removeprefix("ExecStart=")) == list(every_15m().argv)


def test_timer_runs_every_interval_after_boot_persistently_with_a_randomized_delay():
    timer = render_units(every_15m())["supakong-redeploy.timer"]
    for line in ("OnBootSec=15min", "OnUnitActiveSec=15min", "Persistent=true", "RandomizedDelaySec=1min30s"):
        assert line in timer.splitlines()
    assert "Unit=supakong-redeploy.service" in timer and "WantedBy=timers.target" in timer


def test_calendar_timer_uses_on_calendar_instead():
    timer = render_units(Schedule(argv=("/bin/true",), on_calendar="*-*-* 03:00", name="nightly"))["nightly.timer"]
    assert "OnCalendar=*-*-* 03:00" in timer and "OnUnitActiveSec" not in timer and "Unit=nightly.service" in timer


def test_a_schedule_needs_exactly_one_of_every_or_calendar():
    with pytest.raises(ScheduleError):
        Schedule(argv=("/bin/true",))
    with pytest.raises(ScheduleError):
        Schedule(argv=("/bin/true",), every=900, on_calendar="daily")


def test_system_units_run_as_the_named_user():
    assert "User=deploy" in render_units(every_15m(user="deploy"))["supakong-redeploy.service"].splitlines()
    assert "User=" not in render_units(every_15m())["supakong-redeploy.service"]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
@pytest.mark.parametrize(
    "schedule",
    [
        Schedule(argv=("/usr/bin/env", "SUPAKONG_INVENTORY=/x y/hosts.yml", "/bin/true", "redeploy"), every=900),
        Schedule(argv=("/bin/true", "--webhook", "http://127.0.0.1:9/h?t=1%2F&x=$y"), on_calendar="*-*-* 03:00"),
    ],
)
def test_systemd_analyze_verify_accepts_the_units_without_a_warning(schedule, tmp_path):
    paths = install_units(render_units(schedule), tmp_path)
    proc = subprocess.run(["systemd-analyze", "verify", *map(str, paths)], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stderr.strip() == "", proc.stderr


def test_install_writes_both_units_world_readable_or_private_with_a_webhook(tmp_path):
    units = render_units(every_15m())
    written = install_units(units, tmp_path / "etc/systemd/system")
    assert sorted(p.name for p in written) == ["supakong-redeploy.service", "supakong-redeploy.timer"]
    assert all(p.stat().st_mode & 0o777 == 0o644 for p in written)
    private = install_units(units, tmp_path / "private", private=True)
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in private)


def test_units_go_to_the_system_or_the_user_directory_under_a_root(tmp_path):
    home = Path("/home/alice")
    assert unit_dir(Path("/"), False, home) == Path("/etc/systemd/system")
    assert unit_dir(Path("/"), True, home) == home / ".config/systemd/user"
    assert unit_dir(tmp_path, False, home) == tmp_path / "etc/systemd/system"
    assert unit_dir(tmp_path, True, home) == tmp_path / "home/alice/.config/systemd/user"


def test_cron_line_never_overlaps_and_escapes_percent_signs():
    line = cron_line(900, ["/bin/supakong", "redeploy", "--webhook", "http://h/?a=1%2F"], Path("/run/r.lock"))
    assert line == "*/15 * * * * flock -n /run/r.lock /bin/supakong redeploy --webhook 'http://h/?a=1\\%2F'"


def test_the_redeploy_log_defaults_to_the_xdg_state_directory():
    assert default_log_path({"HOME": "/h", "XDG_STATE_HOME": "/h/.state"}) == Path("/h/.state/supakong/redeploy.log")
    assert default_log_path({"SUPAKONG_REDEPLOY_LOG": "/var/log/x.log"}) == Path("/var/log/x.log")


def mixed_results() -> dict[str, HostResult]:
    return {
        "a": HostResult("a", "ok", plan="no change"),
        "b": HostResult("b", "changed", plan="replace file + load into Kong (file differs)", verify_state="SUBSCRIBED"),
        "c": HostResult("c", "rolled_back", message="failed; key eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoiYW5vbiJ9.x"),
    }


def test_the_run_record_counts_statuses_and_names_drift_and_failures():
    record = run_record(mixed_results(), started=datetime(2026, 11, 26, tzinfo=UTC), seconds=3.2, inventory="/i.yml")
    assert record["status"] == "rolled_back" and record["exit_code"] == 1
    assert record["counts"] == {"ok": 1, "changed": 1, "rolled_back": 1}
    assert record["drift_corrected"] == ["b"] and record["failed"] == ["c"]
    assert record["hosts"]["b"]["verify"] == "SUBSCRIBED"


def test_the_log_gets_one_masked_json_line_per_run(tmp_path):
    log = tmp_path / "state" / "redeploy.log"
    record = run_record(mixed_results(), started=datetime.now(UTC), seconds=1.0, inventory="/i.yml")
    append_log(log, record)
    append_log(log, record)
    lines = log.read_text().splitlines()
    assert len(lines) == 2 and json.loads(lines[0])["status"] == "rolled_back"
    assert "eyJhbGciOiJIUzI1NiJ9" not in log.read_text()
    assert log.stat().st_mode & 0o777 == 0o600


class _Hook(BaseHTTPRequestHandler):
    received: list[tuple[str, dict]] = []
    answer = 204

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Hook.received.append((self.headers["Content-Type"], json.loads(body)))
        self.send_response(_Hook.answer)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def webhook_server():
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    _Hook.received, _Hook.answer = [], 204
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook"
    server.shutdown()
    server.server_close()


def test_the_webhook_receives_the_record_as_json(webhook_server):
    record = run_record(mixed_results(), started=datetime.now(UTC), seconds=1.0, inventory="/i.yml")
    assert post_webhook(webhook_server, record) is None
    [(content_type, body)] = _Hook.received
    assert content_type == "application/json" and body["failed"] == ["c"]


def test_a_webhook_that_answers_an_error_or_is_down_is_reported_not_raised(webhook_server):
    _Hook.answer = 500
    assert post_webhook(webhook_server, {"x": 1}) == "HTTP 500 Internal Server Error"
    assert post_webhook("http://127.0.0.1:1/hook", {"x": 1}, timeout=2) is not None


def test_a_webhook_must_be_http():
    with pytest.raises(ValueError, match="--webhook"):
        post_webhook("file:///etc/passwd", {})
