"""Stages tcp, tls and upgrade of the Realtime probe, and the diagnoses of their failures.

The handshake is made as a browser makes it: no proxy from the environment, no redirects
followed, TLS verified against the system CAs (or a given CA file), never disabled.
websockets itself checks `Sec-WebSocket-Accept` (a wrong one raises InvalidHeader).
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from contextlib import suppress
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidHandshake, InvalidHeader, InvalidMessage, InvalidStatus

from supakong import fence
from supakong.verify_diagnose import answer_message, diagnose_handshake, trim_body
from supakong.verify_model import (
    CHANNEL_ERROR,
    TIMED_OUT,
    Diagnosis,
    ProbeOptions,
    StageLog,
)

MAX_MESSAGE_BYTES = 2**20
USER_AGENT = "supakong-verify"


@dataclass(frozen=True)
class Target:
    url: str
    host: str
    port: int
    secure: bool


def parse_target(url: str) -> Target:
    parts = urlsplit(url)
    secure = parts.scheme == "wss"
    return Target(url, parts.hostname or "", parts.port or (443 if secure else 80), secure)


# --------------------------------------------------------------------------- diagnoses


def describe_connect_error(exc: BaseException) -> str:
    """A short reason for a failed connect: name not resolved / connection refused / …"""
    if isinstance(exc, socket.gaierror):
        return "name not resolved"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, TimeoutError):
        return "timed out"
    return trim_body(str(exc) or type(exc).__name__, 120)


def diagnose_unreachable(host: str, port: int, why: str) -> Diagnosis:
    return Diagnosis(
        cause=f"Kong is not reachable at {host}:{port} ({why})",
        fix="start the Kong container / check the port and firewall",
    )


def diagnose_tls_error(host: str, port: int, exc: BaseException) -> Diagnosis:
    """Name the cause of a failed TLS handshake with Kong's https port."""
    text = str(exc).lower()
    if isinstance(exc, ssl.SSLCertVerificationError):
        return Diagnosis(
            cause=f"the TLS certificate of {host}:{port} is not trusted ({exc.verify_message})",
            fix=f"serve a certificate valid for {host}, or pass --ca-file with its CA",
        )
    if "wrong_version_number" in text or "record layer failure" in text:
        return Diagnosis(
            cause=f"{host}:{port} does not speak TLS (a plain HTTP port behind an https:// URL)",
            fix="use http:// for Kong's 8000 port, or https:// with Kong's 8443 port",
        )
    if isinstance(exc, TimeoutError):
        return Diagnosis(
            cause=f"the TLS handshake with {host}:{port} timed out",
            fix="check that the port is Kong's TLS port and nothing in between holds it",
        )
    return Diagnosis(
        cause=f"the TLS handshake with {host}:{port} failed ({trim_body(str(exc), 120)})",
        fix="check Kong's certificate and TLS settings (ssl_cert, ssl_protocols)",
    )


def refusal(exc: InvalidStatus) -> tuple[int, str, str, Diagnosis]:
    """(status, body, detail, diagnosis) of a non-101 answer to the handshake."""
    response = exc.response
    body = response.body.decode("utf-8", "replace")
    detail = f"{response.status_code} {response.reason_phrase}"
    message = answer_message(body)
    detail += f": {message}" if message else ""
    diagnosis = diagnose_handshake(response.status_code, body, response.headers)
    return response.status_code, body, detail, diagnosis


def handshake_failure(exc: Exception, timeout: float) -> tuple[str, str, Diagnosis]:
    """(state, detail, diagnosis) of a handshake that failed without an HTTP status."""
    if isinstance(exc, TimeoutError):
        return (
            TIMED_OUT,
            f"no handshake answer within {timeout:g} s",
            Diagnosis(
                f"the WebSocket handshake got no answer within {timeout:g} s",
                "check the kong and realtime logs, and any proxy in front of Kong holding the upgrade",
            ),
        )
    if isinstance(exc, InvalidHeader) and exc.name.lower() == "sec-websocket-accept":
        return (
            CHANNEL_ERROR,
            "101 with a wrong Sec-WebSocket-Accept",
            Diagnosis(
                "the 101 answer carries a wrong Sec-WebSocket-Accept (something rewrote the handshake)",
                "check the proxies between the client and Kong; Kong passes it through untouched",
            ),
        )
    if isinstance(exc, InvalidMessage):
        return (
            CHANNEL_ERROR,
            f"no valid HTTP answer ({exc.__cause__ or exc})",
            Diagnosis(
                "the connection closed or answered something other than HTTP/1.1 during the handshake",
                "check that the URL points at Kong's proxy port (8000 http / 8443 https)",
            ),
        )
    if isinstance(exc, InvalidHandshake):
        return (
            CHANNEL_ERROR,
            f"invalid handshake: {exc}",
            Diagnosis(
                f"the server's answer is not a valid WebSocket upgrade ({exc})",
                "check what sits between the client and Kong",
            ),
        )
    why = describe_connect_error(exc)
    return (
        CHANNEL_ERROR,
        why,
        Diagnosis(f"the WebSocket connection failed ({why})", "check that Kong is up and reachable"),
    )


