"""Reaching the Docker Engine over the host's SSH connection, and the reads every run makes.

:func:`engine_opener` finds how to reach the engine's socket (see :mod:`supakong.dockerssh`
for the two ways) and returns a function that opens one HTTP-ready channel.
:class:`EngineReader` then makes the plain ``GET`` requests of the look (container
inspections) with the standard library's :mod:`http.client`, one channel per request so
that requests run concurrently. A no-op converge therefore never imports docker-py,
requests and urllib3 (~100 ms of start-up) nor pays their per-request overhead; docker-py
(:func:`supakong.dockerssh.docker_api_over_ssh`) is built on the same opener only when a
run restarts, execs into or reads the logs of a container.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import paramiko
from paramiko.common import cMSG_CHANNEL_OPEN
from paramiko.message import Message

from .errors import TransportError

DIAL_STDIO = "docker system dial-stdio"
DEFAULT_SOCKET = "/var/run/docker.sock"

Opener = Callable[[], paramiko.Channel]


def open_streamlocal(transport: paramiko.Transport, socket_path: str, timeout: float) -> paramiko.Channel:
    """Open a ``direct-streamlocal@openssh.com`` channel to ``socket_path`` on the server.

    paramiko has no public call for this channel type (only tcpip and x11), so this mirrors
    :meth:`paramiko.Transport.open_channel` with the streamlocal payload (RFC 4254 channel
    open + OpenSSH PROTOCOL §2.4: socket path, reserved string, reserved uint32).
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
        m.add_string("direct-streamlocal@openssh.com")
        m.add_int(chanid)
        m.add_int(window_size)
        m.add_int(max_packet_size)
        m.add_string(socket_path)
        m.add_string("")
        m.add_int(0)
        chan = paramiko.Channel(chanid)
        t._channels.put(chanid, chan)
        t.channel_events[chanid] = event = threading.Event()
        t.channels_seen[chanid] = True
        c: Any = chan
        c._set_transport(transport)
        c._set_window(window_size, max_packet_size)
    t._send_user_message(m)
    deadline = time.monotonic() + timeout
    while not event.wait(0.1):
        if not t.active:
            raise t.get_exception() or paramiko.SSHException("SSH session ended")
        if time.monotonic() > deadline:
            raise paramiko.SSHException("timeout opening a streamlocal channel")
    opened = t._channels.get(chanid)
    if opened is None:
        raise t.get_exception() or paramiko.ChannelException(1, f"cannot open {socket_path}")
    return opened


@dataclass(frozen=True)
class EngineRoute:
    """How channels to the engine are opened on one SSH connection."""

    opener: Opener
    mode: str  # "streamlocal /var/run/docker.sock" or "dial-stdio"
    timeout: float


def engine_opener(
    transport: paramiko.Transport, *, host_name: str, socket_path: str = DEFAULT_SOCKET, timeout: float = 60.0
) -> EngineRoute:
    """A streamlocal channel to ``socket_path`` if the server allows it, else ``docker
    system dial-stdio`` (checked with ``GET /_ping``); a :class:`TransportError` that names
    the host and the likely fix when neither reaches the engine."""
    try:
        first = [open_streamlocal(transport, socket_path, timeout)]  # proves it works; used first
        taking = threading.Lock()

        def streamlocal() -> paramiko.Channel:
            with taking:  # requests start concurrently: only one of them gets the first channel
                if first:
                    return first.pop()
            return open_streamlocal(transport, socket_path, timeout)

        return EngineRoute(streamlocal, f"streamlocal {socket_path}", timeout)
    except (paramiko.ChannelException, paramiko.SSHException, AttributeError):
        pass  # refused (AllowStreamLocalForwarding no, no such socket, permissions): use the CLI

    def dial_stdio() -> paramiko.Channel:
        channel = transport.open_session(timeout=timeout)
        channel.exec_command(DIAL_STDIO)
        return channel

    route = EngineRoute(dial_stdio, "dial-stdio", timeout)
    try:
        status, body = _request(route, "GET", "/_ping")
    except (paramiko.SSHException, OSError, http.client.HTTPException) as exc:
        status, body = 0, str(exc).encode()
    if status != 200:
        detail = body.decode("utf-8", "replace").strip()[:200] or f"HTTP {status}"
        raise TransportError(
            f"{host_name}: cannot reach the Docker Engine through SSH (streamlocal {socket_path} was refused,"
            f" `{DIAL_STDIO}` failed: {detail}). Is Docker running, and is the SSH user root or in the docker group?"
        )
    return route


class _Unclosable:
    """A channel that ``http.client`` cannot close early. It closes the connection's socket
    as soon as it sees a ``Connection: close`` response, before the body is read: with a
    real socket the response's file keeps the descriptor open, but closing a paramiko
    channel drops the body still in flight ("IncompleteRead(0 bytes read)")."""

    def __init__(self, channel: paramiko.Channel) -> None:
        self.channel = channel

    def __getattr__(self, name: str) -> Any:
        return getattr(self.channel, name)

    def close(self) -> None:
        pass


class _ChannelHTTPConnection(http.client.HTTPConnection):
    """:class:`http.client.HTTPConnection` whose socket is a fresh channel to the engine."""

    def __init__(self, route: EngineRoute) -> None:
        super().__init__("docker", timeout=route.timeout)
        self._route = route
        self.channel: paramiko.Channel | None = None

    def connect(self) -> None:
        self.channel = self._route.opener()
        self.channel.settimeout(self._route.timeout)
        self.sock = _Unclosable(self.channel)


def _request(route: EngineRoute, method: str, path: str) -> tuple[int, bytes]:
    """One request on its own channel; the channel is closed once the body is read."""
    conn = _ChannelHTTPConnection(route)
    try:
        conn.request(method, path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()
        if conn.channel is not None:
            conn.channel.close()


class EngineReader:
    """The engine's read-only endpoints the look needs, over one SSH connection."""

    def __init__(self, route: EngineRoute, host_name: str) -> None:
        self.route = route
        self.host_name = host_name

    def inspect_container(self, name: str) -> dict[str, Any] | None:
        """``GET /containers/{name}/json``: the container's details, None if it does not exist."""
        try:
            status, body = _request(self.route, "GET", f"/containers/{quote(name, safe='')}/json")
        except (paramiko.SSHException, OSError, http.client.HTTPException) as exc:
            raise TransportError(f"{self.host_name}: docker inspect {name}: {exc}") from None
        if status == 404:
            return None
        if status != 200:
            raise TransportError(f"{self.host_name}: docker inspect {name}: {_engine_message(body, status)}")
        data: dict[str, Any] = json.loads(body)
        return data


def _engine_message(body: bytes, status: int) -> str:
    """The engine's ``{"message": …}`` error text, or the status."""
    try:
        return str(json.loads(body)["message"])
    except (ValueError, KeyError, TypeError):
        return f"HTTP {status}"
