"""A single-file stand-in for self-hosted Supabase Realtime (Phoenix), for the sandbox and tests.

Real Realtime needs Postgres and the BEAM, which the sandbox does not have. This stand-in
acts like Realtime v2.129 on the wire, as far as a deploy check behind Kong can see:

* The tenant is the first DNS label of the Host header (``realtime-dev.supabase-realtime:4000``
  gives ``realtime-dev``). This is why ``preserve_host: true`` on the Kong route breaks things.
* The handshake token comes from the ``x-api-key`` header, else the ``apikey`` query param.
  It must be an HS256/384/512 JWT signed with ``API_JWT_SECRET``, with ``exp`` and ``role``.
* A rejected handshake gets a real HTTP status. From v2.116 on, the body is JSON
  ``{"error": ...}`` (404 unknown tenant, 401 token problems). Older versions answer 403
  with an empty body.
* Phoenix channels with serializers ``vsn=1.0.0`` (JSON objects, the default) and ``vsn=2.0.0``
  (JSON arrays, plus the binary broadcast frames that realtime-js sends). Supported:
  ``phx_join``, ``heartbeat``, ``broadcast`` (self/ack/fan-out), ``presence`` (reply only),
  ``access_token``, ``phx_leave``, and the postgres_changes ``system`` message checked
  against a fake ``supabase_realtime`` publication.
* ``GET /healthcheck``, ``GET /api/tenants/<tenant>/health`` (Bearer JWT) and ``GET /api/ping``.

Environment: ``API_JWT_SECRET`` (required), ``PORT`` (4000), ``HOST`` (0.0.0.0),
``SELF_HOST_TENANT_NAME`` (realtime-dev), ``APP_NAME`` (realtime),
``REALTIME_PUBLICATION_TABLES`` (``public.wells,public.messages``), ``REALTIME_VERSION``
(v2.129.8). Logs go to stdout in the style of Elixir's Logger. SIGTERM exits 0.

This file must run with only the stdlib, ``websockets`` and ``PyJWT``. It does not import
the ``supakong`` package, because it is bind-mounted alone into a container.
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import json
import logging
import os
import re
import signal
import sys
import time
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import formatdate
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed, InvalidMessage
from websockets.http11 import Request, Response

SOCKET_PATHS = frozenset({"/socket/websocket", "/socket/websocket/"})
JSON_ERRORS_SINCE = (2, 116, 0)  # supabase/realtime d27b694c "feat: improve phoenix errors"
HS_ALGORITHMS = ["HS256", "HS384", "HS512"]
SERIALIZERS = {"1": "Phoenix.Socket.V1.JSONSerializer", "2": "RealtimeWeb.Socket.V2Serializer"}
# Realtime V2 binary frames (realtime-js serializer.ts): client push = 3, server broadcast = 4.
USER_BROADCAST_PUSH, USER_BROADCAST = 3, 4
JSON_ENCODING = 1
MISSING_CLAIMS = "Fields `role` and `exp` are required in JWT"


class ConfigError(Exception):
    """The environment does not describe a runnable stand-in."""


@dataclass(frozen=True)
class Settings:
    """What the stand-in was started with (see the module docstring for the env names)."""

    host: str
    port: int
    jwt_secret: str
    tenant: str
    app_name: str
    publication_tables: frozenset[str]
    version: tuple[int, int, int]

    @property
    def json_errors(self) -> bool:
        """Whether handshake errors carry a JSON body (v2.116+) or are a bare 403."""
        return self.version >= JSON_ERRORS_SINCE


def parse_version(text: str) -> tuple[int, int, int]:
    """Turn ``v2.129.8`` (or ``2.129.8``) into ``(2, 129, 8)``."""
    match = re.fullmatch(r"v?(\d+)\.(\d+)\.(\d+)", text.strip())
    if not match:
        raise ConfigError(f"REALTIME_VERSION must look like v2.129.8, got {text!r}")
    major, minor, patch = (int(part) for part in match.groups())
    return major, minor, patch


def load_settings(env: Mapping[str, str]) -> Settings:
    """Read the settings from an environment mapping; raise ConfigError when unusable."""
    secret = env.get("API_JWT_SECRET", "")
    if not secret:
        raise ConfigError("API_JWT_SECRET is required (the secret that signs anon/service JWTs)")
    port_text = env.get("PORT", "4000")
    if not (port_text.isascii() and port_text.isdecimal()) or int(port_text) > 65535:
        raise ConfigError(f"PORT must be a TCP port number, got {port_text!r}")
    tables = env.get("REALTIME_PUBLICATION_TABLES", "public.wells,public.messages")
    return Settings(
        host=env.get("HOST", "0.0.0.0"),
        port=int(port_text),
        jwt_secret=secret,
        tenant=env.get("SELF_HOST_TENANT_NAME", "realtime-dev"),
        app_name=env.get("APP_NAME", "realtime"),
        publication_tables=frozenset(t.strip() for t in tables.split(",") if t.strip()),
        version=parse_version(env.get("REALTIME_VERSION", "v2.129.8")),
    )


def log(level: str, message: str, tenant: str | None = None) -> None:
    """Print one Elixir-Logger-style line: ``10:00:00.123 project=t external_id=t [info] msg``."""
    now = datetime.now().strftime("%H:%M:%S.%f")[:-3]
    metadata = f"project={tenant} external_id={tenant} " if tenant else ""
    print(f"{now} {metadata}[{level}] {message}", flush=True)


# --- JWT -----------------------------------------------------------------------------------


class TokenRejected(Exception):
    """A JWT Realtime would refuse, with its error code and both forms of the message."""

    def __init__(self, code: str, message: str, http_error: str | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message  # as in logs and channel join replies
        self.http_error = http_error or message  # as in the handshake's JSON body


def verify_jwt(token: str, secret: str, now: float | None = None) -> dict[str, Any]:
    """Check a token the way Realtime does: signature first, then ``exp`` and ``role``."""
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=HS_ALGORITHMS,
            # exp is checked below so the message can say how long ago it expired.
            options={
                "verify_exp": False,
                "verify_aud": False,
                "verify_iat": False,
                "verify_nbf": False,
            },
        )
    except (jwt.InvalidSignatureError, jwt.InvalidAlgorithmError) as exc:
        raise TokenRejected("JwtSignatureError", "Failed to validate JWT signature") from exc
    except jwt.DecodeError as exc:
        raise TokenRejected("MalformedJWT", "The token provided is not a valid JWT") from exc
    exp = claims.get("exp")
    if not isinstance(exp, int) or "role" not in claims:
        raise TokenRejected("InvalidJWTToken", MISSING_CLAIMS)
    remaining = exp - int(time.time() if now is None else now)
    if remaining <= 0:
        raise TokenRejected("InvalidJWTToken", f"Token has expired {-remaining} seconds ago", "Token has expired")
    return claims


# --- HTTP answers --------------------------------------------------------------------------


def http_response(status: int, body: bytes = b"", content_type: str | None = None) -> Response:
    """An HTTP answer for websockets' ``process_request`` (it closes the connection after)."""
    headers = Headers([("date", formatdate(usegmt=True)), ("content-length", str(len(body)))])
    headers["cache-control"] = "max-age=0, private, must-revalidate"
    if content_type:
        headers["content-type"] = content_type
    return Response(status, http.HTTPStatus(status).phrase, headers, body)


