"""Measuring one run of a tool: wall time, exit code, peak memory of its whole process tree
and of its largest process (both sampled from /proc every 20 ms; ``wait4``'s maxrss would
count the benchmark's own pages copied at fork), and what the sandboxes' sshd logged
meanwhile (logins and sessions per host). CPU seconds (user + system, the tool and every
child it waited for) do not depend on what else the machine is doing, unlike wall time."""

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
    logins: int = 0
    sessions: int = 0
    output_tail: str = ""
    extra: dict[str, float] = field(default_factory=dict)


def _children_map() -> dict[int, list[int]]:
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


def tree_rss(pid: int) -> tuple[int, int]:
    """Resident bytes of ``pid`` and all its descendants right now, and of the largest one."""
    children, total, largest, todo = _children_map(), 0, 0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/statm", "rb") as fh:
                rss = int(fh.read().split()[1]) * PAGE
        except OSError:
            rss = 0
        total, largest = total + rss, max(largest, rss)
        todo.extend(children.get(p, ()))
    return total, largest


def measure(
    argv: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: Path | None = None, timeout: float = 600
) -> Run:
    """Run ``argv`` to completion, sampling its process tree's memory every 20 ms."""
    started = time.monotonic()
    proc = subprocess.Popen(
        list(argv), env=dict(env) if env else None, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    peak, largest, done = 0, 0, threading.Event()

    def sample() -> None:
        nonlocal peak, largest
        while not done.is_set():
            total, one = tree_rss(proc.pid)
            peak, largest = max(peak, total), max(largest, one)
            done.wait(0.02)

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
        time.sleep(0.005)
    seconds = time.monotonic() - started
    done.set()
    sampler.join()
    reader.join(5)
    proc.returncode = os.waitstatus_to_exitcode(status)
    tail = output.decode("utf-8", "replace").strip().splitlines()[-12:]
    return Run(
        seconds=seconds,
        returncode=proc.returncode,
        tree_rss_mib=peak / 2**20,
        max_rss_mib=largest / 2**20,
        cpu_seconds=usage.ru_utime + usage.ru_stime,
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
