"""The proxy listener: route, run the plugins, then tunnel to the upstream.

The loaded configuration is one :class:`~.model.Gateway` snapshot. Each request takes the
snapshot current when it arrives and keeps it to its end, so :meth:`Proxy.swap` can put a
new configuration in place at any time (what Kong's ``POST /config`` does per worker)
without touching open connections or tunnels.
"""

from __future__ import annotations

import asyncio
import ipaddress
import itertools
import os
import socket
import time
import uuid

from .http import Reply, Request, error_message, exit_message, http_date, parse_request, reason, render_head
from .logs import access_log, log_error
from .model import Gateway, Service
from .plugins import Context, run_access_phase
from .router import match_route, upstream_path
from .settings import Settings


class Proxy:
    """Kong's proxy: one :class:`Gateway` in use, swappable between requests."""

    def __init__(self, settings: Settings, gateway: Gateway) -> None:
        self.settings = settings
        self._gateway = gateway
        self.connections = itertools.count(1)

    @property
    def gateway(self) -> Gateway:
        """The configuration new requests are routed with."""
        return self._gateway

    def swap(self, gateway: Gateway) -> None:
        """Route every request from now on with ``gateway``; requests already routed (and
        upgraded WebSockets) finish with the configuration they started with."""
        self._gateway = gateway

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One client connection, one request: every answer says ``Connection: close``."""
        conn = next(self.connections)
        try:
            await self.serve_one(conn, reader, writer)
        except OSError:  # the client went away (timeouts are OSError too)
            pass
        except Exception as exc:  # a stand-in bug must not look like a hung gateway
            log_error("error", f"*{conn} stand-in failure: {exc!r}")
        finally:
            writer.close()

    async def serve_one(self, conn: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer, sock = writer.get_extra_info("peername"), writer.get_extra_info("sockname")
        unparsed = Request("-", "", "", "", [], peer[0], sock[1])
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 60)
            req = parse_request(head, peer[0], sock[1])
        except asyncio.IncompleteReadError as exc:
            if exc.partial:  # a connection closed before sending anything is not logged
                await self.send(writer, unparsed, self.nginx_error(400, "Bad request"), "-")
            return
        except asyncio.LimitOverrunError:
            too_large = self.nginx_error(494, "Request header or cookie too large")
            await self.send(writer, unparsed, too_large, "-")
            return
        except ValueError:
            await self.send(writer, unparsed, self.nginx_error(400, "Bad request"), "-")
            return
        gateway = self.gateway  # this request's snapshot, whatever is swapped in meanwhile
        request_id = uuid.uuid4().hex  # nginx's $request_id: 32 hex digits
        matched = match_route(gateway.routes, req)
        if matched is None:
            await self.send(
                writer, req, self.kong_error(404, "no Route matched with those values", request_id), req.line
            )
            return
        route, prefix = matched.route, matched.prefix
        ctx = Context(req, route, self.settings, gateway, req.line, request_id, captures=matched.captures)
        reply = run_access_phase(ctx)
        if reply is None and route.service is None:
            reply = exit_message(503, "no Service found with those values")
        if reply is not None:
            reply.headers += ctx.response_headers + self.request_id_header(request_id)
            await self.send(writer, req, reply, ctx.line)
        elif route.service is not None:
            await self.forward(conn, ctx, route.service, prefix, (reader, writer))

    def kong_error(self, status: int, text: str, request_id: str) -> Reply:
        """Kong's own refusals: 2.8 ``kong.response.exit(status, {message})``
        (Kong/kong@2.8.1:kong/runloop/handler.lua:1284), 3.x ``kong.response.error``
        (Kong/kong@3.9.3:kong/runloop/handler.lua:1197, 1140)."""
        if not self.settings.v3:
            return exit_message(status, text)
        return error_message(self.settings, status, text, request_id, *self.request_id_header(request_id))

    def request_id_header(self, request_id: str) -> list[tuple[str, str]]:
        """3.x sends X-Kong-Request-Id downstream and upstream (kong_defaults.lua:71-72)."""
        return [("X-Kong-Request-Id", request_id)] if self.settings.v3 else []

    def nginx_error(self, status: int, text: str, request_id: str = "") -> Reply:
        """An nginx error rendered by kong/error_handlers.lua with its JSON template."""
        return error_message(self.settings, status, text, request_id, *self.request_id_header(request_id))

    def reply_bytes(self, reply: Reply) -> bytes:
        headers = [("Date", http_date()), ("Content-Length", str(len(reply.body))), ("Connection", "close")]
        headers += [("Content-Type", reply.content_type)] if reply.content_type else []
        headers += reply.headers + [("X-Kong-Response-Latency", "0"), ("Server", self.settings.server_token)]
        return render_head(f"HTTP/1.1 {reply.status} {reason(reply.status)}", headers) + reply.body

    async def send(self, writer: asyncio.StreamWriter, req: Request, reply: Reply, line: str) -> None:
        writer.write(self.reply_bytes(reply))
        await writer.drain()
        access_log(req, line, reply.status, len(reply.body))

    async def forward(
        self,
        conn: int,
        ctx: Context,
        service: Service,
        prefix: str,
        client: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    ) -> None:
        """Resolve and connect like Kong's balancer, then send the rewritten head."""
        req, writer, line = ctx.request, client[1], ctx.line
        target = req.upstream_path or upstream_path(ctx.route, service, req.path, prefix)
        target += "?" + req.query if req.query else ""
        context = f'client: {req.client_ip}, server: kong, request: "{line}"'
        upstream = f'upstream: "{service.protocol}://{service.host}:{service.port}{target}"'
        where = f'{context}, {upstream}, host: "{req.header("host") or ""}"'
        address = await resolve(service.host, self.settings)
        if address is None:
            log_error(
                "error",
                f"*{conn} [lua] handler.lua:1540: balancer(): failed the initial "
                f"dns/balancer resolve for '{service.host}' with: dns server "
                f"error: 3 name error, {context}",
            )
            await self.send(writer, req, self.kong_error(503, "name resolution failed", ctx.request_id), line)
            return
        try:
            up_reader, up_writer = await asyncio.wait_for(
                asyncio.open_connection(address, service.port), service.connect_timeout
            )
        except TimeoutError:
            log_error(
                "error", f"*{conn} upstream timed out (110: Connection timed out) while connecting to upstream, {where}"
            )
            await self.send(
                writer, req, self.nginx_error(504, "The upstream server is timing out", ctx.request_id), line
            )
            return
        except OSError as exc:
            code = exc.errno or 111
            log_error(
                "error", f"*{conn} connect() failed ({code}: {os.strerror(code)}) while connecting to upstream, {where}"
            )
            invalid = self.nginx_error(502, "An invalid response was received from the upstream server", ctx.request_id)
            await self.send(writer, req, invalid, line)
            return
        head = render_head(f"{req.method} {target} HTTP/1.1", self.upstream_headers(ctx, prefix))
        up_writer.write(head)
        await self.tunnel(ctx, service, client, (up_reader, up_writer), f"*{conn}", where)

    def upstream_headers(self, ctx: Context, prefix: str) -> list[tuple[str, str]]:
        """Client headers minus hop-by-hop ones, plus Host and Kong's X-Forwarded-*."""
        req, route, service = ctx.request, ctx.route, ctx.route.service
        assert service is not None
        dropped = {"connection", "keep-alive", "proxy-connection", "upgrade", "host", "x-real-ip"}
        headers = [
            (k, v) for k, v in req.headers if k.lower() not in dropped and not k.lower().startswith("x-forwarded-")
        ]
        default_port = {"http": 80, "https": 443}.get(service.protocol)
        host = service.host if service.port == default_port else f"{service.host}:{service.port}"
        if route.preserve_host:
            host = req.header("host") or host
        forwarded_for = req.header("x-forwarded-for")
        headers = (
            [("Host", host)]
            + headers
            + [
                ("X-Forwarded-For", f"{forwarded_for}, {req.client_ip}" if forwarded_for else req.client_ip),
                ("X-Forwarded-Proto", "http"),
                ("X-Forwarded-Host", req.host),
                ("X-Forwarded-Port", str(req.server_port)),
                ("X-Forwarded-Path", req.path),
                ("X-Real-IP", req.client_ip),
            ]
        )
        if route.strip_path and prefix:
            headers.append(("X-Forwarded-Prefix", prefix))
        headers += self.request_id_header(ctx.request_id)
        # Kong keeps upgrades alive (runloop/handler.lua); plain requests close, for simplicity.
        if (req.header("upgrade") or "").lower() == "websocket":
            return headers + [("Connection", "keep-alive, Upgrade"), ("Upgrade", "websocket")]
        return headers + [("Connection", "close")]

    async def tunnel(
        self,
        ctx: Context,
        service: Service,
        client: tuple[asyncio.StreamReader, asyncio.StreamWriter],
        upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter],
        conn: str,
        where: str,
    ) -> None:
        """Pipe bytes both ways; only the upstream's status line and headers are edited.
        The request body, chunked or not, and WebSocket frames pass untouched."""
        started = time.monotonic()
        upload = asyncio.ensure_future(pipe(client[0], upstream[1], None))
        reply: Reply | None = None
        try:
            raw = await asyncio.wait_for(upstream[0].readuntil(b"\r\n\r\n"), service.read_timeout)
            status, head = self.rewrite_response_head(raw, ctx, started)
        except TimeoutError:
            log_error(
                "error",
                f"{conn} upstream timed out (110: Connection timed out) while "
                f"reading response header from upstream, {where}",
            )
            reply = self.nginx_error(504, "The upstream server is timing out", ctx.request_id)
        except (OSError, ValueError, IndexError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            log_error(
                "error",
                f"{conn} upstream prematurely closed connection while reading response header from upstream, {where}",
            )
            reply = self.nginx_error(502, "An invalid response was received from the upstream server", ctx.request_id)
        if reply is None:
            client[1].write(head)
            sent = await pipe(upstream[0], client[1], service.read_timeout)
        else:
            client[1].write(self.reply_bytes(reply))
            status, sent = reply.status, len(reply.body)
        upload.cancel()
        upstream[1].close()
        access_log(ctx.request, ctx.line, status, sent)

    def rewrite_response_head(self, head: bytes, ctx: Context, started: float) -> tuple[int, bytes]:
        """Keep the upstream's headers; add cors' ones, Kong's latency headers and Via."""
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        replaced = {k.lower() for k, _ in ctx.response_headers}
        if status != 101:  # an upgrade keeps Connection/Upgrade; the rest close
            replaced |= {"connection", "keep-alive"}
        kept = [
            (k, v.strip()) for k, _, v in (x.partition(":") for x in lines[1:] if ":" in x) if k.lower() not in replaced
        ]
        latency = str(int((time.monotonic() - started) * 1000))
        token = self.settings.server_token
        via = f"1.1 {token}" if self.settings.v3 else token
        extra = [] if status == 101 else [("Connection", "close")]
        extra += ctx.response_headers + [
            ("X-Kong-Upstream-Latency", latency),
            ("X-Kong-Proxy-Latency", "0"),
            ("Via", via),
            *self.request_id_header(ctx.request_id),
        ]
        return status, render_head(lines[0], kept + extra)


async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter, idle_timeout: float | None) -> int:
    """Copy until EOF, then half-close ``dst`` so the other side sees the end. Like nginx,
    an upgraded tunnel that stays idle for the read timeout is closed."""
    total = 0
    try:
        while data := await asyncio.wait_for(src.read(65536), idle_timeout):
            dst.write(data)
            total += len(data)
            await dst.drain()
        if dst.can_write_eof():
            dst.write_eof()
    except OSError:  # reset, broken pipe or idle timeout: tear the tunnel down
        dst.close()
    return total


async def resolve(host: str, settings: Settings) -> str | None:
    """Kong's resolver order, simplified: an IP literal, the hosts file, then DNS."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    try:
        with open(settings.hostsfile, encoding="utf-8") as handle:
            for entry in handle:
                fields = entry.split("#", 1)[0].split()
                if len(fields) > 1 and host.lower() in (name.lower() for name in fields[1:]):
                    return fields[0]
    except OSError:
        pass
    if settings.hosts_only:
        return None
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
        return str(infos[0][4][0])
    except OSError:  # socket.gaierror included
        return None
