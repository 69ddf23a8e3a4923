"""Benchmark: supakong against Ansible, pyinfra and a hand-written paramiko loop doing the same
job (render kong-simple.yml, replace it, restart Kong only if it changed) on N sandbox VPSes.

    .venv/bin/python bench/bench.py [--sizes 1,10,30] [--runs 3] [--noop-runs 9] [--rtt-ms 50]   (make bench)

For each N: a no-op converge (every host already has the file) and a change converge (every
host's file was edited, so every tool replaces it; supakong loads it into the running Kong
through its Admin API, ``supakong-restart`` and the other tools restart Kong; one Realtime
WebSocket per host is held through the run and counted if dropped), each tool ``--runs``
times round-robin on the same hosts; then the same with ``--rtt-ms`` of round-trip time added
on the SSH links; N=1 once more with ``--probe-rtt-ms`` (200) added, to count the round
trips per host; then the largest size below the top one again with every sandbox up (the
same idle load as the top size). Each run starts on a quiet machine and records the machine's
CPU seconds too. Prints a markdown table and writes it to bench/results/latest.md (the raw
runs to latest.json: ``--report latest.json`` prints the report again from them).

Fairness: all tools run at the same parallelism (forks/threads = 30, at most N), with strict
host keys, and cold SSH (Ansible's ControlPersist masters are closed between runs). supakong
runs ``deploy-kong --no-verify``: no Realtime WebSocket verification, but it still validates
the file against Kong's schema, takes the host lock, has the running Kong parse it, backs up,
replaces atomically and appends an audit line; a change is posted to Kong's Admin API and
confirmed by its configuration_hash (with ``--restart``: Kong is restarted, waited for until
running and healthy and up 2 s, checked to see the new file, and its logs are printed). The other tools only do
template + ``docker restart``. Each run is checked: files byte-identical to supakong's
render, and exactly the expected number of Kong restarts (0 for a no-op, N for a change).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent))

from harness import Run, measure, sshd_counts  # noqa: E402
from held_sockets import HeldSockets, dropped, hold  # noqa: E402
from latency import DelayProxy, added_rtt, measure_rtt, remove_stale_rules  # noqa: E402
from sandboxes import busy_cores, quiet_healthchecks  # noqa: E402
from stats import (  # noqa: E402
    growth_interval,
    median,
    noise_note,
    paired_interval,
    paired_ratios,
    quotient,
    round_trips,
    span,
)
from tools import TOOLS, WORK, Inputs, close_ansible_masters, commands, ensure_venvs, write_inputs  # noqa: E402

from supakong.container import inspect_container, wait_until_healthy  # noqa: E402
from supakong.render import sha256_text  # noqa: E402
from supakong.sandbox.multi import fleet_down, fleet_specs, fleet_up  # noqa: E402
from supakong.sandbox.stack import docker_client  # noqa: E402

PREFIX, FIRST_INDEX = "sandbox-b", 31
RESULTS = BENCH / "results"


@dataclass
class Cell:
    """All runs of one tool for one (rtt, N, scenario)."""

    runs: list[Run] = field(default_factory=list)
    anomalies: list[str] = field(default_factory=list)

    @property
    def seconds(self) -> list[float]:
        """The runs' wall times, in round order."""
        return [r.seconds for r in self.runs]

    @property
    def median(self) -> float:
        return median(self.seconds)

    def median_of(self, field: str) -> float:
        """The median of another figure of the runs (``cpu_seconds``, ``logins``...)."""
        return median([getattr(r, field) for r in self.runs])


def paired_ratio(top: Cell, bottom: Cell) -> float:
    """The median of ``top``'s time over ``bottom``'s, round by round (the tools of a round
    run back to back, so the machine's slow drifts cancel out); NaN without common rounds."""
    pairs = paired_ratios(top.seconds, bottom.seconds)
    return median(pairs) if pairs else float("nan")


def kong_starts(inputs: Inputs, names: Sequence[str]) -> dict[str, str]:
    """Each host's Kong StartedAt (read from its local Docker socket, not over SSH)."""
    starts = {}
    for name in names:
        spec = inputs.specs[name]
        client = docker_client(spec)
        try:
            starts[name] = client.inspect_container(spec.kong_container)["State"]["StartedAt"]
        finally:
            client.close()
    return starts


