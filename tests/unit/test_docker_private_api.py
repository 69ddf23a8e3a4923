"""supakong.dockerssh reaches into docker-py's, requests' and urllib3's private API: it swaps
docker.APIClient's adapters (``_unmount``, ``_custom_adapter``), rewrites ``_url`` with
``_version``, overrides requests' ``HTTPAdapter.get_connection_with_tls_context`` and
``request_url`` and urllib3's ``HTTPConnectionPool._new_conn``. pyproject.toml pins each to
the majors this was tested with; this test runs a real request through those paths to an
HTTP server on a socket pair, so that a release that moves them fails here, loudly, not as a
request that silently goes to tcp://127.0.0.1:2375 on a real host."""

from __future__ import annotations

import json
import socket
import threading
from importlib.metadata import version

import docker
import requests.adapters
import urllib3.connectionpool

from supakong.dockerssh import SSHDockerClient

TESTED = {"docker": "7", "requests": "2", "urllib3": "2"}  # pyproject.toml: <8, <3, <3


def test_the_installed_majors_are_the_tested_ones():
    for package, major in TESTED.items():
        assert version(package).split(".")[0] == major, (
            f"{package} {version(package)} is not the major {major} supakong.dockerssh was tested with: "
            "rerun this test file, then move the pin in pyproject.toml and TESTED"
        )


def test_the_private_names_dockerssh_overrides_still_exist():
    for owner, name in [
        (docker.APIClient, "_unmount"),
        (docker.APIClient, "_url"),
        (requests.adapters.HTTPAdapter, "get_connection_with_tls_context"),
        (requests.adapters.HTTPAdapter, "request_url"),
        (urllib3.connectionpool.HTTPConnectionPool, "_new_conn"),
    ]:
        assert callable(getattr(owner, name, None)), f"{owner.__module__}.{owner.__qualname__}.{name} is gone"


def _answer_one(server: socket.socket, seen: list[bytes]) -> None:
    request = b""
    while b"\r\n\r\n" not in request:
        chunk = server.recv(4096)
        if not chunk:
            return
        request += chunk
    seen.append(request)
    body = json.dumps({"Id": "abc", "State": {"Running": True}}).encode()
    server.sendall(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\nApi-Version: 1.47\r\n\r\n".encode()
        + body
    )


def test_a_request_goes_unversioned_over_the_channel_the_opener_gives():
    client_end, server_end = socket.socketpair()
    seen: list[bytes] = []
    opened: list[int] = []

    def opener() -> socket.socket:
        opened.append(1)
        return client_end

    thread = threading.Thread(target=_answer_one, args=(server_end, seen), daemon=True)
    thread.start()
    client = SSHDockerClient(opener, timeout=5)
    try:
        state = client.inspect_container("kong")
    finally:
        client.close()
        server_end.close()
    thread.join(5)
    assert state["Id"] == "abc" and opened == [1], "the one channel our opener gave"
    assert seen and seen[0].startswith(b"GET /containers/kong/json HTTP/1.1\r\n"), seen
