"""The audit log on the host: one JSON line per run (when, who, from where, old and new
sha256, plan, result, duration), appended beside the config in ``.supakong/audit.log``."""

from __future__ import annotations

import getpass
import json
import posixpath
import socket
from datetime import UTC, datetime
from typing import Any

from .audit_append import APPEND_LINE_SH
from .hostlock import state_dir
from .report import HostResult
from .secrets import mask
from .transport import HostConnection

_APPEND_AND_RELEASE_SCRIPT = (
    "log=$1 line=$2 lock=$3 token=$4\n"
    + APPEND_LINE_SH
    + 'if [ -n "$token" ] && grep -qF "$token" "$lock/details" 2>/dev/null; then rm -rf "$lock"; fi\n'
)


def audit_path(config_path: str) -> str:
    """The audit log of a config file."""
    return posixpath.join(state_dir(config_path), "audit.log")


def audit_line(task: str, result: HostResult) -> str:
    """One JSON line describing a run, masked."""
    entry: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "who": getpass.getuser(),
        "from": socket.gethostname(),
        "task": task,
        "host": result.host,
        "result": result.status,
        "plan": result.plan,
        "method": result.method,
        "old_sha256": result.old_sha256,
        "new_sha256": result.new_sha256,
        "backup": result.backup,
        "verify": result.verify_state,
        "seconds": round(result.seconds, 3),
        "message": result.message,
    }
    return mask(json.dumps(entry, sort_keys=True))


def append_argv(config_path: str, line: str, lock: str = "", token: str = "") -> list[str]:
    """The command that appends ``line`` (and releases the lock we hold, if ``token``)."""
    return ["sh", "-c", _APPEND_AND_RELEASE_SCRIPT, "sh", audit_path(config_path), line, lock, token]


def read_audit_argv(config_path: str, lines: int) -> list[str]:
    """The command that prints the last ``lines`` audit lines."""
    return ["sh", "-c", 'tail -n "$2" "$1" 2>/dev/null || true', "sh", audit_path(config_path), str(lines)]


def read_audit(conn: HostConnection, config_path: str, lines: int = 20) -> list[dict[str, Any]]:
    """The last ``lines`` audit entries (unparseable lines are kept as ``{"raw": …}``)."""
    entries = []
    for row in conn.run(read_audit_argv(config_path, lines)).text.splitlines():
        try:
            entries.append(json.loads(row))
        except ValueError:
            entries.append({"raw": row})
    return entries