def wait_healthy(inputs: Inputs, names: Sequence[str], timeout: float = 60) -> None:
    """Until every Kong is running and its healthcheck passes (probed now, as supakong does):
    a restart's CPU must not leak into the next run."""
    for name in names:
        spec = inputs.specs[name]
        client = docker_client(spec)
        try:
            wait_until_healthy(client, spec.kong_container, timeout=timeout)
        finally:
            client.close()


def wait_docker_healthy(inputs: Inputs, names: Sequence[str], timeout: float = 90) -> None:
    """Until Docker itself reports every Kong healthy (its own probe, up to one healthcheck
    interval after a restart): the steady state a no-op converge normally finds. A Kong
    still "starting" would make supakong probe its health first, and that is not a no-op."""
    deadline = time.monotonic() + timeout
    for name in names:
        spec = inputs.specs[name]
        client = docker_client(spec)
        try:
            while inspect_container(client, spec.kong_container).health != "healthy":
                if time.monotonic() > deadline:
                    raise SystemExit(f"{spec.kong_container}: Docker did not report it healthy")
                time.sleep(0.5)
        finally:
            client.close()


def drift(inputs: Inputs, names: Sequence[str], tag: str) -> None:
    """Edit every host's file (as a person on the server would): every tool must replace it."""
    for name in names:
        path = inputs.specs[name].kong_config_path
        path.write_text(inputs.desired[name] + f"# edited on the server {tag}\n")


def expected_restarts(tool: str, scenario: str, n: int) -> int:
    """Kong restarts a run must cause: none for a no-op; for a change, none with supakong
    (it loads the config into the running Kong) and one per host with every other tool."""
    return 0 if scenario == "no-op" or tool == "supakong" else n


def held_targets(inputs: Inputs, names: Sequence[str]) -> dict[str, tuple[str, str]]:
    """host → (public URL, anon key): where each held socket goes."""
    return {n: (inputs.hosts[n].public_url, inputs.apikeys[n]) for n in names}


def count_dropped(run: Run, held: HeldSockets) -> list[str]:
    """Record in ``run`` how many held sockets the run dropped; the problems to report."""
    lost = dropped(held)
    held.close()
    run.extra["held"], run.extra["dropped"] = len(held.sockets), len(lost)
    if not held.refused:
        return []
    return [f"{len(held.refused)} socket(s) could not be held first: {next(iter(held.refused.values()))}"]


def check_run(inputs: Inputs, names: Sequence[str], before: dict[str, str], expect_restarts: int) -> list[str]:
    """What went wrong in a run: wrong file content, or not the expected restarts."""
    problems = []
    wrong = [
        n for n in names if sha256_text(inputs.specs[n].kong_config_path.read_text()) != sha256_text(inputs.desired[n])
    ]
    if wrong:
        problems.append(f"{len(wrong)} host(s) with a file different from supakong's render")
    after = kong_starts(inputs, names)
    restarts = sum(after[n] != before[n] for n in names)
    if restarts != expect_restarts:
        problems.append(f"{restarts} restart(s), expected {expect_restarts}")
    return problems


def quiet_machine(limit: float = 6.0, cores: float = 0.5) -> None:
    """Wait (at most ``limit`` seconds) until the previous run's aftermath (Ansible's SSH
    masters exiting, a restarted Kong finishing its start-up) has stopped using the CPUs, so
    that it does not land in the next tool's time."""
    deadline = time.monotonic() + limit
    while busy_cores(0.5) > cores and time.monotonic() < deadline:
        pass


