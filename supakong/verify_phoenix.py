"""The Phoenix channel protocol as supabase-js speaks it to Realtime.

vsn 1.0.0 frames are JSON objects `{"topic", "event", "payload", "ref", "join_ref"}` (the
server never sends `join_ref` back); vsn 2.0.0 frames are JSON arrays
`[join_ref, ref, topic, event, payload]`, plus Realtime's binary frames for user broadcasts
(`RealtimeWeb.Socket.V2Serializer`, type 4). The payload builders mirror
`RealtimeChannel.subscribe` / `send` of realtime-js.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import ClientConnection

from supakong.verify_model import ChannelSpec

PHX_JOIN = "phx_join"
PHX_REPLY = "phx_reply"
PHX_LEAVE = "phx_leave"
PHX_CLOSE = "phx_close"
PHX_ERROR = "phx_error"
HEARTBEAT_TOPIC = "phoenix"
BROADCAST_EVENT = "supakong-probe"

_USER_BROADCAST = 4  # V2Serializer binary frame type for user broadcasts
_INBOX_LIMIT = 500


@dataclass(frozen=True)
class PhoenixMessage:
    topic: str
    event: str
    payload: dict[str, Any] = field(default_factory=dict)
    ref: str | None = None
    join_ref: str | None = None

    @property
    def status(self) -> str | None:
        """`ok` / `error` of a phx_reply (None for other events)."""
        value = self.payload.get("status") if self.event == PHX_REPLY else None
        return value if isinstance(value, str) else None

    @property
    def response(self) -> dict[str, Any]:
        value = self.payload.get("response")
        return value if isinstance(value, dict) else {}


def is_v1(vsn: str) -> bool:
    return vsn.split(".")[0] == "1"


def _ref(value: object) -> str | None:
    return None if value is None else str(value)


def encode(message: PhoenixMessage, vsn: str) -> str:
    """One text frame for `message` in serializer version `vsn`."""
    if is_v1(vsn):
        return json.dumps(
            {
                "topic": message.topic,
                "event": message.event,
                "payload": message.payload,
                "ref": message.ref,
                "join_ref": message.join_ref,
            }
        )
    return json.dumps([message.join_ref, message.ref, message.topic, message.event, message.payload])


def _decode_user_broadcast(frame: bytes) -> PhoenixMessage | None:
    """Realtime's binary user broadcast: type, sizes, encoding, topic, event, meta, payload."""
    if len(frame) < 5 or frame[0] != _USER_BROADCAST:
        return None
    topic_size, event_size, meta_size, encoding = frame[1], frame[2], frame[3], frame[4]
    start = 5
    topic = frame[start : start + topic_size].decode("utf-8", "replace")
    start += topic_size
    user_event = frame[start : start + event_size].decode("utf-8", "replace")
    start += event_size + meta_size
    raw = frame[start:]
    try:
        user_payload: Any = json.loads(raw) if encoding == 1 else None
    except ValueError:
        user_payload = None
    payload = {"type": "broadcast", "event": user_event, "payload": user_payload}
    return PhoenixMessage(topic, "broadcast", payload)


def decode(frame: str | bytes, vsn: str) -> PhoenixMessage | None:
    """Parse one frame; None for anything that is not a well-formed Phoenix message."""
    if isinstance(frame, bytes):
        return None if is_v1(vsn) else _decode_user_broadcast(frame)
    try:
        data = json.loads(frame)
    except ValueError:
        return None
    if isinstance(data, list) and len(data) >= 5:
        join_ref, ref, topic, event, payload = data[:5]
    elif isinstance(data, dict):
        join_ref, ref = data.get("join_ref"), data.get("ref")
        topic, event, payload = data.get("topic"), data.get("event"), data.get("payload")
    else:
        return None
    if not isinstance(topic, str) or not isinstance(event, str):
        return None
    payload = payload if isinstance(payload, dict) else {}
    return PhoenixMessage(topic, event, payload, _ref(ref), _ref(join_ref))


