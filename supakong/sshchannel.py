"""SSH channel primitives paramiko lacks: end-of-file sent safely, and a channel asked for
now and taken later (so that its opening can ride along with another message).

End-of-file:

paramiko's ``Channel.shutdown_write()`` builds the EOF message under the channel's lock but
sends it after releasing the lock. When the remote command ends at that moment, the
transport thread answers the server's CLOSE in between: the EOF then reaches the server
*after* the channel's CLOSE, OpenSSH has already freed the channel and drops the whole
connection ("ieof packet referred to nonexistent channel 0"; paramiko issues #1115 and
#1705, still open). Seen once in a 30-host benchmark: one host's run failed with "SSH
session not active".
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import paramiko
from paramiko.common import cMSG_CHANNEL_OPEN
from paramiko.message import Message

SESSION = "session"
STREAMLOCAL = "direct-streamlocal@openssh.com"


def send_eof(channel: paramiko.Channel) -> None:
    """Tell the remote command its stdin ended (``shutdown_write``), never after the
    channel's CLOSE: the message is sent while the channel's lock is held, so the
    transport thread's CLOSE for the same channel waits until the EOF is on the wire.

    (Only a key re-exchange could make the send wait, and then at most paramiko's
    ``clear_to_send_timeout``; supakong's sessions end long before one.)
    """
    with channel.lock:
        if channel.closed or not channel.active:
            return
        message = channel._send_eof()  # type: ignore[attr-defined]  # paramiko builds it under the lock
        if message is not None and channel.transport is not None:
            channel.transport._send_user_message(message)  # type: ignore[attr-defined]  # still under it


class PendingChannel:
    """A channel whose CHANNEL_OPEN is on the wire: :meth:`wait` takes it once the server
    has confirmed it (or raises as paramiko's ``open_channel`` would)."""

    def __init__(self, channel: paramiko.Channel, event: threading.Event, what: str) -> None:
        # paramiko maps channel ids to channels weakly: this reference keeps it registered.
        self.channel, self.event, self.what = channel, event, what
        self.transport: paramiko.Transport = channel.get_transport()
        self.chanid = channel.get_id()

    def wait(self, timeout: float) -> paramiko.Channel:
        """The opened channel; ``ChannelException`` if the server refused it,
        ``SSHException`` if the connection ended or ``timeout`` passed first."""
        t: Any = self.transport
        deadline = time.monotonic() + timeout
        while not self.event.wait(0.1):
            if not t.active:
                raise t.get_exception() or paramiko.SSHException("SSH session ended")
            if time.monotonic() > deadline:
                self.abandon()
                raise paramiko.SSHException(f"timeout opening {self.what}")
        opened = t._channels.get(self.chanid)
        if opened is None:
            raise t.get_exception() or paramiko.ChannelException(1, f"cannot open {self.what}")
        return opened

    def abandon(self) -> None:
        """Forget a request the server will never answer (it came before authentication
        succeeded and was dropped as unexpected); an answer that still comes is ignored."""
        t: Any = self.transport
        with t.lock:
            t.channel_events.pop(self.chanid, None)
            t._channels.delete(self.chanid)


def request_channel(
    transport: paramiko.Transport,
    kind: str,
    payload: Callable[[Message], None] | None = None,
    *,
    what: str = "",
    from_transport_thread: bool = False,
) -> PendingChannel:
    """Send a CHANNEL_OPEN of ``kind`` (``payload`` adds the type-specific fields) and
    return at once: the channel is registered the way :meth:`paramiko.Transport.open_channel`
    does it (paramiko has no public call for other kinds than session, tcpip and x11, nor
    for sending without waiting). ``from_transport_thread``: sent by paramiko's own thread
    in the middle of authentication, where its usual send (which waits for a key exchange to
    end) must not block.
    """
    if not transport.is_active():
        raise paramiko.SSHException("SSH session not active")
    t: Any = transport  # paramiko's private channel bookkeeping (not in its type stubs)
    with t.lock:
        window_size = t._sanitize_window_size(None)
        max_packet_size = t._sanitize_packet_size(None)
        chanid = t._next_channel()
        m = Message()
        m.add_byte(cMSG_CHANNEL_OPEN)
        m.add_string(kind)
        m.add_int(chanid)
        m.add_int(window_size)
        m.add_int(max_packet_size)
        if payload is not None:
            payload(m)
        chan = paramiko.Channel(chanid)
        t._channels.put(chanid, chan)
        t.channel_events[chanid] = event = threading.Event()
        t.channels_seen[chanid] = True
        c: Any = chan
        c._set_transport(transport)
        c._set_window(window_size, max_packet_size)
    if from_transport_thread:
        t._send_message(m)
    else:
        t._send_user_message(m)
    return PendingChannel(chan, event, what or f"a {kind} channel")


def streamlocal_payload(socket_path: str) -> Callable[[Message], None]:
    """The fields of a ``direct-streamlocal@openssh.com`` open (OpenSSH PROTOCOL §2.4):
    the socket's path, a reserved string and a reserved uint32."""

    def add(m: Message) -> None:
        m.add_string(socket_path)
        m.add_string("")
        m.add_int(0)

    return add
