"""Does the restarted Kong answer HTTP yet? A cheap gate in front of its healthcheck.

After a restart supakong runs the container's own healthcheck (``kong health``) instead of
waiting for Docker's next probe. Each run is a ``docker exec`` (~75 ms of the host's CPU for
runc alone) plus the check itself (real ``kong health`` starts Kong's CLI: a few hundred ms
more), and a Kong that is still loading its config competes with every probe for the same
CPU. Asking Kong's proxy port for any HTTP answer costs the host one ``connect()`` and one
tiny request: supakong asks that first, and runs the healthcheck when Kong answers (and, as a
safety net for an address it could not guess, on a slow schedule of its own). The running
Kong is asked once before the restart: when it answers, the address is proven and the safety
net runs rarely (under load, with 30 Kongs starting on two cores, the safety execs alone
cost seconds).

The address comes from the container (pure, :func:`proxy_address`): the first entry of
``KONG_PROXY_LISTEN`` (default ``0.0.0.0:8000``), reached at 127.0.0.1 with host networking,
at the published host port, or at the container's own address on its network. The request
travels in a ``direct-tcpip`` channel of the host's one SSH connection.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor, Future

import paramiko

from .container import PROVEN_GATE_PROBE_AFTER, UNGATED_PROBE_AFTER, ContainerState

DEFAULT_PROXY_LISTEN = "0.0.0.0:8000"
DIRECT_TCPIP = "direct-tcpip"
_ANY = ("0.0.0.0", "*", "", "::", "[::]")
#: No route of a Supabase gateway has this path; Kong answers 404 (or 401 behind a catch-all
#: basic-auth route) without calling an upstream.
_REQUEST = b"GET /.supakong-listen-probe HTTP/1.0\r\nHost: localhost\r\nUser-Agent: supakong\r\n\r\n"


def _port(text: str) -> int | None:
    """``text`` as a port number, or None (ASCII digits only: ``isdigit()`` takes "¹")."""
    return int(text) if text.isascii() and text.isdecimal() else None


def proxy_address(state: ContainerState) -> tuple[str, int] | None:
    """Where Kong's first proxy listener can be reached from the host, or None if unknown
    (``off``, a malformed listen entry, or a port neither published nor reachable)."""
    first = state.env.get("KONG_PROXY_LISTEN", DEFAULT_PROXY_LISTEN).split(",")[0].split()
    if not first or first[0] == "off":
        return None
    listen_host, _, port_text = first[0].rpartition(":")
    port = _port(port_text)
    if port is None:
        return None
    if state.network_mode == "host":
        return ("127.0.0.1" if listen_host in _ANY else listen_host.strip("[]"), port)
    for host_ip, host_port in state.published.get(f"{port}/tcp", ()):
        if (published := _port(host_port)) is not None:
            return ("127.0.0.1" if host_ip in _ANY else host_ip, published)
    return (state.addresses[0], port) if state.addresses else None


def answers_http(transport: paramiko.Transport, address: tuple[str, int], timeout: float = 2.0) -> bool | None:
    """True if something at ``address`` (seen from the SSH server) answers an HTTP request
    with a status line; False if nothing does yet; None if the server does not allow
    ``direct-tcpip`` channels (``AllowTcpForwarding no``, ``DisableForwarding yes``), so
    asking again is pointless: the connection remembers it, and is not asked again."""
    refused: set[str] | None = getattr(transport, "refused_kinds", None)  # learned once per connection
    if refused is not None and DIRECT_TCPIP in refused:
        return None
    try:
        channel = transport.open_channel(DIRECT_TCPIP, address, ("127.0.0.1", 0), timeout=timeout)
    except paramiko.ChannelException as exc:
        if exc.code != paramiko.common.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED:
            return False
        if refused is not None:
            refused.add(DIRECT_TCPIP)
        return None
    except (paramiko.SSHException, OSError):
        return False
    try:
        channel.settimeout(timeout)
        channel.sendall(_REQUEST)
        head = b""
        while len(head) < 12:  # "HTTP/1.1 404"
            chunk = channel.recv(12 - len(head))
            if not chunk:
                break
            head += chunk
        return head.startswith(b"HTTP/") and head[9:12].isdigit()
    except (OSError, paramiko.SSHException):  # socket timeouts are OSErrors
        return False
    finally:
        channel.close()


class ListenGate:
    """The gate of :func:`supakong.container.wait_until_running` for one host: does Kong
    answer HTTP on its proxy port, asked through the host's SSH connection? None (no gate)
    when the address is unknown or the server refuses ``direct-tcpip`` channels."""

    def __init__(self, transport: Callable[[], paramiko.Transport]) -> None:
        self._transport = transport
        self.refused = False
        #: the running Kong answered at its address before the restart
        self.verified = False
        self._ahead: tuple[tuple[str, int], Future[bool | None]] | None = None

    def __call__(self, state: ContainerState) -> bool | None:
        address = proxy_address(state)
        if address is None or self.refused:
            return None
        ahead, self._ahead = self._ahead, None
        if ahead is not None and ahead[0] == address:
            answer = ahead[1].result()
        else:
            answer = answers_http(self._transport(), address)
        self.refused = answer is None
        return answer

    def ask_ahead(self, state: ContainerState, executor: Executor) -> None:
        """Ask now, in the background, for the next call: right after the restart, while
        the restarted container is inspected (the two answers then take one round trip
        instead of one after the other). The next call takes this answer when it asks the
        same address (a container's address can change when it starts)."""
        address = proxy_address(state)
        if address is not None and not self.refused:
            self._ahead = (address, executor.submit(answers_http, self._transport(), address))

    def settle(self) -> None:
        """Wait for a question asked ahead and not taken (its channel is this connection's)."""
        ahead, self._ahead = self._ahead, None
        if ahead is not None:
            ahead[1].exception()

    def check_before_restart(self, running: ContainerState) -> None:
        """Ask the running Kong once; an answer proves the address (see :attr:`verified`)."""
        self.verified = running.running and self(running) is True

    @property
    def ungated_after(self) -> tuple[float, float]:
        """The healthcheck's safety schedule while Kong does not answer (first delay,
        longest delay): rare once the address is proven."""
        return PROVEN_GATE_PROBE_AFTER if self.verified else UNGATED_PROBE_AFTER
