"""The Docker Engine API carried by the existing SSH connection.

Two ways to reach the engine's socket over the one verified SSH connection, tried in order:

1. ``direct-streamlocal@openssh.com``: an SSH channel straight to the engine's Unix socket
   (what ``ssh -L local.sock:/var/run/docker.sock`` uses). No process starts on the server,
   so a request costs a few milliseconds. OpenSSH allows it unless
   ``AllowStreamLocalForwarding no``; the SSH user must be able to open the socket (root or
   the docker group), exactly as for the docker CLI.
2. ``docker system dial-stdio`` in an exec channel: the docker CLI on the server splices the
   channel onto the engine (the mechanism of ``docker -H ssh://``); ``DOCKER_HOST`` in the
   login environment selects the engine. Used when (1) is refused.

Unlike docker-py's own ``ssh://`` support, neither opens a second SSH session, both honour
the host-key policy of :mod:`supakong.transport`, and ssh config aliases work. Requests are
sent without an API version prefix, which the engine serves with its own current version: no
``GET /version`` round trip, and no pinned version that a newer engine could refuse.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import docker
import paramiko
import requests.adapters
import urllib3
import urllib3.connection
import urllib3.connectionpool
from paramiko.common import cMSG_CHANNEL_OPEN
from paramiko.message import Message

from .errors import TransportError

_BASE_URL = "http+docker://ssh"
DIAL_STDIO = "docker system dial-stdio"
DEFAULT_SOCKET = "/var/run/docker.sock"
#: docker-py decides some request parameters from the client API version; requests go out
#: unversioned (the engine's own version), so claim a version every supported engine speaks.
CLIENT_API_VERSION = "1.41"


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


class _ChannelConnection(urllib3.connection.HTTPConnection):
    """An HTTP connection whose socket is an SSH channel to the engine."""

    def __init__(self, opener: Any, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._opener = opener
        self._channel_timeout = timeout

    def connect(self) -> None:
        channel = self._opener()
        channel.settimeout(self._channel_timeout)
        self.sock = channel


class _ChannelPool(urllib3.connectionpool.HTTPConnectionPool):
    def __init__(self, opener: Any, timeout: float, maxsize: int) -> None:
        super().__init__("localhost", timeout=timeout, maxsize=maxsize)
        self._opener = opener
        self._channel_timeout = timeout

    def _new_conn(self) -> _ChannelConnection:
        return _ChannelConnection(self._opener, self._channel_timeout)


class _ChannelAdapter(requests.adapters.HTTPAdapter):
    """A requests adapter that hands out the one pool bound to our SSH transport."""

    def __init__(self, opener: Any, timeout: float, maxsize: int = 4) -> None:
        super().__init__()
        self._pool = _ChannelPool(opener, timeout, maxsize)

    def get_connection_with_tls_context(self, request: Any, verify: Any, proxies: Any = None, cert: Any = None) -> Any:
        return self._pool

    def get_connection(self, url: Any, proxies: Any = None) -> Any:
        return self._pool

    def request_url(self, request: Any, proxies: Any) -> str:
        # The pool is already bound to the engine: send only the path and query.
        return str(request.path_url)

    def close(self) -> None:
        self._pool.close()


class SSHDockerClient(docker.APIClient):
    """docker-py's low-level API client, speaking HTTP over our SSH connection."""

    def __init__(self, opener: Any, *, timeout: float = 60.0, mode: str = "") -> None:
        # Start as a TCP client (no connection is made), then swap in our adapter.
        super().__init__(base_url="tcp://127.0.0.1:2375", version=CLIENT_API_VERSION, timeout=timeout)
        adapter = _ChannelAdapter(opener, timeout)
        self.mount("http+docker://", adapter)
        self._unmount("http://", "https://")
        self.base_url = _BASE_URL
        self._custom_adapter = adapter
        self.mode = mode

    def _url(self, pathfmt: str, *args: Any, **kwargs: Any) -> str:
        """Unversioned URLs: the engine answers with its current API version."""
        versioned = super()._url(pathfmt, *args, **kwargs)
        return versioned.replace(f"{_BASE_URL}/v{self._version}", _BASE_URL, 1)


def docker_api_over_ssh(
    transport: paramiko.Transport, *, host_name: str, socket_path: str = DEFAULT_SOCKET, timeout: float = 60.0
) -> SSHDockerClient:
    """An API client for the engine on the other end of ``transport``: a streamlocal channel
    to ``socket_path`` if the server allows it, else ``docker system dial-stdio``."""
    try:
        first = [open_streamlocal(transport, socket_path, timeout)]  # proves it works; used first

        def streamlocal() -> paramiko.Channel:
            return first.pop() if first else open_streamlocal(transport, socket_path, timeout)

        return SSHDockerClient(streamlocal, timeout=timeout, mode=f"streamlocal {socket_path}")
    except (paramiko.ChannelException, paramiko.SSHException, AttributeError):
        pass  # refused (AllowStreamLocalForwarding no, no such socket, permissions): use the CLI

    def dial_stdio() -> paramiko.Channel:
        channel = transport.open_session(timeout=timeout)
        channel.exec_command(DIAL_STDIO)
        return channel

    client = SSHDockerClient(dial_stdio, timeout=timeout, mode="dial-stdio")
    try:
        client.ping()
    except docker.errors.DockerException as exc:
        raise TransportError(
            f"{host_name}: cannot reach the Docker Engine through SSH (streamlocal {socket_path} was refused,"
            f" `{DIAL_STDIO}` failed: {exc}). Is Docker running, and is the SSH user root or in the docker group?"
        ) from None
    except (paramiko.SSHException, OSError, urllib3.exceptions.HTTPError) as exc:
        raise TransportError(f"{host_name}: Docker API over SSH failed: {exc}") from None
    return client
