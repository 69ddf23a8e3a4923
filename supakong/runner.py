"""What every task does around the library: pick hosts, run, print the recap, exit.

Tasks stay thin adapters (flags in, library call, print); this module is the shared glue,
including turning our errors into ``invoke.Exit`` (a one-line message, no traceback).
"""

from __future__ import annotations

import functools
import os
import sys
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import fabric
from invoke import Context, Exit

from .errors import DeployError
from .fleet import HostAction, Rollout, run_on_hosts
from .inventory import DEFAULT_INVENTORY, HostConfig, load_inventory
from .report import HostResult, Output, exit_code, recap_lines, report_json
from .secrets import mask

INVENTORY_ENV = "SUPAKONG_INVENTORY"
F = TypeVar("F", bound=Callable[..., Any])


class Task(fabric.Task):
    """Fabric's task, whose automatic short flags never take ``-h`` (``fab TASK -h`` stays
    the task's help) nor ``-`` (Invoke picks the dash of a dashed name once its letters are
    taken): the flag gets the next free letter of its name, or none. ``@task(klass=Task)``."""

    def arg_opts(self, name: str, default: str, taken_names: set[str]) -> dict[str, Any]:
        return super().arg_opts(name, default, taken_names | {"h", "-"})


def inventory_path() -> Path:
    """``$SUPAKONG_INVENTORY`` or ``inventory/hosts.yml`` in the current directory."""
    return Path(os.environ.get(INVENTORY_ENV) or DEFAULT_INVENTORY)


def cli_hosts(c: Context) -> list[str]:
    """The ``-H`` host names (set by :class:`supakong.cli.FleetExecutor`, or Fabric's own
    per-host Connection when a stock executor runs the task)."""
    hosts = c.config.get("supakong_hosts")
    if hosts:
        return list(hosts)
    original = getattr(c, "original_host", None)
    return [original] if original else []


def select_hosts(c: Context, group: str | None = None, *, require: bool = False) -> list[HostConfig]:
    """The hosts a task runs on: ``-H`` names, else ``--group``, else every inventory host."""
    names = cli_hosts(c)
    if require and not names and not group:
        raise DeployError("name the hosts with -H HOST[,HOST…] or --group NAME")
    return load_inventory(inventory_path()).select(names, group)


def exits_cleanly(func: F) -> F:
    """Decorate a task body: our errors become a one-line ``Exit`` (code 1), masked."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except DeployError as exc:
            fail(str(exc))
        except Exit:
            raise
        except Exception as exc:  # noqa: BLE001 - an unexpected error still prints masked
            if os.environ.get("SUPAKONG_DEBUG"):
                sys.stderr.write(mask(traceback.format_exc()))
            fail(f"internal error: {type(exc).__name__}: {exc}")

    return wrapper  # type: ignore[return-value]


def fail(message: str, code: int = 1) -> NoReturn:
    """Stop the task with ``message`` (masked) on stderr and ``code``."""
    raise Exit(f"supakong: {mask(message)}", code)


def run_task(
    name: str,
    hosts: list[HostConfig],
    action: HostAction,
    *,
    rollout: Rollout | None = None,
    report: str | None = None,
    out: Output | None = None,
) -> Mapping[str, HostResult]:
    """Run ``action`` over ``hosts``, print the recap, write the report, exit non-zero on failure."""
    out = out or Output(prefix_hosts=len(hosts) > 1)
    results = run_on_hosts(hosts, action, out, rollout or Rollout())
    out.lines(recap_lines(results))
    if report:
        Path(report).write_text(report_json(name, results) + "\n", encoding="utf-8")
    code = exit_code(results)
    if code:
        raise Exit(code=code)
    return results