# --------------------------------------------------------------------------- stages


async def check_transport(log: StageLog, target: Target, opts: ProbeOptions) -> str | None:
    """Stages tcp (and tls for wss). Returns the failure state, or None when they pass."""
    where = f"{target.host}:{target.port}"
    started = time.perf_counter()
    try:
        sock = await asyncio.wait_for(fence.connect_async(dialled(target), target.host, target.port), opts.timeout)
        _, writer = await asyncio.open_connection(sock=sock)
    except (OSError, TimeoutError) as exc:
        why = describe_connect_error(exc)
        log.record("tcp", False, started, f"{where}: {why}", diagnose_unreachable(target.host, target.port, why))
        return TIMED_OUT if isinstance(exc, TimeoutError) else CHANNEL_ERROR
    log.record("tcp", True, started, f"connected to {where}")
    try:
        return await _check_tls(log, target, opts, writer) if target.secure else None
    finally:
        writer.close()
        with suppress(Exception):
            await asyncio.wait_for(writer.wait_closed(), 1.0)


async def _check_tls(log: StageLog, target: Target, opts: ProbeOptions, writer: asyncio.StreamWriter) -> str | None:
    started = time.perf_counter()
    context = opts.ssl_context or ssl.create_default_context()
    try:
        await asyncio.wait_for(writer.start_tls(context, server_hostname=target.host), opts.timeout)
    except (OSError, TimeoutError) as exc:
        diagnosis = diagnose_tls_error(target.host, target.port, exc)
        log.record("tls", False, started, diagnosis.cause, diagnosis)
        return TIMED_OUT if isinstance(exc, TimeoutError) else CHANNEL_ERROR
    tls = writer.get_extra_info("ssl_object")
    version = tls.version() if tls is not None else "TLS"
    log.record("tls", True, started, f"{version}, certificate verified for {target.host}")
    return None


class _NoRedirectConnect(connect):
    """websockets follows redirects; browsers (hence supabase-js) do not, so neither do we.
    The socket is dialled through the fence (within websockets' open timeout)."""

    def process_redirect(self, exc: Exception) -> Exception | str:
        return exc

    async def create_connection(self) -> ClientConnection:
        target = parse_target(self.uri)
        self.connection_kwargs["sock"] = await fence.connect_async(dialled(target), target.host, target.port)
        return await super().create_connection()


def dialled(target: Target) -> str:
    """How the fence names what the probe dials."""
    return f"the Realtime URL's host {target.host!r}"


async def open_websocket(url: str, target: Target, opts: ProbeOptions) -> ClientConnection:
    """The WebSocket handshake to `url`. Raises what websockets raises."""
    kwargs: dict[str, Any] = {}
    if target.secure:
        kwargs["ssl"] = opts.ssl_context or ssl.create_default_context()
    return await _NoRedirectConnect(
        url,
        origin=opts.origin,  # type: ignore[arg-type]  # websockets' Origin is a NewType of str
        proxy=None,
        open_timeout=opts.timeout,
        close_timeout=min(opts.timeout, 2.0),
        ping_interval=None,  # supabase-js keeps alive with Phoenix heartbeats, not pings
        max_size=MAX_MESSAGE_BYTES,
        user_agent_header=USER_AGENT,
        **kwargs,
    )


async def stage_upgrade(log: StageLog, target: Target, opts: ProbeOptions) -> ClientConnection | str:
    """Stage upgrade: the open connection, or the failure state."""
    started = time.perf_counter()
    try:
        ws = await open_websocket(target.url, target, opts)
    except InvalidStatus as exc:
        _, _, detail, diagnosis = refusal(exc)
        log.record("upgrade", False, started, detail, diagnosis)
        return CHANNEL_ERROR
    except (OSError, TimeoutError, InvalidHandshake) as exc:
        state, detail, diagnosis = handshake_failure(exc, opts.timeout)
        log.record("upgrade", False, started, detail, diagnosis)
        return state
    response = ws.response
    status = f"{response.status_code} {response.reason_phrase}" if response else "101"
    via = response.headers.get("Via") if response is not None else None
    detail = f"{status}, Sec-WebSocket-Accept valid" + (f" (via {via})" if via else "")
    log.record("upgrade", True, started, detail)
    return ws
