"""Pure planning and parsing: what a deploy decides from what it saw, no host needed."""

from __future__ import annotations

import json
import os
import shlex

import pytest

from supakong.container import ContainerState, is_crash_looping, is_up, parse_docker_time, state_from_inspect
from supakong.hostlock import LockOwner, describe_holder, is_stale
from supakong.logs import format_log_lines, interleave, parse_log_lines
from supakong.look import LockStatus, look_argv, parse_lock, split_sections
from supakong.plan import HostState, plan_deploy, unified_diff
from supakong.remote_file import ABSENT, RemoteFile, backup_names, backup_path, parse_stat, replace_argv, temp_path
from supakong.report import HostResult, exit_code, recap_lines, report_json
from supakong.secrets import register_secret

SHA = "a" * 64
OTHER = "b" * 64


def kong(running=True, started=1000.0, **kw) -> ContainerState:
    return ContainerState(
        name="kong", exists=True, status="running" if running else "exited", running=running, started_at=started, **kw
    )


def state(file_sha=SHA, mtime=900, **kong_kw) -> HostState:
    file = RemoteFile("/srv/k.yml", file_sha != ABSENT, file_sha, 10, 0o640, 0, 0, mtime)
    return HostState(file=file, kong=kong(**kong_kw), realtime=ContainerState("rt", True, running=True))


@pytest.mark.parametrize(
    "seen, replace, restart, reason",
    [
        (state(), False, False, None),
        (state(file_sha=OTHER), True, True, "file differs"),
        (state(file_sha=ABSENT), True, True, "file is absent"),
        (state(running=False), False, True, "Kong is exited"),
        (state(mtime=1001), False, True, "restart pending"),
        (state(mtime=1000), False, False, None),
        # Written in the same second as Kong started, but after it: still a pending restart.
        (state(mtime=1000.5, started=1000.25), False, True, "restart pending"),
        (state(health="unhealthy"), False, True, "unhealthy"),
        (state(health="starting"), False, False, None),
    ],
    ids=[
        "same-file-running-is-a-no-op",
        "changed-file",
        "absent-file",
        "kong-down-restarts",
        "file-newer-than-kong-restarts",
        "same-second-is-not-pending",
        "written-after-kong-started-in-the-same-second-restarts",
        "unhealthy-restarts",
        "starting-is-waited-for-not-restarted",
    ],
)
def test_plan_replaces_and_restarts_only_when_needed(seen, replace, restart, reason):
    plan = plan_deploy(SHA, seen)
    assert (plan.replace, plan.restart) == (replace, restart)
    if reason:
        assert reason in plan.describe()
    else:
        assert plan.describe() == "no change"


def test_diff_masks_secrets():
    register_secret("s3cret-value-xyz")
    diff = unified_diff("key: old\n", "key: s3cret-value-xyz\n", "/srv/k.yml")
    assert "s3cret-value-xyz" not in diff and "+key: ***" in diff


def test_stat_output_parses_and_absent_file_is_a_state():
    assert parse_stat("/p", "absent\n") == RemoteFile("/p", False)
    f = parse_stat("/p", f"{SHA}\n12 640 999 995 1795687342\n")
    assert (f.sha256, f.size, f.mode, f.uid, f.mtime) == (SHA, 12, 0o640, 999, 1795687342)
    assert parse_stat("/p", f"{SHA}\n12 640 999 995 1795687342.250000000\n").mtime == 1795687342.25


def test_remote_commands_are_argv_lists_that_survive_quoting():
    hostile = "/srv/a b/$(reboot);`id`.yml"
    argv = replace_argv(hostile, temp_path(hostile), backup_path(hostile, "STAMP"), SHA, 0o640, 5, "f" * 64)
    assert shlex.split(shlex.join(argv)) == argv
    assert argv[4] == hostile and argv[7] == SHA and argv[8] == "640"
    assert backup_path("/srv/api/kong.yml", "S") == "/srv/api/.supakong/backups/kong.yml.S"
    assert temp_path("/srv/api/kong.yml").startswith("/srv/api/.kong.yml.supakong-")


def test_look_output_sections_parse_into_file_realpath_and_lock():
    text = f'### file\n{SHA}\n1 640 0 0 5\n### realpath\n/srv/real/k.yml\n### lock\nheld 42\n{{"user": "bob"}}\n'
    sections = split_sections(text)
    assert parse_stat("/p", sections["file"]).sha256 == SHA
    assert sections["realpath"] == "/srv/real/k.yml"
    assert parse_lock(sections["lock"]) == LockStatus("held", 42, '{"user": "bob"}')
    assert parse_lock("free") == LockStatus("free") and parse_lock("acquired") == LockStatus("acquired")
    argv = look_argv("/p", "/p.lock", "{}")
    assert argv[:2] == ["sh", "-c"] and argv[-3:] == ["/p", "/p.lock", "{}"]


def test_inspect_json_becomes_a_container_state():
    inspect = {
        "Name": "/kong",
        "State": {
            "Status": "running",
            "Running": True,
            "StartedAt": "2026-11-26T10:00:00.5Z",
            "Health": {"Status": "healthy"},
        },
        "RestartCount": 2,
        "Config": {"Image": "kong:2.8.1", "Env": ["KONG_PLUGINS=cors,acl"]},
        "Mounts": [{"Source": "/srv/k.yml", "Destination": "/home/kong/temp.yml"}],
    }
    s = state_from_inspect("kong", inspect)
    assert s.health == "healthy" and s.restart_count == 2 and s.env["KONG_PLUGINS"] == "cors,acl"
    assert s.mount_source("/home/kong/temp.yml") == "/srv/k.yml" and s.image == "kong:2.8.1"