def one_run(
    inputs: Inputs,
    names: Sequence[str],
    tool: str,
    scenario: str,
    tag: str,
    parallel: int,
    proxy: DelayProxy | None = None,
) -> Run:
    """One measured run of ``tool``, checked; with ``proxy`` (added RTT), ``extra["bypassed"]``
    counts the SSH logins that did not go through the delay."""
    run_id = f"{tool}-{tag}".replace(" ", "")
    held: HeldSockets | None = None
    if scenario == "change":
        drift(inputs, names, tag)
        held = hold(held_targets(inputs, names))  # a user's Realtime socket on every host
    cmd = commands(inputs, names, parallel, run_id)[tool]
    logs = [inputs.specs[n].state_dir / "sshd.log" for n in names]
    before_starts = kong_starts(inputs, names)
    logins0, sessions0 = sshd_counts(logs)
    quiet_machine()
    accepted0 = proxy.accepted() if proxy else 0
    run = measure(cmd.argv, env=cmd.env, cwd=cmd.cwd)
    logins1, sessions1 = sshd_counts(logs)
    close_ansible_masters(run_id)
    run.logins, run.sessions = logins1 - logins0, sessions1 - sessions0
    if proxy and (bypassed := run.logins - (proxy.accepted() - accepted0)) > 0:
        run.extra["bypassed"] = bypassed
    problems = check_run(inputs, names, before_starts, expected_restarts(tool, scenario, len(names)))
    if held is not None:
        problems += count_dropped(run, held)
        if tool == "supakong" and run.extra["dropped"]:
            problems.append(f"{run.extra['dropped']:.0f} held socket(s) dropped, expected none")
    if run.returncode != 0:
        problems.insert(0, f"exit {run.returncode}: {run.output_tail[-400:]}")
    if problems:
        run.extra["anomaly"] = 1
        print(f"    ! {tool} {scenario} {tag}: {'; '.join(problems)}", flush=True)
    if tool == "supakong":
        report = WORK / f"supakong-report-{run_id}.json"
        if report.exists():
            hosts = json.loads(report.read_text())["hosts"].values()
            for key in ("look", "restart", "reload"):
                values = [h["timings"][key] for h in hosts if key in h.get("timings", {})]
                if values:
                    run.extra[key] = median(values)
    if scenario == "change":
        wait_healthy(inputs, names)
    return run


def bench_size(
    inputs: Inputs,
    names: Sequence[str],
    runs: dict[str, int],
    tools: Sequence[str],
    parallel: int,
    label: str,
    proxy: DelayProxy | None = None,
) -> dict[tuple[str, str], Cell]:
    """No-op then change converges, ``runs[scenario]`` rounds each, tools round-robin. With
    ``proxy``, a run whose SSH connections did not all go through the delay is run again."""
    cells: dict[tuple[str, str], Cell] = {}
    # Converge with supakong first (untimed), so that the no-op runs start from the desired state.
    prep = commands(inputs, names, parallel, "prep")["supakong"]
    subprocess.run(prep.argv, env=prep.env, cwd=prep.cwd, capture_output=True, check=False)
    wait_docker_healthy(inputs, names)
    for scenario in ("no-op", "change"):
        # Waiting for health only differs from the plain loop when something restarts.
        tools_here = [t for t in tools if not (scenario == "no-op" and t == "paramiko+health")]
        for r in range(runs[scenario]):
            order = tools_here[r % len(tools_here) :] + tools_here[: r % len(tools_here)]
            for tool in order:
                tag = f"{label}-n{len(names)}-{scenario}-{r}"
                run = one_run(inputs, names, tool, scenario, tag, parallel, proxy)
                for attempt in range(2):
                    if not run.extra.get("bypassed"):
                        break
                    print(f"    {tool}: {run.extra['bypassed']:.0f} login(s) bypassed the added RTT: again", flush=True)
                    run = one_run(inputs, names, tool, scenario, f"{tag}-again{attempt}", parallel, proxy)
                if run.extra.get("bypassed"):  # kept, but the table's checks column counts it
                    run.extra["anomaly"] = 1
                cell = cells.setdefault((scenario, tool), Cell())
                cell.runs.append(run)
                print(
                    f"  {label:>6} N={len(names):<3} {scenario:<7} {tool:<9} {run.seconds:7.2f}s"
                    f"  cpu {run.cpu_seconds:6.2f}s  machine {run.machine_cpu_seconds:6.1f}s  logins {run.logins:>3}"
                    f"  sessions {run.sessions:>4}"
                    f"  rss {run.tree_rss_mib:6.0f} MiB",
                    flush=True,
                )
    return cells


# -- reporting -------------------------------------------------------------------------
Key = tuple[str, int, str, str]  # (rtt label, N, scenario, tool)
#: The rtt label of the smaller size measured again with the whole fleet up (no added RTT).
ALL_UP = "+0 ms, all up"


def sockets_cell(runs: Sequence[Run]) -> str:
    """``dropped/held`` of the run that dropped most ("–" where none were held)."""
    counted = [(r.extra["dropped"], r.extra["held"]) for r in runs if "held" in r.extra]
    if not counted:
        return "–"
    worst = max(counted)
    return f"{worst[0]:.0f}/{worst[1]:.0f}"


