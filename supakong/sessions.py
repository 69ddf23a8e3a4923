"""How many sessions one SSH connection may have open at once, learned from the server.

OpenSSH allows ``MaxSessions`` (default 10) sessions per connection and refuses the next
one with a bare "open failed" (paramiko: ``ChannelException(2, 'Connect failed')``). A run
uses several at once on a normal server (the look's command beside the Docker Engine's
``dial-stdio`` channels, a session asked for ahead), and nothing tells the limit up front: the
first refusal does. :class:`SessionBudget` remembers it for the connection, so that the run
pays that refusal once: from then on a session is opened only when one is free (waiting for
one to close, and asking idle ones to close), and no session is asked for ahead.

:func:`learned_capacity` and the messages are pure; the budget counts the connection's open
session channels (paramiko marks a channel ``closed`` once either side closed it).
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable

import paramiko

#: How long a refused session is tried again when the budget says one should be free: a
#: session whose channel is closed stays counted by sshd until its command has exited.
RETRY_FOR = 10.0


def learned_capacity(known: int | None, open_now: int) -> int | None:
    """The limit after a refused session open while ``open_now`` others were open: at most
    that many (the refusal proves the server counts them). ``open_now == 0`` teaches nothing:
    a session that is closing may still count on the server."""
    if open_now <= 0:
        return known
    return open_now if known is None else min(known, open_now)


def max_sessions_message(host: str, address: str, capacity: int | None, waited: float) -> str:
    """A session never became free: name the sshd setting to change."""
    limit = f"{capacity} at a time" if capacity else "none"
    return (
        f"{host} ({address}): no SSH session could be opened within {waited:.0f}s: the server allows {limit}"
        " (sshd_config MaxSessions); set MaxSessions 2 or more for this user"
    )


def sessions_refused_message(host: str, address: str) -> str:
    """Every session is refused, even with none open."""
    return (
        f"{host} ({address}): the SSH server refuses every session (sshd_config MaxSessions 0?);"
        " set MaxSessions 1 or more for this user"
    )


class SessionBudget:
    """The open session channels of one connection and, once learned, how many may be open."""

    def __init__(self) -> None:
        self.capacity: int | None = None
        self._open: weakref.WeakSet[paramiko.Channel] = weakref.WeakSet()
        self._lock = threading.Lock()
        #: called while waiting for a free session: close what is idle (kept engine channels)
        self.reclaimers: list[Callable[[], None]] = []

    @property
    def constrained(self) -> bool:
        """Has the server refused a session on this connection (so its limit is known)?"""
        return self.capacity is not None

    def in_use(self) -> int:
        """Session channels of this connection not closed yet."""
        with self._lock:
            return sum(1 for channel in self._open if not channel.closed)

    def track(self, channel: paramiko.Channel) -> paramiko.Channel:
        """Count ``channel`` until it is closed; returns it."""
        with self._lock:
            self._open.add(channel)
        return channel

    def refused(self, pending: int = 0) -> None:
        """A session open was refused: learn from how many were open (``pending``: sessions
        asked for ahead and not taken yet, open on the server all the same)."""
        self.capacity = learned_capacity(self.capacity, self.in_use() + pending)

    def wait_for_slot(self, deadline: float, pending: int = 0) -> bool:
        """Wait until fewer than the learned limit are open (at once when it is unknown);
        False if ``deadline`` (monotonic) passed first. Idle sessions are asked to close."""
        delay = 0.005
        while self.capacity is not None and self.in_use() + pending >= self.capacity:
            for reclaim in self.reclaimers:
                reclaim()
            if self.in_use() + pending < self.capacity:
                break
            if time.monotonic() >= deadline:
                return False
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
        return True
