"""End-of-file on an SSH channel, safely.

paramiko's ``Channel.shutdown_write()`` builds the EOF message under the channel's lock but
sends it after releasing the lock. When the remote command ends at that moment, the
transport thread answers the server's CLOSE in between: the EOF then reaches the server
*after* the channel's CLOSE, OpenSSH has already freed the channel and drops the whole
connection ("ieof packet referred to nonexistent channel 0"; paramiko issues #1115 and
#1705, still open). Seen once in a 30-host benchmark: one host's run failed with "SSH
session not active".
"""

from __future__ import annotations

import paramiko


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