def json_response(status: int, body: object) -> Response:
    """A JSON answer, encoded like Phoenix's Jason (no spaces)."""
    data = json.dumps(body, separators=(",", ":")).encode()
    return http_response(status, data, "application/json; charset=utf-8")


def raw_http_response(status: int, body: bytes = b"", content_type: str | None = None) -> bytes:
    """The bytes of a complete HTTP/1.1 answer, for requests websockets cannot parse."""
    response = http_response(status, body, content_type)
    response.headers["connection"] = "close"
    head = f"HTTP/1.1 {status} {response.reason_phrase}\r\n"
    lines = "".join(f"{name}: {value}\r\n" for name, value in response.headers.raw_items())
    return (head + lines + "\r\n").encode() + body


NOT_FOUND_BODY = json.dumps({"errors": {"detail": "Not Found"}}).encode()


class PhoenixMethodsConnection(ServerConnection):
    """Answers non-GET requests the way Phoenix does, instead of dropping them.

    websockets' request parser accepts only GET and closes the TCP connection without a word
    on anything else. Phoenix answers 400 to other methods on the socket path and 404
    elsewhere, so this class reads the request line first and answers those itself.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._state = "request-line"  # then "websocket" (hand over) or "answered" (drop input)
        self._head = b""

    def data_received(self, data: bytes) -> None:
        if self._state == "websocket":
            super().data_received(data)
            return
        if self._state == "answered":
            return
        self._head += data
        if b"\n" not in self._head and len(self._head) < 8192:
            return  # wait for the whole request line
        head, self._head = self._head, b""
        method, _, rest = head.partition(b" ")
        if method == b"GET":
            self._state = "websocket"
            super().data_received(head)
            return
        self._state = "answered"
        path = rest.split(b" ", 1)[0].split(b"?", 1)[0].decode("latin-1")
        if path in SOCKET_PATHS:
            self.transport.write(raw_http_response(400))
        else:
            self.transport.write(raw_http_response(404, NOT_FOUND_BODY, "application/json; charset=utf-8"))
        self.transport.close()


class WebsocketsLogBridge(logging.Handler):
    """Shows websockets' own warnings in our log format, without a traceback per TCP probe."""

    def emit(self, record: logging.LogRecord) -> None:
        exc = record.exc_info[1] if record.exc_info else None
        # A port probe or healthcheck that connects and leaves ends up here; Bandit is silent.
        if isinstance(exc, InvalidMessage) and isinstance(exc.__cause__, EOFError):
            return
        detail = f": {exc!r}" if exc else ""
        level = "error" if record.levelno >= logging.ERROR else "warning"
        log(level, f"websockets: {record.getMessage()}{detail}")