def table(results: dict[Key, Cell]) -> list[str]:
    """The markdown table: medians, ratios to supakong, SSH logins/sessions per host, memory."""
    rows = [
        "| RTT | N | scenario | tool | median s | min–max s | × supakong (medians / paired) | client CPU s"
        " | machine CPU s | logins/host | sessions/host | peak RSS tree MiB | largest process MiB"
        " | dropped/held sockets | checks |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (rtt, n, scenario, tool), cell in results.items():
        base = results.get((rtt, n, scenario, "supakong"))
        ratio = f"{cell.median / base.median:.2f} / {paired_ratio(cell, base):.2f}" if base and base.median else "–"
        times = [r.seconds for r in cell.runs]
        bad = sum(1 for r in cell.runs if r.extra.get("anomaly"))
        rows.append(
            f"| {rtt} | {n} | {scenario} | {tool} | {cell.median:.2f} | {min(times):.2f}–{max(times):.2f}"
            f" | {ratio} | {cell.median_of('cpu_seconds'):.2f}"
            f" | {cell.median_of('machine_cpu_seconds'):.1f}"
            f" | {cell.median_of('logins') / n:.1f}"
            f" | {cell.median_of('sessions') / n:.1f}"
            f" | {max(r.tree_rss_mib for r in cell.runs):.0f} | {max(r.max_rss_mib for r in cell.runs):.0f}"
            f" | {sockets_cell(cell.runs)}"
            f" | {'ok' if not bad else f'{bad}/{len(cell.runs)} runs wrong'} |"
        )
    return rows


def targets(results: dict[Key, Cell], sizes: Sequence[int]) -> list[str]:
    """The issue's targets, checked at the largest N (met / MISSED by the point estimates),
    each with the 90 % bootstrap interval of its paired ratio or growth."""
    lines = []
    n = max(sizes)
    small = sorted(s for s in sizes if s < n)

    def cell(rtt: str, size: int, scenario: str, tool: str) -> Cell:
        return results.get((rtt, size, scenario, tool)) or Cell()

    for rtt in sorted({k[0] for k in results if (k[0], n, "no-op", "supakong") in results}):

        def ratio(
            scenario: str, bottom: str, bound: float, text: str, rtt: str = rtt, top: str = "supakong"
        ) -> tuple[str, bool | None]:
            """``top`` over ``bottom``: met when both the ratio of the medians and the median
            paired ratio are at most ``bound``. A ``bound`` below 1 reads as "faster by 1/bound"."""
            a, b = cell(rtt, n, scenario, top), cell(rtt, n, scenario, bottom)
            if not (a.runs and b.runs):
                return f"{text} (no {top if not a.runs else bottom} runs)", None
            pair = a.median / b.median, paired_ratio(a, b)
            interval = paired_interval(a.seconds, b.seconds)
            if bound < 1:  # shown as "N× faster": the inverse ratios
                shown, low_high = (1 / pair[0], 1 / pair[1]), (1 / interval[1], 1 / interval[0])
            else:
                shown, low_high = pair, interval
            detail = (
                f"×{shown[0]:.2f} of the medians, ×{shown[1]:.2f} paired by round"
                f" [90 % interval {span(low_high)}{noise_note(interval, bound)}]"
            )
            return f"{text} ({detail})", max(pair) <= bound

        # A target is met only when it holds both ways: the ratio of the two medians and the
        # median of the round-by-round ratios (this machine's speed drifts by ±25 %).
        checks = [
            ratio("no-op", "ansible", 1 / 10, "no-op ≥10× faster than Ansible"),
            ratio("no-op", "pyinfra", 1 / 1.5, "no-op ≥1.5× faster than pyinfra"),
            ratio("no-op", "paramiko", 1.3, "no-op within 1.3× of the paramiko loop"),
            # A change loaded into the running Kong (#19): against tools that restart it.
            ratio("change", "pyinfra", 1.0, "change (reload) ≤ pyinfra's change"),
            ratio("change", "paramiko", 1.3, "change (reload) within 1.3× of the paramiko loop's change"),
            dropped_sockets(results, rtt, n),
            # The restart path (--restart), against the same job done by restarting.
            ratio(
                "change",
                "paramiko",
                1.2,
                "change --restart within 1.2× of the paramiko loop, restarts included",
                top="supakong-restart",
            ),
            ratio(
                "change",
                "paramiko+health",
                1.2,
                "change --restart within 1.2× of the paramiko loop that also waits for health",
                top="supakong-restart",
            ),
        ]
        small_here = [m for m in small if (rtt, m, "no-op", "supakong") in results]
        if small_here:
            m = small_here[-1]
            bases = [(rtt, f"{m} sandbox{'es' if m > 1 else ''} up at N={m}")]
            if rtt == "+0 ms" and (ALL_UP, m, "no-op", "supakong") in results:
                bases.append((ALL_UP, f"all {n} sandboxes up at both sizes"))
            for base, how in bases:
                for scenario in ("no-op", "change"):
                    big, little = cell(rtt, n, scenario, "supakong"), cell(base, m, scenario, "supakong")
                    grow = quotient(big.median, little.median)
                    interval = growth_interval(big.seconds, little.seconds)
                    floor = "paramiko+health" if scenario == "change" else "paramiko"
                    floor_grow = quotient(cell(rtt, n, scenario, floor).median, cell(base, m, scenario, floor).median)
                    work_grow = quotient(big.median_of("machine_cpu_seconds"), little.median_of("machine_cpu_seconds"))
                    own_grow = quotient(big.median_of("cpu_seconds"), little.median_of("cpu_seconds"))
                    checks.append(
                        (
                            f"{scenario} growth N={m}→{n}: ×{grow:.2f} for ×{n / m:g} hosts"
                            f" [90 % interval {span(interval)}{noise_note(interval, n / m)}]"
                            f" ({how}; {floor}: ×{floor_grow:.2f}; supakong's machine CPU seconds: ×{work_grow:.2f},"
                            f" its own client CPU: ×{own_grow:.2f})",
                            grow <= n / m,
                        )
                    )
        for tool in ("supakong", "supakong-restart"):
            peaks = [max(r.tree_rss_mib for r in c.runs) for k, c in results.items() if k[3] == tool and c.runs]
            if peaks:
                checks.append((f"{tool}: peak memory < 100 MiB ({max(peaks):.0f} MiB)", max(peaks) < 100))
        lines.append(f"Targets at N={n}, RTT {rtt}:")
        verdicts = {True: "met", False: "MISSED", None: "not measured"}
        lines += [f"- {verdicts[ok]}: {text}" for text, ok in checks]
    return lines


def dropped_sockets(results: dict[Key, Cell], rtt: str, n: int) -> tuple[str, bool | None]:
    """The target "0 dropped sockets" for supakong's change runs at ``rtt`` and ``n``."""
    runs = [r for r in (results.get((rtt, n, "change", "supakong")) or Cell()).runs if "held" in r.extra]
    if not runs:
        return "0 dropped sockets on a change (no held sockets counted)", None
    lost, held = sum(r.extra["dropped"] for r in runs), sum(r.extra["held"] for r in runs)
    text = f"0 dropped sockets on a change ({lost:.0f} of {held:.0f} held over {len(runs)} runs)"
    return text, lost == 0 and held > 0


def round_trip_table(results: dict[Key, Cell]) -> list[str]:
    """Round trips each tool waits for on one host, from N = 1 with and without the added RTT:
    (median with − median without) ÷ RTT, with its 90 % interval. It counts what a run waits
    for on the network: the TCP connect, the SSH handshake and the job's exchanges (and, for a
    change, any wait whose length depends on the RTT). The largest added RTT counts best: the
    runs' own time and its noise are then small beside it."""
    rows = []
    for (rtt, n, scenario, tool), slow in results.items():
        fast = results.get(("+0 ms", n, scenario, tool))
        # One host only: with many, the hosts' round trips overlap and the CPU dominates.
        if n != 1 or rtt in ("+0 ms", ALL_UP) or fast is None:
            continue
        added = float(rtt.strip("+ ms")) / 1000
        estimate, (low, high) = round_trips(slow.seconds, fast.seconds, added)
        rows.append(f"| {rtt} | {n} | {scenario} | {tool} | {estimate:.1f} | {span((low, high), 1)} |")
    if not rows:
        return []
    return [
        "Round trips a run waits for on one host (N = 1), estimated as (median with the added RTT −"
        " median without) ÷ RTT; the TCP connect and the SSH handshake included:",
        "",
        "| added RTT | N | scenario | tool | round trips | 90 % interval |",
        "|---|---|---|---|---|---|",
        *rows,
    ]


def startup_profile() -> list[str]:
    """supakong's fixed cost: `fab --list` wall time and the biggest imports."""
    fab = str(BENCH.parent / ".venv/bin/fab")
    times = []
    for _ in range(3):
        t0 = time.monotonic()
        subprocess.run([fab, "--list"], cwd=BENCH.parent, capture_output=True, check=True)
        times.append(time.monotonic() - t0)
    proc = subprocess.run(
        [str(BENCH.parent / ".venv/bin/python"), "-X", "importtime", "-c", "import tasks"],
        cwd=BENCH.parent,
        capture_output=True,
        text=True,
    )
    rows = []
    for line in proc.stderr.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[1].strip().isdigit():
            rows.append((int(parts[1]), parts[2].rstrip()))
    top = sorted(rows, reverse=True)[:8]
    return [f"`fab --list` median {median(times):.2f} s; import tasks (cumulative µs):"] + [
        f"    {us:>8}  {name}" for us, name in top
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", default="1,10,30", help="fleet sizes (default 1,10,30)")
    parser.add_argument("--runs", type=int, default=3, help="change runs per tool (default 3)")
    parser.add_argument(
        "--noop-runs", type=int, default=9, help="no-op runs per tool (default 9: short runs, more noise)"
    )
    parser.add_argument("--rtt-ms", type=float, default=50.0, help="added round-trip time (0: skip)")
    parser.add_argument("--rtt-sizes", default="1,30", help="sizes for the added-RTT pass (default 1,30)")
    parser.add_argument(
        "--probe-rtt-ms",
        type=float,
        default=200.0,
        help="N=1 again with this much added RTT, to count round trips per host (0: skip; default 200)",
    )
    parser.add_argument("--probe-runs", type=int, default=3, help="runs per tool and scenario of that pass")
    parser.add_argument("--tools", default=",".join(TOOLS), help="tools to compare")
    parser.add_argument("--parallel", type=int, default=30, help="forks/threads for every tool (default 30)")
    parser.add_argument("--report", metavar="JSON", help="only print the report of an earlier run's raw data")
    args = parser.parse_args(argv)
    if args.report:
        print(report(json.loads(Path(args.report).read_text())), end="")
        return 0
    os.environ["SUPAKONG_HOST_ALLOWLIST"] = "sandbox*"
    if os.geteuid() != 0:
        raise SystemExit("bench.py needs root (it brings up sandbox VPSes)")
    sizes = sorted({int(s) for s in args.sizes.split(",")})
    rtt_sizes = sorted({int(s) for s in args.rtt_sizes.split(",") if s}) if args.rtt_ms > 0 else []
    tools = [t for t in args.tools.split(",") if t]
    runs = {"no-op": args.noop_runs, "change": args.runs}
    started = time.monotonic()
    if stale := remove_stale_rules():
        print(f"removed {stale} redirect rule(s) left by an interrupted run", flush=True)

    t0 = time.monotonic()
    versions = ensure_venvs(tools)
    tool_setup = time.monotonic() - t0
    print(f"tools ready in {tool_setup:.1f}s: {versions}", flush=True)
    specs = fleet_specs(PREFIX, max(sizes + rtt_sizes), FIRST_INDEX)
    names = [s.name for s in specs]
    results: dict[Key, Cell] = {}
    setup_notes: list[str] = []
    up = 0

    def note(text: str) -> None:
        print(text, flush=True)
        setup_notes.append(text)

    def measure_size(
        inputs: Inputs, n: int, rtt: str, label: str, rounds: dict[str, int] = runs, proxy: DelayProxy | None = None
    ) -> None:
        """Every scenario and tool on the first ``n`` hosts, filed under ``rtt``."""
        cells = bench_size(inputs, names[:n], rounds, tools, args.parallel, label, proxy)
        results.update({(rtt, n, sc, tool): c for (sc, tool), c in cells.items()})

    def with_rtt(inputs: Inputs, n: int, rtt_ms: float, rounds: dict[str, int] = runs) -> None:
        """``measure_size`` with ``rtt_ms`` of round-trip time added on the SSH links."""
        addresses = [inputs.specs[name].vps_addr for name in names[:n]]
        base_rtt = measure_rtt(addresses[0])
        with added_rtt(addresses, rtt_ms) as proxy:
            slow_rtt = measure_rtt(addresses[0])
            print(f"added RTT: TCP connect + sshd banner {base_rtt:.0f} ms -> {slow_rtt:.0f} ms", flush=True)
            measure_size(inputs, n, f"+{rtt_ms:.0f} ms", f"{rtt_ms:.0f}ms", rounds, proxy)

    # Sandboxes left up by an earlier run: stop those the smallest size does not need, so that
    # each size runs with its own hosts up, as on a first run (the next sizes bring them back).
    fleet_down(specs[min(sizes + rtt_sizes) :])
    for n in sorted(set(sizes) | set(rtt_sizes)):
        # Only the hosts this N needs are up: idle sandboxes would still load the CPUs.
        t0 = time.monotonic()
        timing = fleet_up(specs[up:n], workers=4, then=lambda spec: quiet_healthchecks([spec]))
        quiet = n - up
        setup = time.monotonic() - t0
        up = n
        inputs = write_inputs(specs[:n])
        idle = busy_cores()
        note(
            f"N={n}: {timing.total:.1f} s to bring the new sandboxes up ({quiet} Kong healthchecks made cheap,"
            f" {setup:.1f} s in all); machine busy with {idle:.2f} of {os.cpu_count()} cores before the runs"
        )
        if n in sizes:
            measure_size(inputs, n, "+0 ms", "0ms")
        if args.rtt_ms > 0 and n in rtt_sizes:
            with_rtt(inputs, n, args.rtt_ms)
        if args.probe_rtt_ms > 0 and n == 1 and n in sizes:
            # Round trips per host: with 200 ms each, a run's CPU time and its noise are small
            # beside them (at +50 ms one N=1 run's median moved by ~2 round trips between runs).
            with_rtt(inputs, n, args.probe_rtt_ms, {"no-op": args.probe_runs, "change": args.probe_runs})

    if growth_base := max((s for s in sizes if 1 < s < max(sizes)), default=0):
        # Growth again, with the same idle fleet around both sizes: above, N=10 ran with 10
        # sandboxes up and N=30 with 30, so the 20 idle ones' CPU could count as the tool's growth.
        note(
            f"N={growth_base} again with all {up} sandboxes up:"
            f" machine busy with {busy_cores():.2f} of {os.cpu_count()} cores before the runs"
        )
        measure_size(write_inputs(specs[:growth_base]), growth_base, ALL_UP, "0ms-all")

    data = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "cores": os.cpu_count(),
        "versions": versions,
        "noop_runs": args.noop_runs,
        "change_runs": args.runs,
        "parallel": args.parallel,
        "sizes": sizes,
        "tools": tools,
        "setup_notes": setup_notes,
        "startup": startup_profile(),
        "total_seconds": round(time.monotonic() - started),
        # Raw figures only: the tools' output tails (kept for anomaly messages) stay out.
        "cells": [
            {"key": list(key), "runs": [{**asdict(run), "output_tail": ""} for run in cell.runs]}
            for key, cell in results.items()
        ],
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(data, indent=1) + "\n")
    text = report(data)
    print("\n" + text)
    (RESULTS / "latest.md").write_text(text)
    return 0


def report(data: dict[str, Any]) -> str:
    """The markdown report of a benchmark's raw data (``results/latest.json``)."""
    tools = data["tools"]
    results = {
        (c["key"][0], c["key"][1], c["key"][2], c["key"][3]): Cell([Run(**run) for run in c["runs"]])
        for c in data["cells"]
    }
    ordered = dict(
        sorted(results.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2] != "no-op", tools.index(kv[0][3])))
    )
    lines = [
        f"# supakong benchmark ({data['when']})",
        "",
        f"Machine: {data['cores']} cores. Tools: {data['versions']}. {data['noop_runs']} runs per no-op cell,"
        f" {data['change_runs']} per change cell, medians; parallelism {data['parallel']}.",
        "",
        *[line.strip() for line in (__doc__ or "").split("\n\n")[2].splitlines()],
        "",
        "Added RTT: this kernel has no netem qdisc; bench/latency.py redirects SSH to the sandboxes through a"
        " local proxy that delays each direction by half the RTT (and the connect by one RTT).",
        "",
        "Setup (not in the table):",
        *[f"- {note}" for note in data["setup_notes"]],
        "",
        *table(ordered),
        "",
        *targets(ordered, data["sizes"]),
        "",
        *round_trip_table(ordered),
        "",
        *data["startup"],
        "",
        f"Total benchmark time: {data['total_seconds']} s.",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
