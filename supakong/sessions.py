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
    """The open session channels of one connection and, once learned, how many may be open.

    A session closed on our side still counts on the server until its main loop collects
    it, which it does only after it has handled every message that arrived with our CLOSE:
    a CHANNEL_OPEN sent right behind the CLOSE finds it still there ("no more sessions").
    So when the only free slots are ones that just closed, :meth:`wait_for_slot` first asks
    the server a question (``sync``: one round trip): once the answer is back, the server has
    collected them.
    """

    def __init__(self) -> None:
        self.capacity: int | None = None
        self._channels: list[paramiko.Channel] = []  # open, or closed since the last sync
        self._opening = 0  # slots taken by opens under way (wait_for_slot, then track or give_back)
        self._lock = threading.Lock()
        self._sync_lock = threading.Lock()
        #: called while waiting for a free session: close what is idle (kept engine channels)
        self.reclaimers: list[Callable[[], None]] = []

    @property
    def constrained(self) -> bool:
        """Has the server refused a session on this connection (so its limit is known)?"""
        return self.capacity is not None

    def in_use(self) -> int:
        """Session channels of this connection not closed yet, and opens under way."""
        with self._lock:
            return self._in_use()

    def _in_use(self) -> int:
        return self._opening + sum(1 for channel in self._channels if not channel.closed)

    def _closed(self) -> int:
        return sum(1 for channel in self._channels if channel.closed)

    def track(self, channel: paramiko.Channel, *, slot: bool = False) -> paramiko.Channel:
        """Count ``channel`` until it is closed (``slot``: it takes the slot that
        :meth:`wait_for_slot` gave); returns it."""
        with self._lock:
            if slot:
                self._opening -= 1
            if self.capacity is None:  # nothing to sync yet: forget the closed ones
                self._channels = [c for c in self._channels if not c.closed]
            self._channels.append(channel)
        return channel

    def give_back(self) -> None:
        """The open that :meth:`wait_for_slot` gave a slot to failed."""
        with self._lock:
            self._opening -= 1

    def refused(self, pending: int = 0) -> None:
        """A session open was refused: learn from how many were open (``pending``: sessions
        asked for ahead and not taken yet, open on the server all the same)."""
        self.capacity = learned_capacity(self.capacity, self.in_use() + pending)

    def wait_for_slot(self, deadline: float, pending: int = 0, sync: Callable[[], None] = lambda: None) -> bool:
        """Wait until fewer than the learned limit are open (at once when it is unknown);
        False if ``deadline`` (monotonic) passed first. Idle sessions are asked to close;
        sessions that just closed are made sure of with ``sync`` (see the class's doc). On
        True the caller holds a slot: it passes the channel to :meth:`track` with ``slot``,
        or calls :meth:`give_back`."""
        delay = 0.005
        while True:
            with self._lock:
                if self.capacity is None or self._in_use() + pending < self.capacity:
                    self._opening += 1
                    must_sync = self.capacity is not None and self._in_use() + pending + self._closed() > self.capacity
                    break
            for reclaim in self.reclaimers:
                reclaim()
            if self.in_use() + pending < (self.capacity or 1):
                continue
            if time.monotonic() >= deadline:
                return False
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
        if must_sync:
            self._sync(sync)
        return True

    def _sync(self, sync: Callable[[], None]) -> None:
        """One round trip, after which the server has let go of the sessions closed before it."""
        with self._sync_lock:
            with self._lock:
                closed = [c for c in self._channels if c.closed]
            if not closed:
                return  # another thread synced them meanwhile
            sync()
            with self._lock:
                self._channels = [c for c in self._channels if c not in closed]
