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
import shlex
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

import paramiko

from .errors import RestartError, TransportError
from .sshchannel import STREAMLOCAL, PendingChannel, request_channel, send_eof, streamlocal_payload

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
    #: each channel is an SSH session running dial-stdio: the server may limit how many are
    #: open at once (MaxSessions), so none is opened ahead of the request that needs it
    sessions: bool = False
    #: connections already open (the one that proved the route), for the first client to keep
    warm: list[_ChannelHTTPConnection] = field(default_factory=list, repr=False, compare=False)


DIAL_STDIO_ARGV = ("docker", "system", "dial-stdio")


def streamlocal_route(
    transport: paramiko.Transport, socket_path: str, timeout: float, requested: PendingChannel | None = None
) -> EngineRoute:
    """Streamlocal channels to ``socket_path``; raises paramiko's ``ChannelException`` (or
    ``SSHException``) when the server refuses the first one (``AllowStreamLocalForwarding
    no``, ``DisableForwarding yes``, no such socket, a user who may not open it)."""
    # The first channel proves the route works, then serves the first request.
    first = [requested.wait(timeout) if requested else open_streamlocal(transport, socket_path, timeout)]
    taking = threading.Lock()

    def streamlocal() -> paramiko.Channel:
        with taking:  # requests start concurrently: only one of them gets the first channel
            if first:
                return first.pop()
        return open_streamlocal(transport, socket_path, timeout)

    return EngineRoute(streamlocal, f"streamlocal {socket_path}", timeout)


def dial_stdio_route(
    open_session: Callable[[], paramiko.Channel], argv: Sequence[str], timeout: float, mode: str = "dial-stdio"
) -> EngineRoute:
    """Sessions from ``open_session`` running ``argv`` (``docker system dial-stdio``, or its
    sudo form: :func:`supakong.become.dial_stdio_argv`), each spliced onto the engine."""
    command = shlex.join(argv)

    def dial_stdio() -> paramiko.Channel:
        channel = open_session()
        channel.exec_command(command)
        return channel

    return EngineRoute(dial_stdio, mode, timeout, sessions=True)


def ping(route: EngineRoute) -> str | None:
    """None if ``GET /_ping`` through ``route`` answers 200, else why not: the command's own
    stderr when it wrote one (sudo asking for a password, no docker CLI), or the error."""
    conn = _ChannelHTTPConnection(route)
    try:
        status, body, keep = _exchange(conn, "GET", "/_ping")
        if status == 200:
            if keep:  # its session serves the first request: no second dial-stdio process
                route.warm.append(conn)
            else:
                _close(conn)
            return None
        detail = body.decode("utf-8", "replace").strip()[:200] or f"HTTP {status}"
    except (paramiko.SSHException, OSError, http.client.HTTPException) as exc:
        detail = str(exc) or type(exc).__name__
    detail = _stderr_of(conn.channel, route.timeout) or detail
    _close(conn)
    return detail


def _stderr_of(channel: paramiko.Channel | None, timeout: float) -> str:
    """What a failed dial-stdio command wrote on stderr (it exits at once), on one line."""
    if channel is None:
        return ""
    channel.status_event.wait(min(timeout, 5.0))
    err = bytearray()
    while channel.recv_stderr_ready():
        err += channel.recv_stderr(65536)
    return " | ".join(err.decode("utf-8", "replace").strip().splitlines()[-3:])


