"""Reaching the Docker Engine over the host's SSH connection: the inspections and execs
every run makes.

:func:`engine_opener` finds how to reach the engine's socket (see :mod:`supakong.dockerssh`
for the two ways) and returns a function that opens one HTTP-ready channel.
:class:`EngineClient` then makes the look's container inspections and the runs' ``docker
exec`` calls with the standard library's :mod:`http.client`, on channels it keeps alive
(one per concurrent request), and so do a deploy's restart and log reads. A run therefore
never imports docker-py, requests and urllib3 (~100 ms of start-up) nor pays their
per-request overhead (docker-py's ``logs()`` inspects the container first). An exec can be
fed standard input on its channel (the preflight sends the new file that way: no ``mkdir``
exec and no ``PUT /archive``, each ~75 ms of the host's CPU), which docker-py only offers
on its own transports, and the channel the engine takes over for the exec's output opens
while the exec is being created. docker-py (:func:`supakong.dockerssh.docker_api_over_ssh`)
is built on the same opener for doctor, rollback and the sandbox.
"""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import paramiko

from .errors import RestartError, TransportError
from .sshchannel import STREAMLOCAL, PendingChannel, request_channel, send_eof, streamlocal_payload

DIAL_STDIO = "docker system dial-stdio"
DEFAULT_SOCKET = "/var/run/docker.sock"
#: Opens exec start channels ahead of time (threads start on demand, then are reused).
_OPENERS = ThreadPoolExecutor(max_workers=32, thread_name_prefix="supakong-engine-open")

Opener = Callable[[], paramiko.Channel]


def open_streamlocal(transport: paramiko.Transport, socket_path: str, timeout: float) -> paramiko.Channel:
    """Open a ``direct-streamlocal@openssh.com`` channel to ``socket_path`` on the server
    (an SSH channel straight to the Unix socket: no process on the host)."""
    pending = request_channel(transport, STREAMLOCAL, streamlocal_payload(socket_path), what=socket_path)
    return pending.wait(timeout)


@dataclass(frozen=True)
class EngineRoute:
    """How channels to the engine are opened on one SSH connection."""

    opener: Opener
    mode: str  # "streamlocal /var/run/docker.sock" or "dial-stdio"
    timeout: float


def engine_opener(
    transport: paramiko.Transport,
    *,
    host_name: str,
    socket_path: str = DEFAULT_SOCKET,
    timeout: float = 60.0,
    requested: PendingChannel | None = None,
) -> EngineRoute:
    """A streamlocal channel to ``socket_path`` if the server allows it, else ``docker
    system dial-stdio`` (checked with ``GET /_ping``); a :class:`TransportError` that names
    the host and the likely fix when neither reaches the engine. ``requested``: that
    streamlocal channel, already asked for (with the authentication, see
    :mod:`supakong.transport`)."""
    try:
        # The first channel proves the route works, then serves the first request.
        first = [requested.wait(timeout) if requested else open_streamlocal(transport, socket_path, timeout)]
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


def _exchange(
    conn: _ChannelHTTPConnection,
    method: str,
    path: str,
    body: dict[str, Any] | None = None,
    stdin: bytes | None = None,
) -> tuple[int, bytes, bool]:
    """One request on ``conn`` (its channel opened if needed): status, body, and whether the
    connection may carry another request (keep-alive).

    With ``stdin`` (an exec start), the bytes are sent on the channel once the engine has
    answered the request (it hijacks the connection: bytes sent earlier could be lost in its
    HTTP reader), followed by end-of-file, and the response is read to the end.
    """
    if body is None:
        conn.request(method, path)
    else:
        conn.request(method, path, json.dumps(body).encode(), {"Content-Type": "application/json"})
    response = conn.getresponse()
    if stdin is not None and conn.channel is not None and response.status == 200:
        conn.channel.sendall(stdin)
        send_eof(conn.channel)
    data = response.read()
    return response.status, data, not response.will_close


def _close(conn: _ChannelHTTPConnection) -> None:
    conn.close()
    if conn.channel is not None:
        conn.channel.close()


def _request(route: EngineRoute, method: str, path: str) -> tuple[int, bytes]:
    """One request on its own channel; the channel is closed once the body is read."""
    conn = _ChannelHTTPConnection(route)
    try:
        status, data, _ = _exchange(conn, method, path)
        return status, data
    finally:
        _close(conn)


def is_multiplexed(raw: bytes) -> bool:
    """True if ``raw`` is entirely frames of the engine's multiplexed stream (see
    :func:`demux_stream`): the output of a container or exec without a TTY."""
    pos = 0
    while pos + 8 <= len(raw):
        if raw[pos] not in (0, 1, 2) or raw[pos + 1 : pos + 4] != b"\0\0\0":
            return False
        pos += 8 + int.from_bytes(raw[pos + 4 : pos + 8], "big")
    return pos == len(raw)


def demux_stream(raw: bytes) -> bytes:
    """stdout and stderr of a non-TTY exec, in the order of the engine's frames (8-byte header:
    stream, 3 zero bytes, big-endian payload size). The engine reads the two pipes at once, so a
    line on stderr may come before stdout written earlier."""
    out, pos = bytearray(), 0
    while pos + 8 <= len(raw):
        size = int.from_bytes(raw[pos + 4 : pos + 8], "big")
        out += raw[pos + 8 : pos + 8 + size]
        pos += 8 + size
    return bytes(out)


