"""The test suite's socket guard: no test, and no Python process a test starts, can connect
anywhere but this machine and the sandbox VPSes.

:func:`install` wraps ``socket.socket.connect`` and ``connect_ex`` (which every client in
the suite ends up in: paramiko, asyncio, websockets, http.client, urllib, ``create_connection``):
a TCP or UDP connection to an address outside loopback and the sandbox network is refused
with :class:`OutsideConnection` and written to the log file, whose new lines fail the test
that was running (``tests/conftest.py``), even when the code under test swallowed the error.
Unix sockets (the Docker Engine, a sandbox's sshd control) are not network connections.

Subprocesses get the guard through ``sitecustomize.py`` beside this file, which the test
session puts first on ``PYTHONPATH`` (``fab``, ``supakong``, the stand-ins started on
127.0.0.1, bench's delaying proxy). Processes that are not Python (sshd, dockerd, node) are
not covered: they are given only loopback and sandbox addresses.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

LOG_ENV = "SUPAKONG_TEST_SOCKET_GUARD_LOG"
#: Set (to 1) for a process that must not open any network connection at all, loopback too.
NO_NETWORK_ENV = "SUPAKONG_TEST_NO_NETWORK"
#: Loopback and the sandbox VPSes' links (supakong.fence.SANDBOX_NETWORK): nothing else.
ALLOWED = tuple(ipaddress.ip_network(n) for n in ("127.0.0.0/8", "::1/128", "10.203.0.0/16"))
INET = (socket.AF_INET, socket.AF_INET6)


class OutsideConnection(PermissionError):
    """A connection the guard refused (an OSError, as a refused connection would be)."""


def outside(address: Any) -> str | None:
    """The first address ``address`` (a sockaddr, its host maybe a name) reaches that is
    outside the allowed networks, as ``host:port``; None if every one is inside."""
    host, port = str(address[0]), int(address[1])
    if host in ("", "0.0.0.0", "::"):  # noqa: S104 - "this machine", not a bind
        return None
    try:
        candidates = [ipaddress.ip_address(host.split("%", 1)[0])]
    except ValueError:  # a name: what it resolves to
        try:
            infos = _real_getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError:
            return None  # resolves to nothing: the connection fails by itself
        candidates = [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
    for ip in candidates:
        mapped = getattr(ip, "ipv4_mapped", None) or ip
        if not any(mapped in network for network in ALLOWED):
            return f"[{ip}]:{port}" if ip.version == 6 else f"{ip}:{port}"
    return None


def refused(address: Any) -> str | None:
    """``host:port`` if this process may not connect to ``address``, else None."""
    if os.environ.get(NO_NETWORK_ENV):
        return f"{address[0]}:{address[1]} (this process may open no connection)"
    return outside(address)


def install(log: Path) -> None:
    """Guard every socket of this process; refusals are appended to ``log`` (installing
    again only changes the log: a test session started by a test keeps its own)."""
    global _log
    _log = log
    if getattr(socket.socket.connect, "__guarded__", False):
        return

    def guarded(real: Callable[..., Any]) -> Callable[..., Any]:
        def check(self: socket.socket, address: Any) -> Any:
            if self.family in INET and isinstance(address, tuple) and (where := refused(address)):
                _record(where)
                raise OutsideConnection(errno.EACCES, f"the test suite's socket guard refused a connection to {where}")
            return real(self, address)

        check.__guarded__ = True  # type: ignore[attr-defined]
        return check

    socket.socket.connect = guarded(socket.socket.connect)  # type: ignore[method-assign]
    socket.socket.connect_ex = guarded(socket.socket.connect_ex)  # type: ignore[method-assign]


def _record(where: str) -> None:
    command = " ".join(sys.argv)[:200] or sys.executable
    assert _log is not None
    with _log.open("a", encoding="utf-8") as fh:
        fh.write(f"{where}\tpid {os.getpid()}: {command}\n")


_real_getaddrinfo = socket.getaddrinfo
_log: Path | None = None
