"""The host key of every hop of a ProxyJump chain is verified as the final host's is: a real
second OpenSSH sshd of the sandbox VPS (supakong.sandbox.variants) is the jump host in front
of the sandbox's own sshd. Fabric builds a hop with AutoAddPolicy and no known_hosts file of
the ssh config: an unknown or changed jump host key was accepted."""

from __future__ import annotations

import dataclasses

import pytest

from supakong.errors import TransportError
from supakong.sandbox.spec import CLIENT_KEY, SSH_USER
from supakong.sandbox.variants import SshdVariant, start_variants
from supakong.transport import HostConnection

JUMP = SshdVariant("jump", 2230, ())


@pytest.fixture()
def chain(sandbox_spec, host, tmp_path):
    """A host reached through the jump sshd; its known_hosts files (target, jump) to fill."""
    start_variants(sandbox_spec, (JUMP,))
    key = " ".join((sandbox_spec.state_dir / "ssh_host_ed25519_key.pub").read_text().split()[:2])
    target_known, jump_known = tmp_path / "known_target", tmp_path / "known_jump"
    target_known.write_text(f"{sandbox_spec.vps_addr} {key}\n")
    config = tmp_path / "ssh_config"
    common = f"  User {SSH_USER}\n  IdentityFile {CLIENT_KEY}\n  IdentitiesOnly yes\n  StrictHostKeyChecking yes\n"
    config.write_text(
        f"Host sandbox-jump\n  HostName {sandbox_spec.vps_addr}\n  Port {JUMP.port}\n{common}"
        f"  UserKnownHostsFile {jump_known}\n"
        f"Host sandbox-behind-jump\n  HostName {sandbox_spec.vps_addr}\n  Port 22\n  ProxyJump sandbox-jump\n{common}"
        f"  UserKnownHostsFile {target_known}\n"
    )
    behind = dataclasses.replace(host, ssh_host="sandbox-behind-jump", ssh_port=None, ssh_config_file=config)
    return behind, jump_known, key, sandbox_spec


def test_a_known_jump_host_key_connects(chain):
    behind, jump_known, key, spec = chain
    jump_known.write_text(f"[{spec.vps_addr}]:{JUMP.port} {key}\n")
    with HostConnection(behind, early=()) as conn:
        assert conn.run(["echo", "through"]).text.strip() == "through"


def test_an_unknown_jump_host_key_is_refused_naming_the_jump_host(chain):
    behind, jump_known, _, spec = chain
    jump_known.write_text("")
    with pytest.raises(TransportError) as error, HostConnection(behind, early=()) as conn:
        conn.run(["true"])
    message = str(error.value)
    assert "jump host sandbox-jump" in message and "host key is unknown" in message and "\n" not in message
    assert jump_known.read_text() == "", "nothing was trusted on the way"


def test_a_changed_jump_host_key_is_refused(chain):
    behind, jump_known, _, spec = chain
    other = " ".join((spec.state_dir / "ssh_host_ed25519_key.pub").read_text().split()[:1])
    wrong = "AAAAC3NzaC1lZDI1NTE5AAAAIMd0pSOYq6qj0u5CxrJkqOv7mFBkM2zE0yq8Sxq6Pv0W"
    jump_known.write_text(f"[{spec.vps_addr}]:{JUMP.port} {other} {wrong}\n")
    with (
        pytest.raises(TransportError, match="jump host sandbox-jump.*HOST KEY HAS CHANGED"),
        HostConnection(behind, early=()) as conn,
    ):
        conn.run(["true"])


def test_accept_new_trusts_an_unknown_jump_host_key_on_first_use(chain):
    behind, jump_known, key, spec = chain
    jump_known.write_text("")
    with HostConnection(behind, accept_new=True, early=()) as conn:
        assert conn.run(["echo", "ok"]).text.strip() == "ok"
    assert key.split()[1] in jump_known.read_text()