# --- Phoenix wire format -------------------------------------------------------------------


@dataclass(frozen=True)
class Message:
    """One Phoenix message, whatever the serializer."""

    topic: str
    event: str
    payload: Any
    ref: str | None = None
    join_ref: str | None = None


@dataclass(frozen=True)
class Broadcast:
    """A broadcast on its way to subscribers.

    Either ``payload`` (a JSON push: ``{"type": "broadcast", "event", "payload"}``), or a V2
    binary "user broadcast push" kept as ``user_event`` + ``encoding`` + raw ``data``.
    """

    payload: Any = None
    user_event: str = ""
    encoding: int = JSON_ENCODING
    data: bytes = b""


def decode_text_frame(vsn: str, text: str) -> Message:
    """Parse a client text frame: JSON object (V1) or ``[join_ref, ref, topic, event, payload]``."""
    raw = json.loads(text)
    if vsn == "2":
        join_ref, ref, topic, event, payload = raw
        message = Message(topic, event, payload, ref, join_ref)
    else:
        message = Message(raw["topic"], raw["event"], raw.get("payload", {}), raw.get("ref"), raw.get("join_ref"))
    if not isinstance(message.topic, str) or not isinstance(message.event, str):
        raise ValueError("topic and event must be strings")
    return message


def encode_message(vsn: str, message: Message) -> str:
    """Serialize a server message. V1 never carries ``join_ref`` (Phoenix's V1 serializer)."""
    if vsn == "2":
        fields = [message.join_ref, message.ref, message.topic, message.event, message.payload]
        return json.dumps(fields, separators=(",", ":"))
    obj = {
        "topic": message.topic,
        "event": message.event,
        "payload": message.payload,
        "ref": message.ref,
    }
    return json.dumps(obj, separators=(",", ":"))