def engine_opener(
    transport: paramiko.Transport,
    *,
    host_name: str,
    socket_path: str = DEFAULT_SOCKET,
    timeout: float = 60.0,
    requested: PendingChannel | None = None,
    open_session: Callable[[], paramiko.Channel] | None = None,
    dial_argv: Sequence[str] = DIAL_STDIO_ARGV,
    explain: Callable[[str], str | None] = lambda _: None,
) -> EngineRoute:
    """A streamlocal channel to ``socket_path`` if the server allows it, else ``dial_argv``
    (``docker system dial-stdio``) in sessions from ``open_session`` (checked with ``GET
    /_ping``); a :class:`TransportError` that names the host and the likely fix when neither
    reaches the engine (``explain`` may word it from the command's stderr). ``requested``:
    that streamlocal channel, already asked for (with the authentication, see
    :mod:`supakong.transport`)."""
    try:
        return streamlocal_route(transport, socket_path, timeout, requested)
    except (paramiko.ChannelException, paramiko.SSHException, AttributeError):
        pass  # refused (AllowStreamLocalForwarding no, no such socket, permissions): use the CLI
    route = dial_stdio_route(open_session or (lambda: transport.open_session(timeout=timeout)), dial_argv, timeout)
    detail = ping(route)
    if detail is None:
        return route
    raise TransportError(
        explain(detail)
        or f"{host_name}: cannot reach the Docker Engine through SSH: the server refused a streamlocal channel to"
        f" {socket_path} (sshd_config AllowStreamLocalForwarding / DisableForwarding, or the socket's permissions)"
        f" and `{shlex.join(dial_argv)}` failed: {detail}. Is Docker running, and is the SSH user root or in the"
        " docker group (or set ansible_become: true)?"
    )


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


#: How long a dial-stdio session is given to end by itself once told its input ended.
WIND_DOWN = 2.0


def _close(conn: _ChannelHTTPConnection) -> None:
    conn.close()
    channel = conn.channel
    if channel is None:
        return
    if conn._route.sessions and not channel.closed:
        # A session we close first stays counted by sshd until its dial-stdio has exited,
        # and nothing on the wire says when: the next session could be refused. Ended by
        # its input instead, it exits and reports its status, and then it is gone.
        send_eof(channel)
        channel.status_event.wait(min(WIND_DOWN, conn._route.timeout))
    channel.close()


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
        self._idle: list[_ChannelHTTPConnection] = route.warm[:]  # the route's proven one
        route.warm.clear()
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
        hijack_reused = hijack is not None and hijack.channel is not None and hijack.sock is not None
        while True:
            conn, reused = (hijack, hijack_reused) if hijack is not None else self._take()
            try:
                status, data, keep = _exchange(conn, method, path, body, stdin)
            except (paramiko.SSHException, OSError, http.client.HTTPException) as exc:
                _close(conn)
                if reused:  # the engine closed a kept connection: again on a new channel
                    hijack = _ChannelHTTPConnection(self.route) if hijacked else None
                    hijack_reused = False
                    continue
                raise TransportError(f"{self.host_name}: {what}: {channel_error(exc)}") from None
            if keep and not hijacked:
                with self._lock:
                    self._idle.append(conn)
            else:
                _close(conn)
            return status, data

    def _take(self) -> tuple[_ChannelHTTPConnection, bool]:
        """A kept connection (True) or a new one (False)."""
        kept = self._take_idle()
        return (kept, True) if kept is not None else (_ChannelHTTPConnection(self.route), False)

    def _take_idle(self) -> _ChannelHTTPConnection | None:
        with self._lock:
            return self._idle.pop() if self._idle else None

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
        # The start's own channel opens while the exec is created: one round trip less. Not
        # where each channel is a session (the server may allow too few to hold one idle):
        # there the start takes the kept channel the create used, and no session opens.
        starter = _ChannelHTTPConnection(self.route)
        opening = None if self.route.sessions else _OPENERS.submit(starter.connect)
        try:
            status, body = self._call(what, "POST", f"/containers/{quote(name, safe='')}/exec", spec)
            if status != 201:
                raise TransportError(f"{self.host_name}: {what}: {_engine_message(body, status)}")
            exec_id = quote(str(json.loads(body)["Id"]), safe="")
            if opening is not None:
                _opened(opening, f"{self.host_name}: {what}")
            else:
                starter = self._take_idle() or starter
        except BaseException:
            if opening is not None:
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
        raise TransportError(f"{what}: {channel_error(exc)}") from None


def channel_error(exc: BaseException) -> str:
    """paramiko's error in words: a refused channel says so (not ``ChannelException(2, …)``)."""
    if isinstance(exc, paramiko.ChannelException):
        return f"the SSH server refused a channel to the Docker Engine ({exc.text}; code {exc.code})"
    return str(exc) or type(exc).__name__


def _engine_message(body: bytes, status: int) -> str:
    """The engine's ``{"message": …}`` error text, or the status."""
    try:
        return str(json.loads(body)["message"])
    except (ValueError, KeyError, TypeError):
        return f"HTTP {status}"
