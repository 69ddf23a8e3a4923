"""supakong reaches into paramiko's private API (supakong.sshchannel, supakong.transport): the
channel table, CHANNEL_OPEN sent without waiting, the EOF sent under the channel's lock, the
authentication requests it watches, the cipher order. pyproject.toml pins paramiko to the
range these were tested with; this test runs every one of those paths against an in-process
paramiko server over a socket pair, so that a paramiko release that moves them fails here,
loudly, rather than as a hung or dropped connection on a real server."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from importlib.metadata import version

import paramiko
import pytest

from supakong.sessions import SessionBudget
from supakong.sshchannel import SESSION, STREAMLOCAL, request_channel, send_eof, streamlocal_payload
from supakong.transport import _EarlyChannel, _Transport

TESTED = ("5.1",)  # pyproject.toml: paramiko>=5.1,<5.2


class _Server(paramiko.ServerInterface):
    def __init__(self) -> None:
        self.eof = threading.Event()
        self.kinds: list[str] = []

    def get_allowed_auths(self, username: str) -> str:
        return "password"

    def check_auth_password(self, username: str, password: str) -> int:
        return paramiko.AUTH_SUCCESSFUL if password == "right" else paramiko.AUTH_FAILED

    def check_channel_request(self, kind: str, chanid: int) -> int:
        self.kinds.append(kind)
        if kind == SESSION:
            return paramiko.OPEN_SUCCEEDED
        return paramiko.OPEN_FAILED_CONNECT_FAILED  # a refused streamlocal, as OpenSSH answers it

    def check_channel_exec_request(self, channel: paramiko.Channel, command: bytes) -> bool:
        def serve() -> None:
            data = b""
            while chunk := channel.recv(1024):
                data += chunk
            self.eof.set()  # recv returned b"": the client's EOF arrived
            try:
                channel.sendall(data[::-1])
                channel.send_exit_status(0)
                channel.close()
            except (EOFError, OSError):
                pass  # the test already ended and closed the connection: nobody reads this answer

        threading.Thread(target=serve, daemon=True).start()
        return True


@pytest.fixture
def pair() -> Iterator[tuple[_Transport, _Server]]:
    ours, theirs = socket.socketpair()
    server = paramiko.Transport(theirs)
    server.add_server_key(paramiko.RSAKey.generate(1024))
    handler = _Server()
    server.start_server(event=threading.Event(), server=handler)  # returns at once: the client runs next
    early = (_EarlyChannel(SESSION, None, "a session"), _EarlyChannel(STREAMLOCAL, streamlocal_payload("/s"), "/s"))
    client = _Transport(ours, early=early)
    client.start_client(timeout=10)
    client.auth_timeout = 10  # a moved private API fails the test, never hangs it
    client.auth_password("deploy", "right")
    yield client, handler
    client.close()
    server.close()


def test_paramiko_is_a_release_this_private_api_was_tested_with() -> None:
    assert version("paramiko").startswith(TESTED), f"paramiko {version('paramiko')}: run this file, then widen the pin"


def test_channels_asked_for_with_the_authentication_open_refuse_and_carry_data(pair) -> None:
    client, server = pair
    assert client.sent_early and client.auth_requests == 1
    assert client.early_pending(SESSION)
    session = client.take_early(SESSION)
    assert session is not None and not client.early_pending(SESSION)
    channel = session.wait(5)
    channel.exec_command("reverse")
    channel.sendall(b"abc")
    send_eof(channel)  # paramiko's private _send_eof and _send_user_message, under the lock
    assert server.eof.wait(5)
    assert channel.recv(10) == b"cba" and channel.recv_exit_status() == 0
    refused = client.take_early(STREAMLOCAL)
    assert refused is not None
    with pytest.raises(paramiko.ChannelException) as err:
        refused.wait(5)
    assert err.value.code == paramiko.common.OPEN_FAILED_CONNECT_FAILED
    assert server.kinds == [SESSION, STREAMLOCAL]


def test_a_request_sent_later_registers_like_open_channel_and_an_abandoned_one_is_forgotten(pair) -> None:
    client, _ = pair
    pending = request_channel(client, SESSION, what="a session")
    assert pending.wait(5).get_id() == pending.chanid
    forgotten = request_channel(client, STREAMLOCAL, streamlocal_payload("/s"))
    forgotten.abandon()
    assert client._channels.get(forgotten.chanid) is None  # type: ignore[attr-defined]
    assert forgotten.chanid not in client.channel_events


def test_the_budget_sees_a_channel_closed_by_either_side(pair) -> None:
    client, _ = pair
    budget = SessionBudget()
    ours = budget.track(client.open_session(timeout=5))
    theirs = budget.track(client.open_session(timeout=5))
    assert budget.in_use() == 2
    ours.close()
    theirs.exec_command("reverse")
    send_eof(theirs)
    theirs.recv_exit_status()  # the server closes its side after the status
    theirs.status_event.wait(5)
    for _ in range(50):
        if theirs.closed:
            break
        threading.Event().wait(0.02)
    assert budget.in_use() == 0


def test_the_cipher_order_prefers_aes_gcm_and_keeps_the_rest() -> None:
    preferred = _Transport._preferred_ciphers
    assert preferred[0].endswith("-gcm@openssh.com")
    assert sorted(preferred) == sorted(paramiko.Transport._preferred_ciphers)  # type: ignore[attr-defined]
