"""The Docker Engine API carried by an existing SSH connection.

Each HTTP connection of the pool is an SSH exec channel running ``docker system dial-stdio``
on the host, which splices the channel onto the engine's socket (the same mechanism as
``docker -H ssh://``). Unlike docker-py's own ``ssh://`` support this opens no second SSH
session, honours the host-key policy of :mod:`supakong.transport`, and works with ssh config
aliases. ``DOCKER_HOST`` on the server (its login environment) selects the engine there.
"""

from __future__ import annotations

from typing import Any

import docker
import paramiko
import requests.adapters
import urllib3
import urllib3.connection
import urllib3.connectionpool

from .errors import TransportError

_BASE_URL = "http+docker://ssh"
DIAL_STDIO = "docker system dial-stdio"


class _DialStdioConnection(urllib3.connection.HTTPConnection):
    """An HTTP connection whose socket is an SSH channel running ``docker system dial-stdio``."""

    def __init__(self, transport: paramiko.Transport, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._ssh_transport = transport
        self._channel_timeout = timeout

    def connect(self) -> None:
        channel = self._ssh_transport.open_session(timeout=self._channel_timeout)
        channel.settimeout(self._channel_timeout)
        channel.exec_command(DIAL_STDIO)
        self.sock = channel


class _DialStdioPool(urllib3.connectionpool.HTTPConnectionPool):
    def __init__(self, transport: paramiko.Transport, timeout: float, maxsize: int) -> None:
        super().__init__("localhost", timeout=timeout, maxsize=maxsize)
        self._ssh_transport = transport
        self._channel_timeout = timeout

    def _new_conn(self) -> _DialStdioConnection:
        return _DialStdioConnection(self._ssh_transport, self._channel_timeout)


class _DialStdioAdapter(requests.adapters.HTTPAdapter):
    """A requests adapter that hands out the one pool bound to our SSH transport."""

    def __init__(self, transport: paramiko.Transport, timeout: float, maxsize: int = 4) -> None:
        super().__init__()
        self._pool = _DialStdioPool(transport, timeout, maxsize)

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

    def __init__(self, transport: paramiko.Transport, *, timeout: float = 60.0, version: str = "auto") -> None:
        # Start as a TCP client (no connection is made), then swap in our adapter. The API
        # version is negotiated with one GET /version on the first channel.
        super().__init__(base_url="tcp://127.0.0.1:2375", version="1.24", timeout=timeout)
        adapter = _DialStdioAdapter(transport, timeout)
        self.mount("http+docker://", adapter)
        self._unmount("http://", "https://")
        self.base_url = _BASE_URL
        self._custom_adapter = adapter
        if version == "auto":
            self._version = self._retrieve_server_version()
        else:
            self._version = version


def docker_api_over_ssh(transport: paramiko.Transport, *, host_name: str, timeout: float = 60.0) -> SSHDockerClient:
    """Return an API client for the engine on the other end of ``transport``."""
    try:
        return SSHDockerClient(transport, timeout=timeout)
    except docker.errors.DockerException as exc:
        raise TransportError(
            f"{host_name}: cannot reach the Docker Engine through SSH (`{DIAL_STDIO}`): {exc}."
            " Is the docker CLI installed there and is the SSH user root or in the docker group?"
        ) from None
    except (paramiko.SSHException, OSError, urllib3.exceptions.HTTPError) as exc:
        raise TransportError(f"{host_name}: Docker API over SSH failed: {exc}") from None
