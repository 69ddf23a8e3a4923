"""Added round-trip time on the sandbox SSH links, without ``sch_netem``.

The machine's kernel has no netem qdisc (``tc qdisc add … netem`` answers "Specified qdisc
kind is unknown"), so the delay is added in user space: an ``iptables -t nat OUTPUT`` rule
redirects connections to ``10.203.<i>.2:22`` to a local proxy on 127.0.0.1, which connects
on to the original destination (``SO_ORIGINAL_DST``; its own connections carry a firewall
mark the rule skips) and forwards every chunk in each direction ``delay`` later, in order.
Every request/response exchange thus costs ``2 × delay`` more, like netem on both ends;
the TCP connect is delayed by one round trip too. Only sandbox addresses are redirected.

Run as ``python bench/latency.py serve PORT DELAY_MS COUNT_FILE`` (the benchmark starts and
stops it); COUNT_FILE holds the number of connections accepted, so that a run can check that
every one of its SSH logins went through the delay. ``forward PORT DELAY_MS ADDRESS
COUNT_FILE`` is the same proxy for a client that dials it itself (the round-trip test).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

MARK = 0x5C
SO_ORIGINAL_DST = 80


def _rule(action: str, address: str, port: int) -> list[str]:
    return [
        "iptables", "-t", "nat", action, "OUTPUT", "-d", address, "-p", "tcp", "--dport", "22",
        "-m", "mark", "!", "--mark", str(MARK), "-j", "REDIRECT", "--to-ports", str(port),
    ]  # fmt: skip


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    """Forward ``reader`` to ``writer``, each chunk ``delay`` seconds after it arrived."""
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def send() -> None:
        while True:
            due, chunk = await queue.get()
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            if not chunk:
                with contextlib.suppress(OSError):
                    writer.write_eof()
                return
            writer.write(chunk)
            await writer.drain()

    sender = asyncio.create_task(send())
    try:
        while True:
            chunk = await reader.read(65536)
            queue.put_nowait((time.monotonic() + delay, chunk))
            if not chunk:
                break
        await sender
    except (OSError, asyncio.CancelledError):
        sender.cancel()


#: Source ports of the proxy's own connections: below the kernel's ephemeral range (32768+).
_UPSTREAM_PORTS = itertools.cycle(range(20000, 32000))


def _bind_outside_ephemeral_range(sock: socket.socket) -> None:
    """Give an upstream connection a source port that no client connection can get.

    Some upstream connections end without conntrack seeing their close: their entry stays
    ESTABLISHED, without NAT, for days (``nf_conntrack_tcp_timeout_established``). A client
    connection that later got the same ephemeral port matched that entry instead of a new
    one, so the REDIRECT rule never saw it: it reached sshd directly, without the delay
    (about 1 connection in 30 on the most used sandbox, after a day of benchmarks)."""
    for _ in range(12000):
        try:
            sock.bind(("0.0.0.0", next(_UPSTREAM_PORTS)))
            return
        except OSError:  # in use, or still in TIME_WAIT
            continue
    raise OSError("no free source port for the delaying proxy")


async def _handle(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    delay: float,
    count: Path,
    target: tuple[str, int] | None,
) -> None:
    global _accepted
    _accepted += 1
    _write_count(count, _accepted)
    sock = writer.get_extra_info("socket")
    if target is None:  # redirected by the iptables rule: where the client was going
        raw = sock.getsockopt(socket.SOL_IP, SO_ORIGINAL_DST, 16)
        port, packed = struct.unpack_from("!H", raw, 2)[0], raw[4:8]
        address = socket.inet_ntoa(packed)
    else:
        address, port = target
    if not address.startswith("10.203."):
        writer.close()
        return
    upstream = socket.socket()
    upstream.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, MARK)
    _bind_outside_ephemeral_range(upstream)
    upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    upstream.setblocking(False)
    await asyncio.sleep(2 * delay)  # the SYN / SYN-ACK round trip
    try:
        await asyncio.get_running_loop().sock_connect(upstream, (address, port))
        up_reader, up_writer = await asyncio.open_connection(sock=upstream)
    except OSError:
        writer.close()
        return
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    await asyncio.gather(_pump(reader, up_writer, delay), _pump(up_reader, writer, delay))
    for w in (writer, up_writer):
        w.close()


_accepted = 0


def _write_count(count: Path, value: int) -> None:
    """Replace the count file whole, so that a reader never sees it empty."""
    partial = count.with_name(count.name + ".partial")
    partial.write_text(f"{value}\n")
    os.replace(partial, count)


async def _serve(port: int, delay: float, count: Path, target: tuple[str, int] | None = None) -> None:
    _write_count(count, 0)
    server = await asyncio.start_server(
        lambda r, w: _handle(r, w, delay, count, target), "127.0.0.1", port, backlog=512
    )
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    print("ready", flush=True)
    async with server:
        await stop.wait()


def remove_stale_rules(port: int = 10222) -> int:
    """Delete redirect rules a killed earlier run left behind (they would send SSH to a proxy
    that no longer listens: "Connection refused"). Returns how many were removed."""
    listing = subprocess.run(["iptables", "-t", "nat", "-S", "OUTPUT"], capture_output=True, text=True, check=False)
    stale = [
        line.split()[1:]
        for line in listing.stdout.splitlines()
        if line.startswith("-A OUTPUT ") and f"--to-ports {port}" in line and "--mark" in line
    ]
    for rule in stale:
        subprocess.run(["iptables", "-t", "nat", "-D", *rule], check=False)
    return len(stale)


@dataclass(frozen=True)
class DelayProxy:
    """The running proxy: how many connections it has accepted so far."""

    count_file: Path

    def accepted(self) -> int:
        """Connections accepted since the proxy started."""
        try:
            return int(self.count_file.read_text() or 0)
        except (OSError, ValueError):
            return 0


def forget_stale_connections(addresses: Sequence[str]) -> int:
    """Delete conntrack's entries of earlier SSH connections to ``addresses`` (needs the
    ``conntrack`` tool; without it, nothing): an entry that outlived its connection would let
    a new connection with the same port bypass the redirect. Returns how many were deleted."""
    if shutil.which("conntrack") is None:
        return 0
    deleted = 0
    for address in addresses:
        done = subprocess.run(
            ["conntrack", "-D", "-p", "tcp", "-d", address, "--dport", "22"], capture_output=True, text=True
        )
        deleted += sum(1 for line in done.stdout.splitlines() if line.startswith("tcp "))
    return deleted


@contextlib.contextmanager
def added_rtt(addresses: Sequence[str], rtt_ms: float, port: int = 10222) -> Iterator[DelayProxy]:
    """Within the block, SSH to ``addresses`` has ``rtt_ms`` more round-trip time."""
    remove_stale_rules(port)
    forget_stale_connections(addresses)
    with _proxy(["serve", str(port), str(rtt_ms / 2)]) as proxy:
        added: list[str] = []
        try:
            for address in addresses:
                subprocess.run(_rule("-A", address, port), check=True)
                added.append(address)
            yield proxy
        finally:
            for address in added:
                subprocess.run(_rule("-D", address, port), check=False)


@contextlib.contextmanager
def delayed_forward(address: str, rtt_ms: float, port: int, target_port: int = 22) -> Iterator[DelayProxy]:
    """Within the block, 127.0.0.1:``port`` forwards to ``address``:``target_port`` with
    ``rtt_ms`` of round-trip time added (no iptables: the client dials the proxy itself, as
    the tests do)."""
    with _proxy(["forward", str(port), str(rtt_ms / 2), f"{address}:{target_port}"]) as proxy:
        yield proxy


@contextlib.contextmanager
def _proxy(args: list[str]) -> Iterator[DelayProxy]:
    with tempfile.TemporaryDirectory(prefix="supakong-rtt-") as tmp:
        count = Path(tmp) / "accepted"
        proxy = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), *args, str(count)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,  # asyncio's "task was destroyed" notes at shutdown
            text=True,
        )
        try:
            assert proxy.stdout is not None and proxy.stdout.readline().strip() == "ready"
            yield DelayProxy(count)
        finally:
            proxy.terminate()
            proxy.wait(10)


def measure_rtt(address: str, samples: int = 5) -> float:
    """Milliseconds to open a TCP connection to ``address:22`` and read sshd's banner: two
    round trips (connect + banner), the median."""
    times = []
    for _ in range(samples):
        t0 = time.monotonic()
        with socket.create_connection((address, 22), timeout=5) as s:
            s.recv(64)
        times.append((time.monotonic() - t0) * 1000)
    return sorted(times)[len(times) // 2]


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "serve":
        asyncio.run(_serve(int(sys.argv[2]), float(sys.argv[3]) / 1000, Path(sys.argv[4])))
    elif len(sys.argv) == 6 and sys.argv[1] == "forward":
        address, _, target_port = sys.argv[4].partition(":")
        target = (address, int(target_port or 22))
        asyncio.run(_serve(int(sys.argv[2]), float(sys.argv[3]) / 1000, Path(sys.argv[5]), target))
    else:
        sys.exit(
            "usage: latency.py serve PORT ONE_WAY_DELAY_MS COUNT_FILE"
            " | forward PORT ONE_WAY_DELAY_MS ADDRESS[:PORT] COUNT_FILE"
        )