def decode_user_broadcast_push(frame: bytes) -> tuple[Message, Broadcast]:
    """Parse realtime-js's binary broadcast push (kind 3) into its envelope and its broadcast."""
    kind, join_ref_len, ref_len, topic_len, event_len, meta_len, encoding = frame[:7]
    if kind != USER_BROADCAST_PUSH:
        raise ValueError(f"unsupported binary frame kind {kind}")
    parts, offset = [], 7
    for length in (join_ref_len, ref_len, topic_len, event_len, meta_len):
        parts.append(frame[offset : offset + length].decode())
        offset += length
    join_ref, ref, topic, user_event, _meta = parts  # Realtime ignores the metadata too
    envelope = Message(topic, "broadcast", None, ref or None, join_ref or None)
    return envelope, Broadcast(user_event=user_event, encoding=encoding, data=frame[offset:])


def encode_user_broadcast(topic: str, broadcast: Broadcast) -> bytes:
    """Build the binary broadcast (kind 4) that Realtime sends to V2 subscribers."""
    topic_bytes, event_bytes = topic.encode(), broadcast.user_event.encode()
    header = bytes([USER_BROADCAST, len(topic_bytes), len(event_bytes), 0, broadcast.encoding])
    return header + topic_bytes + event_bytes + broadcast.data


def binding_id(binding: Mapping[str, Any]) -> int:
    """A stable id per postgres_changes binding (Realtime uses phash2, range 0..2**27-1)."""
    canonical = json.dumps(binding, sort_keys=True, separators=(",", ":"))
    return zlib.crc32(canonical.encode()) & (2**27 - 1)


def elixir_inspect(params: Mapping[str, Any]) -> str:
    """Render a flat map as Elixir's ``inspect`` does, e.g. ``%{"schema" => "public"}``."""
    pairs = ", ".join(f"{json.dumps(k)} => {json.dumps(v)}" for k, v in sorted(params.items()))
    return "%{" + pairs + "}"


def unpublished_binding(binding: Mapping[str, Any], tables: frozenset[str]) -> bool:
    """Whether Realtime's subscription insert would find no published table for this binding."""
    schema, table = binding.get("schema", "public"), binding.get("table")
    if table in (None, "*"):
        return not any(name.startswith(f"{schema}.") for name in tables)
    return f"{schema}.{table}" not in tables


def as_dict(value: object) -> dict[str, Any]:
    """``value`` if it is a JSON object, else ``{}``: clients may send anything."""
    return value if isinstance(value, dict) else {}


def redact_join_payload(payload: Mapping[str, Any]) -> str:
    """The join parameters for the log, without the token (Realtime redacts it too)."""
    shown = {k: ("<redacted>" if k in ("access_token", "user_token") else v) for k, v in payload.items()}
    return json.dumps(shown, sort_keys=True)


# --- Sockets and channels ------------------------------------------------------------------


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


