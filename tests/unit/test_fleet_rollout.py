"""Going through many hosts: parallel bound, rolling batches, the failure budget, and every
host's outcome in the recap, the JSON report and the exit code (no network)."""

from __future__ import annotations

import json
import threading
import time

import pytest

from supakong.deploy import RolledBackError
from supakong.errors import DeployError, TransportError
from supakong.fleet import NOT_RUN, Rollout, run_on_hosts
from supakong.inventory import HostConfig, load_inventory
from supakong.report import BufferOutput, HostResult, Output, exit_code, recap_lines, report_json
from supakong.sandbox.inventory import spec_for, write_sandbox_inventory


@pytest.fixture(scope="module")
def hosts(tmp_path_factory: pytest.TempPathFactory) -> list[HostConfig]:
    """Six sandbox-named hosts (never contacted here)."""
    path = tmp_path_factory.mktemp("inv") / "hosts.yml"
    write_sandbox_inventory(path, [spec_for(f"sandbox-u{i}", 200 + i) for i in range(1, 7)])
    return list(load_inventory(path).hosts.values())


def scripted(outcomes: dict[str, str], seen: list[str] | None = None, delay: float = 0.0):
    """An action whose outcome per host is scripted: ok, changed, fail, rollback, crash."""

    def action(host: HostConfig, out: Output) -> HostResult:
        if seen is not None:
            seen.append(host.name)
        time.sleep(delay)
        what = outcomes.get(host.name, "ok")
        if what == "fail":
            raise TransportError(f"{host.name}: cannot connect")
        if what == "rollback":
            raise RolledBackError(f"{host.name}: verification failed; rolled back")
        if what == "crash":
            raise KeyError("bug")
        return HostResult(host=host.name, status=what)

    return action


def test_a_mixed_fleet_has_every_outcome_in_host_order(hosts):
    outcomes = {hosts[1].name: "changed", hosts[2].name: "rollback", hosts[3].name: "fail", hosts[4].name: "crash"}
    results = run_on_hosts(hosts, scripted(outcomes), BufferOutput())
    assert list(results) == [h.name for h in hosts]
    assert [r.status for r in results.values()] == ["ok", "changed", "rolled_back", "failed", "failed", "ok"]
    assert "internal error: KeyError" in results[hosts[4].name].message
    assert exit_code(results) == 1


def test_recap_and_json_report_show_each_host(hosts):
    outcomes = {hosts[1].name: "changed", hosts[2].name: "rollback"}
    results = run_on_hosts(hosts[:3], scripted(outcomes), BufferOutput())
    recap = recap_lines(results)
    assert recap[1] == "RECAP"
    for host, status in zip(hosts[:3], ("ok", "changed", "rolled_back"), strict=True):
        assert any(row.split()[:2] == [host.name, status] for row in recap)
    report = json.loads(report_json("deploy-kong", results))
    assert report["status"] == "rolled_back"
    assert {h: r["status"] for h, r in report["hosts"].items()} == {
        hosts[0].name: "ok",
        hosts[1].name: "changed",
        hosts[2].name: "rolled_back",
    }


def test_parallel_runs_at_most_n_hosts_at_once(hosts):
    running, peak, lock = 0, 0, threading.Lock()

    def action(host: HostConfig, out: Output) -> HostResult:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.05)
        with lock:
            running -= 1
        return HostResult(host=host.name)

    run_on_hosts(hosts, action, BufferOutput(), Rollout(parallel=2))
    assert peak == 2
    run_on_hosts(hosts, action, BufferOutput(), Rollout(parallel=10))
    assert peak == len(hosts)


def test_serial_one_max_fail_zero_stops_at_the_first_failure_and_marks_the_rest_not_run(hosts):
    seen: list[str] = []
    results = run_on_hosts(
        hosts, scripted({hosts[1].name: "rollback"}, seen), BufferOutput(), Rollout(serial=1, max_fail="0")
    )
    assert seen == [hosts[0].name, hosts[1].name]
    assert [r.status for r in results.values()][:2] == ["ok", "rolled_back"]
    for host in hosts[2:]:
        assert results[host.name].status == NOT_RUN and results[host.name].message.startswith("not run")
    assert exit_code(results) == 1


def test_rolling_batches_go_one_after_another(hosts):
    seen: list[str] = []
    run_on_hosts(hosts, scripted({}, seen, delay=0.01), BufferOutput(), Rollout(parallel=10, serial=2))
    batches = [set(seen[i : i + 2]) for i in range(0, len(seen), 2)]
    assert batches == [{h.name for h in hosts[i : i + 2]} for i in range(0, len(hosts), 2)]


def test_a_failure_percentage_tolerates_that_many_failed_hosts(hosts):
    outcomes = {hosts[0].name: "fail"}
    results = run_on_hosts(hosts, scripted(outcomes), BufferOutput(), Rollout(serial=1, max_fail="20%"))
    assert all(r.status in ("ok", "failed") for r in results.values())  # 1 of 6 <= 20%: goes on
    outcomes[hosts[1].name] = "fail"
    results = run_on_hosts(hosts, scripted(outcomes), BufferOutput(), Rollout(serial=1, max_fail="20%"))
    assert [r.message.startswith("not run") for r in results.values()] == [False, False, True, True, True, True]


def test_a_host_outside_the_allowlist_fails_without_running(hosts, monkeypatch):
    monkeypatch.setenv("SUPAKONG_HOST_ALLOWLIST", "somewhere-else*")
    seen: list[str] = []
    results = run_on_hosts(hosts[:1], scripted({}, seen), BufferOutput())
    assert seen == [] and "not allowed by SUPAKONG_HOST_ALLOWLIST" in results[hosts[0].name].message


@pytest.mark.parametrize(
    ("kwargs", "flag"),
    [
        ({"parallel": 0}, "--parallel"),
        ({"serial": "0"}, "--serial"),
        ({"serial": "x"}, "--serial"),
        ({"max_fail": "x"}, "--max-fail"),
        ({"max_fail": "120%"}, "--max-fail"),
        ({"max_fail": "-1"}, "--max-fail"),
    ],
)
def test_bad_rollout_flags_are_one_line_errors_naming_the_flag(kwargs, flag):
    with pytest.raises(DeployError, match=flag):
        Rollout(**kwargs)


def test_flags_that_arrive_as_strings_are_numbers():
    rollout = Rollout(parallel="3", serial="2", max_fail="25%")  # type: ignore[arg-type]
    assert (rollout.parallel, rollout.serial) == (3, 2) and rollout.failure_budget(8) == 2