def sent_bindings(channel: ChannelSpec) -> list[dict[str, str]]:
    """The postgres_changes bindings realtime-js sends: each binding's filter object."""
    if not channel.has_postgres_changes:
        return []
    return [{"event": channel.event, "schema": channel.schema, "table": channel.table}]


def join_payload(channel: ChannelSpec, access_token: str, extra: tuple[dict[str, str], ...] = ()) -> dict[str, Any]:
    """The phx_join payload of `supabase.channel(name).on('postgres_changes', …).subscribe()`
    (``extra``: more postgres_changes bindings, e.g. the event probe's)."""
    return {
        "config": {
            "broadcast": {"ack": True, "self": True},
            "presence": {"enabled": False, "key": ""},
            "postgres_changes": [*sent_bindings(channel), *extra],
            "private": False,
        },
        "access_token": access_token,
    }


def broadcast_payload(nonce: str) -> dict[str, Any]:
    """What `channel.send({type: 'broadcast', event, payload})` pushes."""
    return {"type": "broadcast", "event": BROADCAST_EVENT, "payload": {"nonce": nonce}}


def bindings_match(sent: list[dict[str, str]], response: dict[str, Any]) -> bool:
    """realtime-js's check of the join reply: each server binding equals the one sent.

    A reply without `postgres_changes` is accepted (realtime-js reports SUBSCRIBED).
    """
    server = response.get("postgres_changes")
    if server is None:
        return True
    if not isinstance(server, list):
        return False
    for index, binding in enumerate(sent):
        theirs = server[index] if index < len(server) else None
        if not isinstance(theirs, dict):
            return False
        for key in ("event", "schema", "table", "filter"):
            if theirs.get(key) != binding.get(key):
                return False
    return True


def is_echo(message: PhoenixMessage, topic: str, nonce: str) -> bool:
    """The self-broadcast of our probe broadcast (same topic, event and nonce)."""
    inner = message.payload.get("payload")
    return (
        message.topic == topic
        and message.event == "broadcast"
        and message.payload.get("event") == BROADCAST_EVENT
        and isinstance(inner, dict)
        and inner.get("nonce") == nonce
    )


class PhoenixSession:
    """A Phoenix socket on an open WebSocket: numbered pushes and a waiting inbox.

    Frames that arrive while waiting for something else are kept, so a `system` message or
    a broadcast echo that overtakes a reply is not lost.
    """

    def __init__(self, ws: ClientConnection, vsn: str) -> None:
        self.ws = ws
        self.vsn = vsn
        self.inbox: list[PhoenixMessage] = []
        self._counter = 0

    def next_ref(self) -> str:
        self._counter += 1
        return str(self._counter)

    async def push(self, topic: str, event: str, payload: dict[str, Any], join_ref: str | None = None) -> str:
        """Send one message and return its ref."""
        ref = self.next_ref()
        await self.ws.send(encode(PhoenixMessage(topic, event, payload, ref, join_ref), self.vsn))
        return ref

    async def join(self, topic: str, payload: dict[str, Any]) -> str:
        """Send phx_join; its ref is also the channel's join_ref (as in phoenix.js)."""
        ref = self.next_ref()
        message = PhoenixMessage(topic, PHX_JOIN, payload, ref, ref)
        await self.ws.send(encode(message, self.vsn))
        return ref

    def _take(self, wanted: Callable[[PhoenixMessage], bool]) -> PhoenixMessage | None:
        for index, message in enumerate(self.inbox):
            if wanted(message):
                return self.inbox.pop(index)
        return None

    async def expect(self, wanted: Callable[[PhoenixMessage], bool], deadline: float) -> PhoenixMessage | None:
        """The first message (kept or new) that `wanted` accepts, or None at `deadline`.

        `deadline` is on the `time.monotonic()` clock. ConnectionClosed propagates.
        """
        kept = self._take(wanted)
        if kept is not None:
            return kept
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                frame = await asyncio.wait_for(self.ws.recv(), remaining)
            except TimeoutError:
                return None
            message = decode(frame, self.vsn)
            if message is None:
                continue
            if wanted(message):
                return message
            if len(self.inbox) < _INBOX_LIMIT:
                self.inbox.append(message)
        return None