def test_docker_times_parse_with_nanoseconds_and_zero_time():
    assert parse_docker_time("2026-11-26T10:00:00.123456789Z") == pytest.approx(1795687200.123456789)
    assert parse_docker_time("0001-01-01T00:00:00Z") == 0.0


def test_up_means_restarted_running_healthy_and_settled():
    fresh = kong(started=2000.0, health="healthy")
    assert not is_up(fresh, since=2000.0, settle=2, now=2005)  # not restarted since
    assert not is_up(fresh, since=1000.0, settle=2, now=2001)  # not settled yet
    assert is_up(fresh, since=1000.0, settle=2, now=2002.5)
    assert not is_up(kong(started=2000.0, health="starting"), since=1000.0, settle=2, now=2100)


def test_crash_loop_is_seen_from_restarting_or_more_restarts():
    assert is_crash_looping(kong(started=2000.0, restarting=True), restarts_before=0, since=1000.0)
    assert is_crash_looping(kong(started=2000.0, restart_count=3), restarts_before=1, since=1000.0)
    assert not is_crash_looping(kong(started=500.0), restarts_before=0, since=1000.0)


def test_state_from_inspect_of_a_missing_health_is_none():
    s = state_from_inspect("k", {"State": {"Running": True, "Status": "running"}, "Config": {}})
    assert s.health is None and s.running


def test_stale_lock_rules():
    me = os.uname().nodename
    assert is_stale(LockStatus("held", 10**6, "{}"), stale_after=900)
    assert not is_stale(LockStatus("held", 5, json.dumps({"machine": "other", "pid": 1})), 900, machine=me)
    assert not is_stale(LockStatus("held", 5, json.dumps({"machine": me, "pid": os.getpid()})), 900, machine=me)
    assert is_stale(LockStatus("held", 5, json.dumps({"machine": me, "pid": 2**22 + 12345})), 900, machine=me)
    assert not is_stale(LockStatus("free"), 900)
    owner = LockOwner.current("deploy-kong")
    assert describe_holder(owner.to_json()).startswith(f"{owner.user}@{owner.machine} pid {owner.pid}")


def test_logs_interleave_by_time_and_mark_known_failures():
    kong_lines = parse_log_lines("kong", b"2026-11-26T10:00:02.000000000Z error parsing declarative config file x\n")
    rt_lines = parse_log_lines("realtime", b"2026-11-26T10:00:01.000000000Z TenantNotFound: Tenant not found: 10\n")
    rows = format_log_lines(interleave(kong_lines, rt_lines))
    assert rows[0].startswith("! [realtime") and "tenant mismatch" in rows[0]
    assert rows[1].startswith("! [kong") and "refused the declarative config" in rows[1]


def test_kong_access_log_apikeys_are_masked():
    line = parse_log_lines(
        "kong", b'2026-11-26T10:00:00Z 10.0.0.1 - - "GET /realtime/v1/websocket?apikey=abc.def&vsn=2.0.0"\n'
    )
    assert "abc.def" not in line[0].text and "apikey=***" in line[0].text


def test_exit_code_and_recap_follow_the_worst_host():
    results = {"a": HostResult("a", "ok"), "b": HostResult("b", "changed"), "c": HostResult("c", "rolled_back")}
    assert exit_code(results) == 1
    assert exit_code({"a": HostResult("a", "pending")}) == 2
    assert exit_code({"a": HostResult("a", "changed")}) == 0
    assert any(line.strip().startswith("c  rolled_back") for line in recap_lines(results))
    assert json.loads(report_json("deploy-kong", results))["status"] == "rolled_back"


def test_the_healthcheck_docker_would_run_is_the_command_supakong_probes_with():
    from supakong.container import healthcheck_argv

    assert healthcheck_argv(["CMD", "kong", "health"]) == ("kong", "health")
    assert healthcheck_argv(["CMD-SHELL", "nc -w 1 127.0.0.1 8000"]) == ("/bin/sh", "-c", "nc -w 1 127.0.0.1 8000")
    assert healthcheck_argv(["NONE"]) == ()
    assert healthcheck_argv(None) == ()
    assert healthcheck_argv(["CMD"]) == ()


def test_inspect_carries_the_healthcheck_command():
    data = {"State": {"Running": True, "Health": {"Status": "starting"}},
            "Config": {"Healthcheck": {"Test": ["CMD", "kong", "health"], "Interval": 30_000_000_000}}}  # fmt: skip
    assert state_from_inspect("kong", data).healthcheck == ("kong", "health")
    assert state_from_inspect("kong", {"State": {}, "Config": {}}).healthcheck == ()


def test_backups_are_the_config_names_exact_stamped_copies_newest_stamp_first():
    listed = [
        "kong.yml.20260101T000000000000Z",
        "kong.yml.20261231T235959999999Z",
        "kong.yml.bak.20261231T235959999999Z",  # another file's
        "old-kong.yml.20261231T235959999999Z",
        "kong.yml.S1",
        "kong.yml.20260601T000000000000Z.swp",
    ]
    assert backup_names("kong.yml", listed) == ["kong.yml.20261231T235959999999Z", "kong.yml.20260101T000000000000Z"]
    assert backup_names("k.yml", ["kXyml.20260101T000000000000Z"]) == [], "a dot is a dot"
