"""Sockets and the channels joined on them; what a handshake says about its socket."""

from __future__ import annotations

import contextlib
import json
import re
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request

from .wire import (
    JSON_ENCODING,
    SERIALIZERS,
    Broadcast,
    Message,
    encode_message,
    encode_user_broadcast,
)


@dataclass(frozen=True)
class HandshakeInfo:
    """What the handshake request says about the socket it asks for."""

    vsn: str | None  # "1" or "2"; None for a version Phoenix would refuse
    raw_vsn: str
    tenant: str
    token: str | None


def describe_handshake(request: Request) -> HandshakeInfo:
    """Pull the serializer, tenant and token out of a handshake request."""
    query = parse_qs(urlsplit(request.path).query)
    raw_vsn = query.get("vsn", ["1.0.0"])[0]  # Phoenix's default when the client sends none
    vsn = next((major for major in SERIALIZERS if re.fullmatch(rf"{major}\.0\.\d+", raw_vsn)), None)
    token = request.headers.get("x-api-key") or query.get("apikey", [None])[0]
    return HandshakeInfo(vsn, raw_vsn, tenant_from_host(request.headers.get("Host", "")), token)


def tenant_from_host(host: str) -> str:
    """Realtime's tenant id: the host without its port, up to the first dot."""
    if host.startswith("["):  # an IPv6 literal has no labels; Realtime would take it whole
        return host[1:].split("]", 1)[0]
    name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    return name.split(".", 1)[0]


@dataclass(eq=False)
class Channel:
    """One joined topic on one socket, with the options the client joined with."""

    socket: Socket
    topic: str
    join_ref: str | None
    broadcast_self: bool
    broadcast_ack: bool

    @property
    def name(self) -> str:
        return self.topic.removeprefix("realtime:")


@dataclass(eq=False)
class Socket:
    """One WebSocket connection and the channels joined on it."""

    connection: ServerConnection
    vsn: str
    tenant: str
    token: str
    channels: dict[str, Channel] = field(default_factory=dict)

    async def send_frame(self, frame: str | bytes) -> None:
        """Send one frame; a peer that went away is not an error for the sender."""
        with contextlib.suppress(ConnectionClosed):
            await self.connection.send(frame)

    async def push(self, message: Message) -> None:
        """Send one message in this socket's serializer."""
        await self.send_frame(encode_message(self.vsn, message))

    async def reply(self, request: Message, status: str, response: object) -> None:
        """Answer a client message with ``phx_reply`` (same ref and join_ref)."""
        payload = {"status": status, "response": response}
        await self.push(Message(request.topic, "phx_reply", payload, request.ref, request.join_ref))

    async def deliver(self, topic: str, broadcast: Broadcast) -> None:
        """Send a broadcast as Realtime's fastlane does for this socket's serializer."""
        if broadcast.payload is not None:
            await self.push(Message(topic, "broadcast", broadcast.payload))
        elif self.vsn == "2":
            await self.send_frame(encode_user_broadcast(topic, broadcast))
        elif broadcast.encoding == JSON_ENCODING:  # V1 cannot carry binary payloads
            try:
                data = json.loads(broadcast.data)
            except ValueError:
                return
            payload = {"type": "broadcast", "event": broadcast.user_event, "payload": data}
            await self.push(Message(topic, "broadcast", payload))
