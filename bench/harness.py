"""Measuring one run of a tool: wall time, exit code, peak memory of its whole process tree
and of its largest process (the kernel's per-process high-water marks, read every 50 ms;
``wait4``'s maxrss would count the benchmark's own pages copied at fork), and what the sandboxes' sshd logged
meanwhile (logins and sessions per host). CPU seconds (user + system, the tool and every
child it waited for) do not depend on what else the machine is doing, unlike wall time. The
machine's CPU seconds over the run (every process: the tool, the sandboxes' sshd, dockerd and
containers, and this sampler) are the work the run caused on this one machine, where every
sandbox VPS shares the same cores."""

from __future__ import annotations

import os
import statistics
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass
class Run:
    """One measured run."""

    seconds: float
    returncode: int
    tree_rss_mib: float
    max_rss_mib: float
    cpu_seconds: float = 0.0
    machine_cpu_seconds: float = 0.0
    logins: int = 0
    sessions: int = 0
    output_tail: str = ""
    extra: dict[str, float] = field(default_factory=dict)


def _children_map() -> dict[int, list[int]]:
    """Parent → children of every process (one read of each /proc/PID/stat)."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(b")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    return children


def descendants(pid: int) -> set[int]:
    """``pid`` and all processes below it, right now."""
    children, found, todo = _children_map(), set(), [pid]
    while todo:
        p = todo.pop()
        found.add(p)
        todo.extend(children.get(p, ()))
    return found


def peak_rss(pid: int) -> int:
    """The kernel's high-water mark of ``pid``'s resident memory (VmHWM), 0 if gone."""
    try:
        with open(f"/proc/{pid}/status", "rb") as fh:
            for line in fh:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


class TreeMemory:
    """Peak memory of a process tree without scanning /proc all the time.

    Each process's own peak comes from the kernel (VmHWM), so nothing between samples is
    missed for a process that is still there at the next sample. The tree's peak is the
    sum of its members' peaks (an upper bound when they peaked at different times). The
    tree's membership is refreshed with a full /proc scan only every ``rescan`` samples:
    with 30 sandboxes (~600 processes) one scan costs ~13 ms of CPU, and scanning every
    20 ms took 60 % of a core away from the runs being measured.
    """

    def __init__(self, root: int, rescan: int = 5) -> None:
        self.root, self.rescan, self.samples = root, rescan, 0
        self.members: set[int] = {root}
        self.peaks: dict[int, int] = {}

    def sample(self) -> None:
        if self.samples % self.rescan == 0:
            self.members = descendants(self.root)
        self.samples += 1
        for pid in self.members:
            self.peaks[pid] = max(self.peaks.get(pid, 0), peak_rss(pid))

    @property
    def total(self) -> int:
        return sum(self.peaks.values())

    @property
    def largest(self) -> int:
        return max(self.peaks.values(), default=0)


def cpu_ticks() -> tuple[int, int]:
    """(busy, total) clock ticks of every CPU since boot, from /proc/stat (busy: all but idle
    and iowait)."""
    with open("/proc/stat") as fh:
        fields = [int(x) for x in fh.readline().split()[1:]]
    return sum(fields) - fields[3] - fields[4], sum(fields)


def machine_busy_seconds() -> float:
    """CPU seconds spent by every process on this machine since boot."""
    return cpu_ticks()[0] / os.sysconf("SC_CLK_TCK")


def measure(
    argv: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: Path | None = None, timeout: float = 600
) -> Run:
    """Run ``argv`` to completion, sampling its process tree's memory every 50 ms."""
    started, busy = time.monotonic(), machine_busy_seconds()
    proc = subprocess.Popen(
        list(argv), env=dict(env) if env else None, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    memory, done = TreeMemory(proc.pid), threading.Event()

    def sample() -> None:
        while not done.is_set():
            memory.sample()
            done.wait(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    output = bytearray()
    assert proc.stdout is not None
    reader = threading.Thread(target=lambda: output.extend(proc.stdout.read() if proc.stdout else b""), daemon=True)
    reader.start()
    deadline = started + timeout
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() > deadline:
            proc.kill()
        time.sleep(0.01)
    seconds, busy = time.monotonic() - started, machine_busy_seconds() - busy
    done.set()
    sampler.join()
    reader.join(5)
    proc.returncode = os.waitstatus_to_exitcode(status)
    tail = output.decode("utf-8", "replace").strip().splitlines()[-12:]
    return Run(
        seconds=seconds,
        returncode=proc.returncode,
        tree_rss_mib=memory.total / 2**20,
        max_rss_mib=memory.largest / 2**20,
        cpu_seconds=usage.ru_utime + usage.ru_stime,
        machine_cpu_seconds=busy,
        output_tail="\n".join(tail),
    )


def sshd_counts(logs: Sequence[Path]) -> tuple[int, int]:
    """Total ``Accepted publickey`` (logins) and ``Starting session:`` (channels) lines."""
    logins = sessions = 0
    for log in logs:
        text = log.read_text(errors="replace")
        logins += text.count("Accepted publickey")
        sessions += text.count("Starting session:")
    return logins, sessions


def median(values: Sequence[float]) -> float:
    """The median (0 for none)."""
    return statistics.median(values) if values else 0.0
