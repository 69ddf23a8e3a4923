"""The server: HTTP endpoints, handshake checks, the channel protocol, and how it runs."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import signal
from typing import Any
from urllib.parse import urlsplit

from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from .answers import (
    NOT_FOUND_BODY,
    SOCKET_PATHS,
    PhoenixMethodsConnection,
    WebsocketsLogBridge,
    http_response,
    json_response,
)
from .auth import TokenRejected, verify_jwt
from .channels import Channel, HandshakeInfo, Socket, describe_handshake
from .settings import Settings, log
from .wire import (
    SERIALIZERS,
    Broadcast,
    Message,
    as_dict,
    binding_id,
    decode_text_frame,
    decode_user_broadcast_push,
    elixir_inspect,
    redact_join_payload,
)


def unpublished_binding(binding: dict[str, Any], tables: frozenset[str]) -> bool:
    """Without a database: whether Realtime's subscription insert would find no published
    table for this binding in ``REALTIME_PUBLICATION_TABLES``."""
    schema, table = binding.get("schema", "public"), binding.get("table")
    if table in (None, "*"):
        return not any(name.startswith(f"{schema}.") for name in tables)
    return f"{schema}.{table}" not in tables


class RealtimeStandin:
    """The server: HTTP endpoints, handshake checks and the channel protocol."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.topics: dict[str, set[Channel]] = {}
        self.background: set[asyncio.Task[None]] = set()
        self.cdc: Any = None  # cdc.PostgresCdc with a database (DB_HOST), else None
        if settings.db is not None:
            from .cdc import PostgresCdc  # psycopg only with a database

            self.cdc = PostgresCdc(settings, self.deliver_change)

    def verify(self, token: str) -> dict[str, Any]:
        """The token's claims if the tenant's secret or JWKS verifies it (see auth.py)."""
        return verify_jwt(token, self.settings.jwt_secret, jwks=self.settings.jwt_jwks)

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
            self.verify(authorization.removeprefix("Bearer "))
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
            self.verify(info.token)
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
            claims = self.verify(token)
        except TokenRejected as rejected:
            await self.join_error(socket, message, rejected.code, rejected.message)
            return
        if message.topic in socket.channels:  # Phoenix closes the old channel on a duplicate join
            await self.close_channel(socket.channels[message.topic])
        await self.join(socket, message, payload, claims)

    async def join(self, socket: Socket, message: Message, payload: dict[str, Any], claims: dict[str, Any]) -> None:
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
            await self.push_postgres_status(channel, bindings, claims)

    async def push_postgres_status(
        self, channel: Channel, bindings: list[dict[str, Any]], claims: dict[str, Any]
    ) -> None:
        """The ``system`` message that says whether the postgres_changes subscription worked:
        the subscription rows inserted in the database, or (without one) the bindings checked
        against ``REALTIME_PUBLICATION_TABLES``."""
        if self.cdc is not None:
            status, message = await self.cdc.subscribe(channel, [(binding_id(b), b) for b in bindings], claims)
        else:
            status, message = self.static_postgres_status(bindings)
        if status == "ok":
            log("info", message, channel.socket.tenant)
        else:
            log("warning", f"RealtimeDisabledForConfiguration: {message}", channel.socket.tenant)
        payload = {
            "extension": "postgres_changes",
            "status": status,
            "message": message,
            "channel": channel.name,
        }
        await self.push_to(channel, "system", payload)

    def static_postgres_status(self, bindings: list[dict[str, Any]]) -> tuple[str, str]:
        failed = [b for b in bindings if unpublished_binding(b, self.settings.publication_tables)]
        if failed:
            return "error", (
                "Subscription insert failed with 0 rows. Check that tables are part of "
                "publication supabase_realtime and subscription params are correct: "
                f"{elixir_inspect(failed[0])}"
            )
        return "ok", "Subscribed to PostgreSQL"

    async def deliver_change(self, channel: Channel, payload: dict[str, Any]) -> None:
        """A ``postgres_changes`` frame, sent like Realtime's fastlane (no ref, no join_ref)."""
        if channel.socket.channels.get(channel.topic) is channel:
            await channel.socket.push(Message(channel.topic, "postgres_changes", payload))

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
            self.verify(token)
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
        """Drop a channel from its socket and from the topic's subscribers (and its
        subscription rows, in the background as Realtime's delete queue does)."""
        if self.cdc is not None:
            self.background.add(task := asyncio.create_task(self.cdc.unsubscribe(channel)))
            task.add_done_callback(self.background.discard)
        if channel.socket.channels.get(channel.topic) is channel:
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
    if settings.db is not None:
        from .cdc import prepare_database

        await prepare_database(settings)  # run.sh: migrate, then seed, then the endpoint
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
        version = ".".join(str(part) for part in settings.version)
        if settings.db is not None:
            source = f"database {settings.db.name} at {settings.db.host}:{settings.db.port}"
        else:
            source = "publication=" + (",".join(sorted(settings.publication_tables)) or "(none)")
        log("info", f"Stand-in for Realtime v{version}: tenant={settings.tenant} {source}")
        await stop.wait()
        log("info", "Received shutdown signal, stopping RealtimeWeb.Endpoint")
        if standin.cdc is not None:
            await standin.cdc.close()
