"""The unattended redeploy (``supakong redeploy``, what the timer runs): deploy-kong on every
host, which changes a host only when it drifted; then one JSON line per run in a local log
and, on failure, an optional webhook POST.

The per-host work is :func:`supakong.deploy.deploy_host` (host lock, plan, replace, restart,
verify, roll back); this module only adds the run record, the log and the webhook.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
import urllib.parse
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .deploy import DeployOptions, deploy_host
from .fleet import Rollout, run_on_hosts
from .inventory import HostConfig
from .report import STATUSES, HostResult, Output, exit_code, worst_status
from .secrets import mask

TASK = "redeploy"
LOG_ENV = "SUPAKONG_REDEPLOY_LOG"
#: A scheduled run should not fail because a person is deploying by hand: wait for their lock.
DEFAULT_LOCK_WAIT = 120.0
WEBHOOK_TIMEOUT = 10.0


def default_log_path(environ: Mapping[str, str] | None = None) -> Path:
    """``$SUPAKONG_REDEPLOY_LOG``, else ``$XDG_STATE_HOME/supakong/redeploy.log``
    (``~/.local/state/supakong/redeploy.log``)."""
    environ = os.environ if environ is None else environ
    if environ.get(LOG_ENV):
        return Path(os.path.expanduser(environ[LOG_ENV]))
    state = environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state")
    return Path(state) / "supakong" / "redeploy.log"


def run_record(
    results: Mapping[str, HostResult],
    *,
    started: datetime,
    seconds: float,
    inventory: str,
    group: str | None = None,
) -> dict[str, Any]:
    """What one run did, as the log line and the webhook body (strings masked on output)."""
    counts = Counter(r.status for r in results.values())
    return {
        "when": started.isoformat(timespec="seconds"),
        "task": TASK,
        "who": getpass.getuser(),
        "from": socket.gethostname(),
        "inventory": inventory,
        "group": group,
        "status": worst_status(results),
        "exit_code": exit_code(results),
        "seconds": round(seconds, 3),
        "counts": {s: counts[s] for s in STATUSES if counts[s]},
        "drift_corrected": [h for h, r in results.items() if r.status == "changed"],
        "failed": [h for h, r in results.items() if r.status in ("failed", "rolled_back")],
        "hosts": {
            h: {
                "status": r.status,
                "plan": r.plan,
                "method": r.method,
                "message": r.message,
                "verify": r.verify_state,
                "seconds": round(r.seconds, 3),
            }
            for h, r in results.items()
        },
    }


def record_line(record: Mapping[str, Any]) -> str:
    """One line of JSON, masked (a secret in a message never reaches the log or the webhook)."""
    return mask(json.dumps(record, sort_keys=True))


def append_log(path: Path, record: Mapping[str, Any]) -> None:
    """Append the run's line to the local log (created 0600 with its directory)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as fh:
        fh.write(record_line(record) + "\n")


def check_webhook_url(url: str) -> str:
    """Refuse anything but an http(s) URL with a host (no file:, no typos that post nowhere)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"--webhook: expected an http:// or https:// URL, got {mask(url)!r}")
    return url


def post_webhook(url: str, record: Mapping[str, Any], timeout: float = WEBHOOK_TIMEOUT) -> str | None:
    """POST the record as JSON; return ``None`` on a 2xx answer, else why it failed."""
    import urllib.error  # lazy: http.client, email and ssl only when a webhook is posted
    import urllib.request

    request = urllib.request.Request(
        check_webhook_url(url),
        data=record_line(record).encode("utf-8"),
        headers={"Content-Type": "application/json", "User-Agent": "supakong-redeploy"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - scheme checked
            status = response.status
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code} {exc.reason}"
    except (urllib.error.URLError, OSError) as exc:
        return str(getattr(exc, "reason", exc))
    return None if 200 <= status < 300 else f"HTTP {status}"


def redeploy_hosts(
    hosts: Sequence[HostConfig], options: DeployOptions, out: Output, rollout: Rollout | None = None
) -> dict[str, HostResult]:
    """deploy-kong on every host as the ``redeploy`` task (its audit lines and lock say so)."""

    def action(host: HostConfig, out: Output) -> HostResult:
        out.line(f"{TASK} {host.name}", host.name)
        return deploy_host(host, options, out, task=TASK)

    return run_on_hosts(hosts, action, out, rollout or Rollout())


@dataclass(frozen=True)
class RedeployRun:
    """One run: the per-host results and the record that was logged."""

    results: dict[str, HostResult]
    record: dict[str, Any]

    @property
    def exit_code(self) -> int:
        """The worst host's exit code (0 ok/changed, 1 failed or rolled back)."""
        return int(self.record["exit_code"])


def redeploy(
    hosts: Sequence[HostConfig],
    options: DeployOptions,
    out: Output,
    *,
    log: Path,
    inventory: str,
    group: str | None = None,
    webhook: str | None = None,
    rollout: Rollout | None = None,
) -> RedeployRun:
    """Run, POST the webhook on failure, log one line (with the webhook's outcome)."""
    if webhook:
        check_webhook_url(webhook)
    started = datetime.now(UTC)
    results = redeploy_hosts(hosts, options, out, rollout)
    seconds = (datetime.now(UTC) - started).total_seconds()
    record = run_record(results, started=started, seconds=seconds, inventory=inventory, group=group)
    if webhook and record["exit_code"] != 0:
        problem = post_webhook(webhook, record)
        record["webhook"] = "sent" if problem is None else f"failed: {problem}"
        if problem:
            out.line(f"! webhook POST to {mask(webhook)} failed: {problem}")
    append_log(log, record)
    return RedeployRun(results, record)
