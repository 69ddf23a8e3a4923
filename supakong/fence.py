"""The host allowlist: the one place that decides whether supakong may dial an address.

``SUPAKONG_HOST_ALLOWLIST`` is a comma-separated list of entries, each one of:

* an inventory host name glob (``sandbox*``, ``edge-?``): which inventory hosts may be
  contacted at all;
* an IP address or network (``203.0.113.7``, ``10.1.0.0/16``, ``::1``): where the sockets
  may go, after the ssh config resolved HostName and ProxyJump and the name resolved to
  addresses.

A connection passes only if both agree: its inventory host matches a name glob (a list with
no name glob leaves names unfenced) and every address it dials is in a listed network. A
list with no address entry allows loopback and the sandbox's own network only, so
``sandbox*`` keeps the demo and the tests on this machine even if a sandbox host were
pointed at a real server. Unset, there is no fence (a user's own runs); set but empty, it
is an error rather than "everything".

Every socket supakong opens to a host goes through :func:`connect` or
:func:`connect_async` (SSH, each ProxyJump hop, the Realtime probe's TCP and WebSocket
connections), which check before dialling and dial only the address they checked.
"""

from __future__ import annotations

import asyncio
import fnmatch
import ipaddress
import os
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from .errors import FenceError

ALLOWLIST_ENV = "SUPAKONG_HOST_ALLOWLIST"
#: The sandbox VPSes' link addresses (``10.203.<index>.1`` and ``.2``, supakong.sandbox.spec).
SANDBOX_NETWORK = "10.203.0.0/16"

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
#: Where a list without address entries may connect: this machine and its sandbox VPSes.
LOCAL_NETWORKS: tuple[IPNetwork, ...] = (
    ipaddress.ip_network("127.0.0.0/8"),
    ipaddress.ip_network("::1/128"),
    ipaddress.ip_network(SANDBOX_NETWORK),
)


@dataclass(frozen=True)
class Allowlist:
    """A parsed ``SUPAKONG_HOST_ALLOWLIST``."""

    text: str
    names: tuple[str, ...]
    networks: tuple[IPNetwork, ...]

    def allows_name(self, name: str) -> bool:
        """Does an inventory host name match (always, when the list has no name glob)?"""
        return not self.names or any(fnmatch.fnmatchcase(name, glob) for glob in self.names)

    def allows_address(self, address: str) -> bool:
        """Is this IP address (text) inside one of the allowed networks?"""
        ip = _ip(address)
        return ip is not None and any(ip in network for network in self.networks)

    def refusal(self, what: str, where: str = "") -> FenceError:
        """The one-line refusal naming the host, the address and the variable."""
        at = f" ({where})" if where else ""
        return FenceError(f"{what}{at} is not allowed by {ALLOWLIST_ENV}={self.text!r}; refusing to connect")


def parse_allowlist(text: str) -> Allowlist:
    """Parse the variable's value; :class:`FenceError` if it lists nothing."""
    entries = [entry.strip() for entry in text.split(",") if entry.strip()]
    if not entries:
        raise FenceError(
            f"{ALLOWLIST_ENV} is set but empty: list the hosts to allow (e.g. {ALLOWLIST_ENV}='sandbox*'),"
            " or unset it to contact any host"
        )
    names, networks = [], []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            names.append(entry)
    return Allowlist(text.strip(), tuple(names), tuple(networks) or LOCAL_NETWORKS)


def current(environ: Mapping[str, str] | None = None) -> Allowlist | None:
    """The allowlist in force (None when the variable is unset: no fence)."""
    environ = os.environ if environ is None else environ
    text = environ.get(ALLOWLIST_ENV)
    return None if text is None else parse_allowlist(text)


def check_host(name: str, environ: Mapping[str, str] | None = None) -> None:
    """Refuse an inventory host whose name the allowlist does not match."""
    allow = current(environ)
    if allow is not None and not allow.allows_name(name):
        raise allow.refusal(f"host {name!r}")


def check_address(what: str, address: str, port: int, environ: Mapping[str, str] | None = None) -> None:
    """Refuse dialling ``address`` (an IP) for ``what`` ("host 'edge-1'") unless allowed."""
    allow = current(environ)
    if allow is not None and not allow.allows_address(address):
        raise allow.refusal(what, _hostport(address, port))


