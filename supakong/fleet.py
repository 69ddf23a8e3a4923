"""The one place that decides serial, rolling or parallel, and turns each host's outcome
(result or error) into a map of results (Fabric's GroupResult idea)."""

from __future__ import annotations

import os
import time
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from .errors import DeployError
from .fence import check_public_url
from .inventory import HostConfig, check_allowed
from .report import EXIT_CODES, HostResult, Output
from .secrets import mask

HostAction = Callable[[HostConfig, Output], HostResult]
#: The status of hosts a stopped rolling deploy never reached: ``not_run`` where the report
#: knows it, else ``failed`` (either way the run exits non-zero); the message says "not run".
NOT_RUN = "not_run" if "not_run" in EXIT_CODES else "failed"


@dataclass(frozen=True)
class Rollout:
    """How to go through many hosts: ``parallel`` at once, in batches of ``serial`` (rolling),
    stopping when more than ``max_fail`` hosts failed (a count, or a percentage like ``"25%"``)."""

    parallel: int = 10
    serial: int | None = None
    max_fail: str | None = None

    def __post_init__(self) -> None:
        # Task flags whose default is None arrive as strings (invoke infers the type from the
        # default): accept "3" as well as 3, and refuse nonsense with the flag's name.
        object.__setattr__(self, "parallel", _at_least_one(self.parallel, "--parallel"))
        if self.serial is not None:
            object.__setattr__(self, "serial", _at_least_one(self.serial, "--serial"))
        if self.max_fail is not None:
            object.__setattr__(self, "max_fail", str(self.max_fail))
            self.failure_budget(1)

    def batches(self, hosts: Sequence[HostConfig]) -> list[list[HostConfig]]:
        """Hosts split into rolling batches (one batch when not rolling)."""
        size = self.serial or len(hosts) or 1
        return [list(hosts[i : i + size]) for i in range(0, len(hosts), size)]

    def failure_budget(self, total: int) -> int:
        """How many failed hosts stop the rollout (exceeding it stops)."""
        if self.max_fail is None:
            return total
        text = self.max_fail.strip()
        try:
            value = float(text[:-1]) if text.endswith("%") else int(text)
        except ValueError:
            value = -1
        if value < 0 or (text.endswith("%") and value > 100):
            raise DeployError(f"--max-fail: expected a number of hosts or a percentage like 25%, got {text!r}")
        return int(total * value / 100) if text.endswith("%") else int(value)


def _at_least_one(value: object, flag: str) -> int:
    try:
        number = int(str(value))
    except ValueError:
        number = 0
    if number < 1:
        raise DeployError(f"{flag}: expected a whole number of hosts (at least 1), got {value!r}")
    return number


def run_one(host: HostConfig, action: HostAction, out: Output) -> HostResult:
    """Run ``action`` on one host, turning any failure into a ``failed`` result."""
    started = time.monotonic()
    try:
        check_allowed(host)
        check_public_url(host.name, host.public_url)
        result = action(host, out)
        result.seconds = result.seconds or time.monotonic() - started
        return result
    except DeployError as exc:
        status = "rolled_back" if type(exc).__name__ == "RolledBackError" else "failed"
        # Keep what the action found out before failing (plan, sha256s, backup, verify state)
        # when it hands its partial result over on the exception.
        partial = getattr(exc, "result", None)
        result = partial if isinstance(partial, HostResult) else HostResult(host=host.name)
        result.status, result.message = status, mask(str(exc))
    except Exception as exc:  # noqa: BLE001 - one host's bug must not hide the others' results
        if os.environ.get("SUPAKONG_DEBUG"):
            out.line(mask(traceback.format_exc()), host.name)
        result = HostResult(
            host=host.name, status="failed", message=mask(f"internal error: {type(exc).__name__}: {exc}")
        )
    out.line(f"  ✗ {result.message}", host.name)
    result.seconds = time.monotonic() - started
    return result


def run_on_hosts(
    hosts: Sequence[HostConfig], action: HostAction, out: Output, rollout: Rollout | None = None
) -> dict[str, HostResult]:
    """Run ``action`` on every host per ``rollout``; return ``{host: result}`` in host order."""
    rollout = rollout or Rollout()
    results: dict[str, HostResult] = {}
    budget = rollout.failure_budget(len(hosts))
    for batch in rollout.batches(hosts):
        workers = max(1, min(rollout.parallel, len(batch)))
        if workers == 1:
            batch_results = [run_one(h, action, out) for h in batch]
        else:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                batch_results = list(pool.map(lambda h: run_one(h, action, out), batch))
        results.update((r.host, r) for r in batch_results)
        failed = sum(r.status in ("failed", "rolled_back") for r in results.values())
        if failed > budget:
            why = f"not run: the rollout stopped after {failed} failed host(s) (--max-fail {rollout.max_fail})"
            for h in hosts:
                results.setdefault(h.name, HostResult(host=h.name, status=NOT_RUN, message=why))
            break
    return {h.name: results[h.name] for h in hosts}
