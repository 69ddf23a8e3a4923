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

from typing import Any

import docker
import requests.adapters
import urllib3
import urllib3.connection
import urllib3.connectionpool

from .engine import EngineRoute

_BASE_URL = "http+docker://ssh"
#: docker-py decides some request parameters from the client API version; requests go out
#: unversioned (the engine's own version), so claim a version every supported engine speaks.
CLIENT_API_VERSION = "1.41"


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
        # No proxies, netrc or CA bundles from the environment for an SSH channel: with
        # trust_env requests scanned all of os.environ on every call (a third of each call's CPU).
        self.trust_env = False
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


def docker_api_over_ssh(route: EngineRoute) -> SSHDockerClient:
    """docker-py's API client on the channels of ``route`` (see :func:`supakong.engine.engine_opener`)."""
    return SSHDockerClient(route.opener, timeout=route.timeout, mode=route.mode)