class EngineClient:
    """The engine endpoints every run needs (inspect, exec), over one SSH connection.

    Connections are kept alive and reused (a request on an open channel is one round trip,
    on a new one two), except for an exec's start, which the engine takes over (hijacks).
    Thread-safe: each request has a connection to itself.
    """

    def __init__(self, route: EngineRoute, host_name: str) -> None:
        self.route = route
        self.host_name = host_name
        self._idle: list[_ChannelHTTPConnection] = []
        self._lock = threading.Lock()

    def _call(
        self,
        what: str,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        stdin: bytes | None = None,
        *,
        hijack: _ChannelHTTPConnection | None = None,
    ) -> tuple[int, bytes]:
        """One request on a kept channel (a new one if none is idle), or on ``hijack``, a
        connection of its own that the engine takes over (an exec's start) and is closed."""
        hijacked = hijack is not None
        while True:
            conn, reused = (hijack, False) if hijack is not None else self._take()
            try:
                status, data, keep = _exchange(conn, method, path, body, stdin)
            except (paramiko.SSHException, OSError, http.client.HTTPException) as exc:
                _close(conn)
                if reused:
                    continue  # the engine closed a kept connection: again on a new channel
                raise TransportError(f"{self.host_name}: {what}: {exc}") from None
            if keep and not hijacked:
                with self._lock:
                    self._idle.append(conn)
            else:
                _close(conn)
            return status, data

    def _take(self) -> tuple[_ChannelHTTPConnection, bool]:
        """A kept connection (True) or a new one (False)."""
        with self._lock:
            if self._idle:
                return self._idle.pop(), True
        return _ChannelHTTPConnection(self.route), False

    def close(self) -> None:
        """Close the kept connections (their channels)."""
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            _close(conn)

    def inspect_container(self, name: str) -> dict[str, Any] | None:
        """``GET /containers/{name}/json``: the container's details, None if it does not exist."""
        status, body = self._call(f"docker inspect {name}", "GET", f"/containers/{quote(name, safe='')}/json")
        if status == 404:
            return None
        if status != 200:
            raise TransportError(f"{self.host_name}: docker inspect {name}: {_engine_message(body, status)}")
        data: dict[str, Any] = json.loads(body)
        return data

    def list_containers(self) -> list[dict[str, Any]]:
        """``GET /containers/json?all=1``: every container, running or not (names, image,
        state, labels)."""
        status, body = self._call("docker ps -a", "GET", "/containers/json?all=1")
        if status != 200:
            raise TransportError(f"{self.host_name}: docker ps -a: {_engine_message(body, status)}")
        rows: list[dict[str, Any]] = json.loads(body)
        return rows

    def exec(self, name: str, argv: list[str], stdin: bytes | None = None) -> tuple[int, bytes]:
        """``docker exec [-i] name argv…``: (exit code, stdout and stderr interleaved, their relative order not kept).

        ``stdin`` is fed to the command followed by end-of-file. Raises
        :class:`TransportError` when the engine refuses (no such container, not running).
        """
        what = f"docker exec {name} {argv[0] if argv else ''}".rstrip()
        spec = {"AttachStdin": stdin is not None, "AttachStdout": True, "AttachStderr": True, "Cmd": argv}
        # The start's own channel opens while the exec is created: one round trip less.
        starter = _ChannelHTTPConnection(self.route)
        opening = _OPENERS.submit(starter.connect)
        try:
            status, body = self._call(what, "POST", f"/containers/{quote(name, safe='')}/exec", spec)
            if status != 201:
                raise TransportError(f"{self.host_name}: {what}: {_engine_message(body, status)}")
            exec_id = quote(str(json.loads(body)["Id"]), safe="")
            _opened(opening, f"{self.host_name}: {what}")
        except BaseException:
            opening.add_done_callback(lambda _: _close(starter))
            raise
        start = {"Detach": False, "Tty": False}
        status, raw = self._call(what, "POST", f"/exec/{exec_id}/start", start, stdin, hijack=starter)
        if status != 200:
            raise TransportError(f"{self.host_name}: {what}: {_engine_message(raw, status)}")
        status, body = self._call(what, "GET", f"/exec/{exec_id}/json")
        code = json.loads(body).get("ExitCode") if status == 200 else None
        return (int(code) if code is not None else -1), demux_stream(raw)

    def restart(self, name: str, stop_timeout: int = 10) -> bool:
        """``docker restart -t stop_timeout name``; False if there is no such container.
        Raises :class:`RestartError` when the engine cannot restart it."""
        what = f"docker restart {name}"
        path = f"/containers/{quote(name, safe='')}/restart?t={int(stop_timeout)}"
        status, body = self._call(what, "POST", path)
        if status == 404:
            return False
        if status != 204:
            raise RestartError(f"{what}: {_engine_message(body, status)}")
        return True

    def logs(self, name: str, *, since: float | None = None, tail: int | str = 200) -> bytes | None:
        """``docker logs --timestamps [--since] --tail name``: stdout and stderr (in the
        engine's order), or None if there is no such container."""
        query = {"stdout": 1, "stderr": 1, "timestamps": 1, "tail": tail, **({"since": int(since)} if since else {})}
        what = f"docker logs {name}"
        status, body = self._call(what, "GET", f"/containers/{quote(name, safe='')}/logs?{urlencode(query)}")
        if status == 404:
            return None
        if status != 200:
            raise TransportError(f"{self.host_name}: {what}: {_engine_message(body, status)}")
        # A container with a TTY has one raw stream; without, the frames of demux_stream.
        return demux_stream(body) if is_multiplexed(body) else body


def _opened(opening: Future[None], what: str) -> None:
    """Wait for a channel opened ahead of time; :class:`TransportError` if it could not open."""
    try:
        opening.result()
    except (paramiko.SSHException, OSError) as exc:
        raise TransportError(f"{what}: {exc}") from None


def _engine_message(body: bytes, status: int) -> str:
    """The engine's ``{"message": …}`` error text, or the status."""
    try:
        return str(json.loads(body)["message"])
    except (ValueError, KeyError, TypeError):
        return f"HTTP {status}"
