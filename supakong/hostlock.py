"""One deploy at a time per host: an atomic ``mkdir`` lock beside the config (Kamal's model),
with who holds it, stale-lock detection and an optional wait.

The lock is only taken when a run has something to change; a no-op run just looks. A lock
is stale when it is older than ``stale_after`` (no deploy takes that long) or when its holder
ran on this machine and that process is gone (a deploy killed with SIGKILL or Ctrl-C).
"""

from __future__ import annotations

import getpass
import json
import os
import posixpath
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from .become import not_writable_hint
from .errors import DeployError
from .look import LockStatus, look
from .plan import HostState
from .remote_file import free_bytes
from .transport import HostConnection

STATE_DIR = ".supakong"
DEFAULT_STALE_AFTER = 15 * 60

_RELEASE_SCRIPT = r"""
lock=$1 token=$2
if grep -qF "$token" "$lock/details" 2>/dev/null; then rm -rf "$lock"; fi
"""

_BREAK_SCRIPT = r"""
lock=$1 expected=$2
[ "$(cat "$lock/details" 2>/dev/null)" = "$expected" ] && rm -rf "$lock"
true
"""


class LockedError(DeployError):
    """Another deploy holds the host lock."""


def state_dir(config_path: str) -> str:
    """The hidden directory beside the config that holds backups, the lock and the audit log."""
    return posixpath.join(posixpath.dirname(config_path), STATE_DIR)


def lock_path(config_path: str) -> str:
    """Where the lock directory lives."""
    return posixpath.join(state_dir(config_path), "lock")


@dataclass(frozen=True)
class LockOwner:
    """Who takes the lock; written as JSON into the lock's ``details`` file."""

    token: str
    user: str
    machine: str
    pid: int
    task: str
    started: str

    @classmethod
    def current(cls, task: str) -> LockOwner:
        """This process as a lock owner."""
        return cls(
            secrets.token_hex(8),
            getpass.getuser(),
            socket.gethostname(),
            os.getpid(),
            task,
            datetime.now(UTC).isoformat(timespec="seconds"),
        )

    def to_json(self) -> str:
        """One line of JSON."""
        return json.dumps(self.__dict__, sort_keys=True)


def describe_holder(details: str) -> str:
    """``user@machine pid N (task) since T`` from a lock's details."""
    try:
        d = json.loads(details)
        return f"{d['user']}@{d['machine']} pid {d['pid']} ({d['task']}) since {d['started']}"
    except (ValueError, KeyError, TypeError):
        return "an unknown holder"


def is_stale(status: LockStatus, stale_after: float, machine: str = "") -> bool:
    """A held lock is stale when too old, or held by a dead process of this machine."""
    if status.status != "held":
        return False
    if status.age > stale_after:
        return True
    try:
        d = json.loads(status.details)
    except ValueError:
        return False
    if d.get("machine") != (machine or socket.gethostname()):
        return False
    try:
        os.kill(int(d.get("pid", 0)), 0)
        return False
    except ProcessLookupError:
        return True
    except (PermissionError, ValueError, OverflowError):
        return False


def acquire(
    conn: HostConnection,
    config_path: str,
    kong: str,
    realtime: str,
    owner: LockOwner,
    *,
    wait: float = 0.0,
    stale_after: float = DEFAULT_STALE_AFTER,
    notify: Callable[[str], None] = lambda _: None,
) -> HostState:
    """Take the lock (waiting up to ``wait`` seconds) and return the host's state as seen
    under it. Raises :class:`LockedError` naming the holder."""
    path = lock_path(config_path)
    deadline, delay, told, broken = time.monotonic() + wait, 0.2, False, set()
    while True:
        state, status = look(conn, config_path, kong, realtime, lock=path, details=owner.to_json())
        if status.status == "acquired":
            return state
        if status.status == "error":  # a read-only or full filesystem, say: not someone else's lock
            reason = status.details
            free = free_bytes(conn, posixpath.dirname(config_path))
            if free is not None and free < 4096:  # dash reports ENOSPC as "I/O error"
                reason = f"No space left on device ({free} bytes free): {reason}"
            elif "Permission denied" in reason:
                reason += f" ({not_writable_hint(conn.user, posixpath.dirname(path), conn.become)})"
            raise DeployError(f"{conn.host.name}: cannot take the lock {path}: {reason}; nothing was changed")
        if is_stale(status, stale_after):
            if status.details in broken:
                raise LockedError(f"{conn.host.name}: cannot remove the stale lock {path}; remove it by hand")
            notify(f"breaking a stale lock held by {describe_holder(status.details)} ({status.age}s old)")
            conn.run(["sh", "-c", _BREAK_SCRIPT, "sh", path, status.details])
            broken.add(status.details)
            continue
        holder = describe_holder(status.details)
        if time.monotonic() >= deadline:
            raise LockedError(
                f"{conn.host.name}: another deploy holds the lock {path}: {holder}"
                f"{'' if wait else ' (use --lock-wait SECONDS to wait for it)'}"
            )
        if not told:
            notify(f"waiting up to {wait:.0f}s for the lock held by {holder}")
            told = True
        time.sleep(min(delay, max(deadline - time.monotonic(), 0.05)))
        delay = min(delay * 1.5, 2.0)


def break_if_stale(
    conn: HostConnection,
    config_path: str,
    status: LockStatus,
    *,
    stale_after: float = DEFAULT_STALE_AFTER,
    notify: Callable[[str], None] = lambda _: None,
) -> None:
    """Seen by a run that does not need the lock: remove a stale one, mention a live one."""
    if status.status != "held":
        return
    if is_stale(status, stale_after):
        notify(f"removing a stale lock held by {describe_holder(status.details)} ({status.age}s old)")
        conn.run(["sh", "-c", _BREAK_SCRIPT, "sh", lock_path(config_path), status.details])
    else:
        notify(f"note: another deploy holds the lock: {describe_holder(status.details)}")


def release_argv(config_path: str, owner: LockOwner) -> list[str]:
    """The command that removes the lock if (and only if) we hold it."""
    return ["sh", "-c", _RELEASE_SCRIPT, "sh", lock_path(config_path), owner.token]