class RealtimeStandin:
    """The server: HTTP endpoints, handshake checks and the channel protocol."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.topics: dict[str, set[Channel]] = {}

    # -- HTTP and handshake (websockets' process_request hook) --

    def process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        """Answer plain HTTP requests; return None to let a valid handshake go on to 101."""
        path = urlsplit(request.path).path
        if path in SOCKET_PATHS:
            return self.check_handshake(request)
        if path == "/healthcheck":
            return http_response(200, b"ok", "text/plain; charset=utf-8")
        if path == "/api/ping":
            return json_response(200, {"message": "Success"})
        match = re.fullmatch(r"/api/tenants/([^/]+)/health", path)
        if match:
            return self.tenant_health(match.group(1), request.headers)
        return http_response(404, NOT_FOUND_BODY, "application/json; charset=utf-8")

    def tenant_health(self, tenant: str, headers: Headers) -> Response:
        """``GET /api/tenants/<id>/health``: needs a Bearer JWT signed with API_JWT_SECRET."""
        authorization = headers.get("authorization", "")
        try:
            if not authorization.startswith("Bearer "):
                raise TokenRejected("Unauthorized", "missing bearer token")
            verify_jwt(authorization.removeprefix("Bearer "), self.settings.jwt_secret)
        except TokenRejected as rejected:
            log("error", f"Unauthorized health check: {rejected.code}", tenant)
            return json_response(403, {"error": "Unauthorized"})
        if tenant != self.settings.tenant:
            return json_response(404, {"error": "not found"})
        node = f"{self.settings.app_name}@127.0.0.1"
        health = {
            "healthy": True,
            "db_connected": True,
            "connected_cluster": 1,
            "region": "local",
            "node": node,
        }
        return json_response(200, {"data": health})

    def check_handshake(self, request: Request) -> Response | None:
        """Run Phoenix's and Realtime's connect checks, in their order."""
        info = describe_handshake(request)
        if info.vsn is None:
            # Phoenix refuses the serializer before UserSocket.connect runs: always 403, no body.
            log(
                "warning",
                f'The client\'s requested transport version "{info.raw_vsn}" does not match',
            )
            return http_response(403)
        rejection = self.connect_rejection(info)
        if rejection is not None:
            status, code, message, http_error = rejection
            log("error", f"{code}: {message}", info.tenant)
            if not self.settings.json_errors:
                return http_response(403)
            return json_response(status, {"error": http_error})
        upgrade = request.headers.get_all("Upgrade")
        if not any("websocket" in value.lower() for value in upgrade):
            # WebSockAdapter's check, after connect succeeded (Bandit answers 400, not 426).
            got = "[" + ", ".join(json.dumps(v) for v in upgrade) + "]"
            return http_response(400, f"'upgrade' header must contain 'websocket', got {got}".encode())
        return None

    def connect_rejection(self, info: HandshakeInfo) -> tuple[int, str, str, str] | None:
        """Why Realtime would refuse this connect: (status, code, log message, body), or None."""
        if info.tenant != self.settings.tenant:
            return 404, "TenantNotFound", f"Tenant not found: {info.tenant}", "Tenant not found"
        if not info.token:
            return 401, "MissingAPIKey", "API key is missing", "API key is missing"
        try:
            verify_jwt(info.token, self.settings.jwt_secret)
        except TokenRejected as rejected:
            return 401, rejected.code, rejected.message, rejected.http_error
        return None

    # -- WebSocket connection --

    async def handle_connection(self, connection: ServerConnection) -> None:
        """Serve one accepted WebSocket until the client goes away."""
        assert connection.request is not None
        info = describe_handshake(connection.request)
        socket = Socket(connection, info.vsn or "1", info.tenant, info.token or "")
        log(
            "info",
            "CONNECTED TO RealtimeWeb.UserSocket Transport: :websocket "
            f"Serializer: {SERIALIZERS[socket.vsn]} "
            f'Parameters: %{{"apikey" => "[FILTERED]", "vsn" => "{info.raw_vsn}"}}',
            socket.tenant,
        )
        try:
            async for frame in connection:
                await self.handle_frame(socket, frame)
        except ConnectionClosed:
            pass
        finally:
            for channel in list(socket.channels.values()):
                self.forget(channel)

    async def handle_frame(self, socket: Socket, frame: str | bytes) -> None:
        """Decode one frame and route it; undecodable frames are logged and skipped."""
        try:
            if isinstance(frame, bytes):
                message, broadcast = decode_user_broadcast_push(frame)
            else:
                message, broadcast = decode_text_frame(socket.vsn, frame), None
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            log("warning", f"Ignoring undecodable frame: {exc}", socket.tenant)
            return
        if broadcast is not None:  # binary frames are always broadcasts
            await self.on_broadcast(socket, message, broadcast)
        else:
            await self.route(socket, message)

    async def route(self, socket: Socket, message: Message) -> None:
        """Dispatch like Phoenix.Socket: heartbeat, join, then events of joined topics."""
        if message.topic == "phoenix":
            if message.event == "heartbeat":
                await socket.reply(message, "ok", {})
            return
        if message.event == "phx_join":
            await self.on_join(socket, message)
            return
        channel = socket.channels.get(message.topic)
        if channel is None:
            # Phoenix's answer for a topic this socket has not joined (or no route matches).
            await socket.reply(message, "error", {"reason": "unmatched topic"})
            return
        await self.on_channel_event(channel, message)

    async def on_channel_event(self, channel: Channel, message: Message) -> None:
        """Handle an event on a joined channel (RealtimeChannel.handle_in)."""
        socket = channel.socket
        if message.event == "broadcast":
            await self.on_broadcast(socket, message, Broadcast(payload=message.payload))
        elif message.event == "presence":
            await socket.reply(message, "ok", {})  # tracked state is not kept (see gaps)
        elif message.event == "access_token":
            await self.on_access_token(channel, message)
        elif message.event == "phx_leave":
            await socket.reply(message, "ok", {})
            await self.close_channel(channel)
        else:
            log("info", f"Unexpected message from client of type `{message.event}`", socket.tenant)

    # -- join --

    async def on_join(self, socket: Socket, message: Message) -> None:
        """``phx_join``: validate topic and token, reply, then push the follow-up messages."""
        if not message.topic.startswith("realtime:"):
            log(
                "warning",
                f'Ignoring unmatched topic "{message.topic}" in RealtimeWeb.UserSocket',
                socket.tenant,
            )
            await socket.reply(message, "error", {"reason": "unmatched topic"})
            return
        if message.topic == "realtime:":
            await self.join_error(socket, message, "TopicNameRequired", "You must provide a topic name")
            return
        payload = as_dict(message.payload)
        token = payload.get("access_token") or payload.get("user_token")
        if not isinstance(token, str) or token.startswith("sb_"):
            token = socket.token  # Realtime falls back to the connect token
        try:
            verify_jwt(token, self.settings.jwt_secret)
        except TokenRejected as rejected:
            await self.join_error(socket, message, rejected.code, rejected.message)
            return
        if message.topic in socket.channels:  # Phoenix closes the old channel on a duplicate join
            await self.close_channel(socket.channels[message.topic])
        await self.join(socket, message, payload)

    async def join(self, socket: Socket, message: Message, payload: dict[str, Any]) -> None:
        """Register the channel, reply ok with binding ids, push presence/system messages."""
        config = as_dict(payload.get("config"))
        broadcast = as_dict(config.get("broadcast"))
        channel = Channel(
            socket=socket,
            topic=message.topic,
            join_ref=message.join_ref or message.ref,
            broadcast_self=bool(broadcast.get("self")),
            broadcast_ack=bool(broadcast.get("ack")),
        )
        socket.channels[channel.topic] = channel
        self.topics.setdefault(channel.topic, set()).add(channel)
        bindings = [b for b in config.get("postgres_changes") or [] if isinstance(b, dict)]
        log(
            "info",
            f"JOINED {channel.topic} Parameters: {redact_join_payload(payload)}",
            socket.tenant,
        )
        response = {"postgres_changes": [{**b, "id": binding_id(b)} for b in bindings]}
        await socket.reply(message, "ok", response)
        if as_dict(config.get("presence")).get("enabled"):
            await self.push_to(channel, "presence_state", {})
        if bindings:
            await self.push_postgres_status(channel, bindings)

    async def push_postgres_status(self, channel: Channel, bindings: list[dict[str, Any]]) -> None:
        """The ``system`` message that says whether the postgres_changes subscription worked."""
        failed = [b for b in bindings if unpublished_binding(b, self.settings.publication_tables)]
        if failed:
            message = (
                "Subscription insert failed with 0 rows. Check that tables are part of "
                "publication supabase_realtime and subscription params are correct: "
                f"{elixir_inspect(failed[0])}"
            )
            log("warning", f"RealtimeDisabledForConfiguration: {message}", channel.socket.tenant)
            status = "error"
        else:
            message, status = "Subscribed to PostgreSQL", "ok"
            log("info", message, channel.socket.tenant)
        payload = {
            "extension": "postgres_changes",
            "status": status,
            "message": message,
            "channel": channel.name,
        }
        await self.push_to(channel, "system", payload)

    async def join_error(self, socket: Socket, message: Message, code: str, detail: str) -> None:
        """Refuse a join with Realtime's ``"<Code>: <message>"`` reason."""
        log("error", f"{code}: {detail}", socket.tenant)
        await socket.reply(message, "error", {"reason": f"{code}: {detail}"})

    # -- channel events --

    async def on_broadcast(self, socket: Socket, envelope: Message, broadcast: Broadcast) -> None:
        """Fan a broadcast out to the topic (and back to the sender with ``self``); ack if asked."""
        channel = socket.channels.get(envelope.topic)
        if channel is None:
            await socket.reply(envelope, "error", {"reason": "unmatched topic"})
            return
        for member in list(self.topics.get(channel.topic, ())):
            if member is not channel or channel.broadcast_self:
                await member.socket.deliver(channel.topic, broadcast)
        if channel.broadcast_ack:
            await socket.reply(envelope, "ok", {})

    async def on_access_token(self, channel: Channel, message: Message) -> None:
        """A refreshed token: Realtime sends no reply when valid, and shuts the channel if not."""
        token = as_dict(message.payload).get("access_token")
        if not isinstance(token, str) or token.startswith("sb_"):
            return
        try:
            verify_jwt(token, self.settings.jwt_secret)
        except TokenRejected as rejected:
            payload = {
                "extension": "system",
                "status": "error",
                "message": rejected.message,
                "channel": channel.name,
            }
            await self.push_to(channel, "system", payload)
            log("warning", f"ChannelShutdown: {rejected.message}", channel.socket.tenant)
            await self.close_channel(channel)
            return
        channel.socket.token = token

    async def push_to(self, channel: Channel, event: str, payload: object) -> None:
        """A channel-initiated push (no ref, the channel's join_ref in V2)."""
        await channel.socket.push(Message(channel.topic, event, payload, None, channel.join_ref))

    async def close_channel(self, channel: Channel) -> None:
        """End a channel and tell the client with ``phx_close`` (ref = join_ref, like Phoenix)."""
        self.forget(channel)
        await channel.socket.push(Message(channel.topic, "phx_close", {}, channel.join_ref, channel.join_ref))

    def forget(self, channel: Channel) -> None:
        """Drop a channel from its socket and from the topic's subscribers."""
        channel.socket.channels.pop(channel.topic, None)
        members = self.topics.get(channel.topic)
        if members is not None:
            members.discard(channel)
            if not members:
                del self.topics[channel.topic]