def check_unresolved(what: str, hostname: str, port: int, environ: Mapping[str, str] | None = None) -> None:
    """Refuse a destination another machine dials (a ProxyJump hop's next hop) unless its
    name resolves here to allowed addresses only: what cannot be checked is refused."""
    allow = current(environ)
    if allow is None:
        return
    try:
        infos = socket.getaddrinfo(hostname, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise allow.refusal(what, f"{_hostport(hostname, port)}, which does not resolve here to be checked") from None
    for *_, sockaddr in infos:
        if not allow.allows_address(str(sockaddr[0])):
            raise allow.refusal(what, _hostport(str(sockaddr[0]), port))


def check_public_url(name: str, url: str, environ: Mapping[str, str] | None = None) -> None:
    """Refuse a host whose public URL (which the Realtime probe dials) does not resolve to
    allowed addresses: checked before a run changes anything, not after a restart."""
    endpoint = _endpoint(url)
    if endpoint is not None and current(environ) is not None:
        check_unresolved(f"host {name!r} (its public_url {url})", *endpoint, environ=environ)


def check_proxy_command(what: str, command: str, environ: Mapping[str, str] | None = None) -> None:
    """A ProxyCommand dials wherever its command does: refused while a fence is set."""
    allow = current(environ)
    if allow is not None:
        raise allow.refusal(what, f"through ProxyCommand {command!r}, which cannot be checked")


def connect(what: str, hostname: str, port: int, timeout: float | None) -> socket.socket:
    """A TCP connection to ``hostname:port``: resolved, every address checked, then one of
    them dialled (as :func:`socket.create_connection` would, trying each in turn)."""
    infos = _checked(what, socket.getaddrinfo(hostname, port, type=socket.SOCK_STREAM), port)
    failure: OSError | None = None
    for family, kind, proto, _, sockaddr in infos:
        sock = socket.socket(family, kind, proto)
        try:
            sock.settimeout(timeout)
            sock.connect(sockaddr)
            return sock
        except OSError as exc:
            sock.close()
            failure = exc
    raise failure or OSError(f"{hostname} resolves to no address")


async def connect_async(what: str, hostname: str, port: int) -> socket.socket:
    """:func:`connect` for asyncio: a connected non-blocking socket to hand to
    ``asyncio.open_connection(sock=…)`` or a WebSocket client."""
    loop = asyncio.get_running_loop()
    infos = _checked(what, await loop.getaddrinfo(hostname, port, type=socket.SOCK_STREAM), port)
    failure: OSError | None = None
    for family, kind, proto, _, sockaddr in infos:
        sock = socket.socket(family, kind, proto)
        sock.setblocking(False)
        try:
            await loop.sock_connect(sock, sockaddr)
            return sock
        except OSError as exc:
            sock.close()
            failure = exc
        except BaseException:
            sock.close()
            raise
    raise failure or OSError(f"{hostname} resolves to no address")


def check_url(url: str, public_urls: Iterable[tuple[str, str]], environ: Mapping[str, str] | None = None) -> None:
    """With a fence set, a raw URL (``--url``) may only be the public URL of an inventory host
    the fence lets through; ``public_urls`` pairs each host's name with its public URL."""
    allow = current(environ)
    if allow is None:
        return
    wanted = _endpoint(url)
    for name, public_url in public_urls:
        if wanted is not None and _endpoint(public_url) == wanted:
            check_host(name, environ)
            return
    raise FenceError(
        f"--url {url}: {ALLOWLIST_ENV}={allow.text!r} is set and this URL is not the public_url of an allowed"
        f" inventory host; refusing to contact it (unset {ALLOWLIST_ENV} to check any URL)"
    )


def _checked(what: str, infos: list[Any], port: int) -> list[Any]:
    allow = current()
    if allow is not None:
        for *_, sockaddr in infos:
            if not allow.allows_address(str(sockaddr[0])):
                raise allow.refusal(what, _hostport(str(sockaddr[0]), port))
    return infos


def _ip(address: str) -> IPAddress | None:
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])  # an IPv6 scope (fe80::1%eth0) aside
    except ValueError:
        return None
    mapped = getattr(ip, "ipv4_mapped", None)
    return mapped or ip


def _hostport(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def _endpoint(url: str) -> tuple[str, int] | None:
    """(host, port) a URL reaches, with the scheme's default port."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    secure = parts.scheme.lower() in ("https", "wss")
    return ((parts.hostname or "").lower(), port or (443 if secure else 80)) if parts.hostname else None
