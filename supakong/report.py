"""Everything supakong prints goes through here, masked: progress lines, recap, JSON report."""

from __future__ import annotations

import json
import re
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from typing import Any, TextIO

from .secrets import mask

#: Host outcomes, worst last (the exit code follows the worst host).
STATUSES = ("ok", "changed", "pending", "rolled_back", "failed")
EXIT_CODES = {"ok": 0, "changed": 0, "pending": 2, "rolled_back": 1, "failed": 1}


@dataclass
class HostResult:
    """The outcome of one task on one host."""

    host: str
    status: str = "ok"
    message: str = ""
    plan: str = ""
    old_sha256: str = ""
    new_sha256: str = ""
    backup: str | None = None
    verify_state: str | None = None
    #: how Kong got the new config: "reloaded" (Admin API) or "restarted"; "" when neither ran
    method: str = ""
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def timed(self, phase: str) -> Iterator[None]:
        """Record how long the block took as ``timings[phase]`` (not when it raises)."""
        started = time.monotonic()
        yield
        self.timings[phase] = time.monotonic() - started

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict with every string masked."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        return {
            k: (mask(v) if isinstance(v, str) else dict(v) if isinstance(v, dict) else v) for k, v in values.items()
        }


#: What a terminal would act on rather than show (escape sequences that move the cursor,
#: retitle the window, rewrite earlier lines): never written as is. Tabs stay.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(row: str) -> str:
    """``row`` with every control character written as ``\\xNN`` (a container's log line
    with ESC sequences is shown, not obeyed)."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", row)


class Output:
    """A thread-safe, masking line printer; prefixes lines with the host when many run."""

    def __init__(self, stream: TextIO | None = None, *, prefix_hosts: bool = False) -> None:
        self.stream = stream or sys.stdout
        self.prefix_hosts = prefix_hosts
        self._lock = threading.Lock()

    def line(self, text: str = "", host: str | None = None) -> None:
        """Print one line (masked)."""
        prefix = f"[{host}] " if host and self.prefix_hosts else ""
        with self._lock:
            for row in mask(text).splitlines() or [""]:
                self.stream.write(f"{prefix}{printable(row)}\n")
            self.stream.flush()

    def lines(self, rows: Sequence[str], host: str | None = None) -> None:
        """Print several lines (masked)."""
        for row in rows:
            self.line(row, host)


class BufferOutput(Output):
    """An :class:`Output` that keeps what it printed (for embedding supakong, and tests)."""

    def __init__(self, *, prefix_hosts: bool = False) -> None:
        import io

        self.buffer = io.StringIO()
        super().__init__(self.buffer, prefix_hosts=prefix_hosts)

    @property
    def text(self) -> str:
        """Everything printed so far (already masked)."""
        return self.buffer.getvalue()


def worst_status(results: Mapping[str, HostResult]) -> str:
    """The worst status among the results (``ok`` for none)."""
    return max((r.status for r in results.values()), key=STATUSES.index, default="ok")


def exit_code(results: Mapping[str, HostResult]) -> int:
    """0 all ok/changed, 2 changes pending (check mode), 1 any failure or rollback."""
    return EXIT_CODES[worst_status(results)]


def recap_lines(results: Mapping[str, HostResult]) -> list[str]:
    """Ansible-style recap, one row per host."""
    if not results:
        return ["RECAP: no hosts"]
    width = max(len(h) for h in results)
    rows = ["", "RECAP"]
    for name, r in results.items():
        verify = f"  realtime={r.verify_state}" if r.verify_state else ""
        rows.append(f"  {name:<{width}}  {r.status:<11} {r.seconds:6.2f}s{verify}  {r.message or r.plan}")
    return rows


def report_json(task: str, results: Mapping[str, HostResult]) -> str:
    """The machine-readable report of a run (``--report FILE``)."""
    return json.dumps(
        {"task": task, "status": worst_status(results), "hosts": {h: r.to_json() for h, r in results.items()}},
        indent=2,
    )
