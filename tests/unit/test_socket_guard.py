"""The suite's socket guard (tests/guard): a connection outside loopback and the sandbox
network is refused before a packet leaves, in the test process and in the Python processes a
test starts, and it fails the test that made it. 192.0.2.1 (TEST-NET-1, RFC 5737) stands for
a real server: even a broken guard would send nothing anywhere from it."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from socket_guard import OutsideConnection, outside

from supakong.inventory import load_inventory

OUTSIDE = "192.0.2.1"
TESTS = Path(__file__).resolve().parents[1]
INVENTORY = TESTS.parent / "inventory" / "hosts.yml"


def test_the_production_host_of_the_inventory_is_outside():
    production = load_inventory(INVENTORY).host("mudrock-enterprise")
    assert outside((production.ssh_host, 22)) == f"{production.ssh_host}:22"


@pytest.mark.parametrize("address", ["127.0.0.1", "127.5.6.7", "::1", "10.203.110.2", "localhost", ""])
def test_loopback_and_the_sandbox_network_are_inside(address):
    assert outside((address, 22)) is None


@pytest.mark.parametrize("address", [OUTSIDE, "10.204.0.1", "::ffff:192.0.2.1", "172.17.0.2"])
def test_every_other_address_is_outside(address):
    assert outside((address, 22)) is not None


def test_a_blocking_connect_is_refused_and_logged(refused_connections):
    with pytest.raises(OutsideConnection, match=f"socket guard refused a connection to {OUTSIDE}:22"):
        socket.create_connection((OUTSIDE, 22), timeout=0.5)
    with socket.socket() as sock:
        with pytest.raises(OutsideConnection):
            sock.connect_ex((OUTSIDE, 443))
    assert [line.split("\t")[0] for line in refused_connections()] == [f"{OUTSIDE}:22", f"{OUTSIDE}:443"]


def test_an_asyncio_connection_is_refused_too(refused_connections):
    async def dial() -> None:
        await asyncio.open_connection(OUTSIDE, 80)

    with pytest.raises(OSError, match="socket guard"):
        asyncio.run(dial())
    assert len(refused_connections()) == 1


def test_a_python_subprocess_is_guarded_and_its_refusal_names_it(refused_connections):
    script = f"import socket; socket.create_connection(({OUTSIDE!r}, 22), timeout=0.5)"
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 1 and "OutsideConnection" in proc.stderr
    [line] = refused_connections()
    assert line.startswith(f"{OUTSIDE}:22\tpid ") and "-c" in line


def test_a_process_told_to_open_no_connection_may_not_even_use_loopback(refused_connections):
    script = "import socket; socket.create_connection(('127.0.0.1', 9), timeout=0.5)"
    env = {**os.environ, "SUPAKONG_TEST_NO_NETWORK": "1"}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=30)
    assert proc.returncode == 1 and "OutsideConnection" in proc.stderr
    assert refused_connections()[0].startswith("127.0.0.1:9 (this process may open no connection)")


def test_a_unix_socket_is_not_a_network_connection(tmp_path):
    path = str(tmp_path / "s")
    with socket.socket(socket.AF_UNIX) as server, socket.socket(socket.AF_UNIX) as client:
        server.bind(path)
        server.listen()
        client.connect(path)


def test_a_refusal_the_code_swallowed_still_fails_the_test(pytester):
    """The suite's own conftest and guard, run on a test that catches the refusal and passes."""
    pytester.makeconftest((TESTS / "conftest.py").read_text())
    for name in ("socket_guard.py", "sitecustomize.py"):
        (pytester.path / "guard").mkdir(exist_ok=True)
        (pytester.path / "guard" / name).write_text((TESTS / "guard" / name).read_text())
    pytester.makepyfile(
        f"""
        import socket
        def test_swallows():
            try:
                socket.create_connection(({OUTSIDE!r}, 22), timeout=0.5)
            except OSError:
                pass
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*test_a_refusal_the_code_swallowed_still_fails_the_test.py::test_swallows tried to connect outside*",
            f"*{OUTSIDE}:22*",
        ]
    )
