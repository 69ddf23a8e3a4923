"""Which authentication requests channel requests may follow (supakong.transport): only one
whose very next answer is the success, or the server drops them before authentication."""

from __future__ import annotations

import paramiko
import pytest
from paramiko.common import cMSG_USERAUTH_REQUEST
from paramiko.message import Message

from supakong.transport import _answered_at_once, connection_ended


def request(method: str, *fields: bool | str) -> bytes:
    m = Message()
    m.add_byte(cMSG_USERAUTH_REQUEST)
    m.add_string("deploy")
    m.add_string("ssh-connection")
    m.add_string(method)
    for field in fields:
        if isinstance(field, bool):
            m.add_boolean(field)
        else:
            m.add_string(field)
    return m.asbytes()


@pytest.mark.parametrize(
    ("raw", "at_once"),
    [
        (request("publickey", True, "ssh-ed25519", "blob", "signature"), True),
        (request("password", False, "secret"), True),
        (request("publickey", False, "ssh-ed25519", "blob"), False),  # a query: PK_OK comes first
        (request("keyboard-interactive", "", ""), False),  # INFO_REQUEST comes first
        (request("gssapi-with-mic"), False),
        (request("none"), False),  # lists the methods: a FAILURE, never the success
    ],
    ids=["signed publickey", "password", "publickey query", "keyboard-interactive", "gssapi", "none"],
)
def test_channels_follow_only_a_request_that_is_answered_at_once(raw: bytes, at_once: bool) -> None:
    assert _answered_at_once(raw) is at_once


@pytest.mark.parametrize(
    ("sent_early", "active", "failure", "ended"),
    [
        (True, False, paramiko.SSHException("No existing session"), True),  # paramiko's thread saw the end
        (True, True, EOFError(), True),  # this thread saw it first, writing the next request
        (True, True, ConnectionResetError(), True),
        (True, True, paramiko.AuthenticationException("every key refused"), False),  # still connected
        (False, False, EOFError(), False),  # no early requests: nothing to dial again without
    ],
    ids=["transport ended", "eof on write", "reset on write", "authentication failed", "no early requests"],
)
def test_a_connection_the_server_ended_over_early_requests_is_told_from_other_failures(
    sent_early: bool, active: bool, failure: BaseException, ended: bool
) -> None:
    assert connection_ended(sent_early, active, failure) is ended