def endpoint_address(settings: Settings, port: int) -> str:
    """How Bandit names the listener in its start line (``:::4000`` for all interfaces)."""
    host = "::" if settings.host in ("0.0.0.0", "::", "") else settings.host
    return f"{host}:{port}"


async def run(settings: Settings) -> None:
    """Serve until SIGTERM or SIGINT, then close connections (1001) and return."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    websockets_logger = logging.getLogger("websockets")
    websockets_logger.addHandler(WebsocketsLogBridge(logging.WARNING))
    websockets_logger.propagate = False
    standin = RealtimeStandin(settings)
    async with serve(
        standin.handle_connection,
        settings.host,
        settings.port,
        process_request=standin.process_request,
        create_connection=PhoenixMethodsConnection,
        server_header=None,
        ping_interval=None,  # Phoenix does not ping; clients heartbeat on topic "phoenix"
    ) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        address = endpoint_address(settings, port)
        log("info", f"Running RealtimeWeb.Endpoint with Bandit 1.5.7 at {address} (http)")
        tables = ",".join(sorted(settings.publication_tables)) or "(none)"
        version = ".".join(str(part) for part in settings.version)
        log(
            "info",
            f"Stand-in for Realtime v{version}: tenant={settings.tenant} publication={tables}",
        )
        await stop.wait()
        log("info", "Received shutdown signal, stopping RealtimeWeb.Endpoint")


def main() -> int:
    """Entry point: exit 1 on a bad environment, 0 after a clean shutdown."""
    try:
        settings = load_settings(os.environ)
    except ConfigError as exc:
        log("error", str(exc))
        return 1
    asyncio.run(run(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
