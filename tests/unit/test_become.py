"""``ansible_become`` (supakong.become and the inventory): what runs on the host through sudo,
how the Docker Engine is reached then, how sudo's refusals are told apart, and which
inventory values are refused with the key that holds them."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from supakong.become import (
    Become,
    as_become,
    check_flags,
    dial_stdio_argv,
    not_writable_hint,
    sudo_refusal,
    sudo_refusal_message,
)
from supakong.errors import InventoryError
from supakong.inventory import load_inventory

HOSTS = """
all:
  vars:
    kong_container: k
    realtime_container: r
    kong_config_path: /srv/kong.yml
    public_url: http://127.0.0.1:8000
  hosts:
    edge-1:
{extra}
"""


def host_with(tmp_path: Path, **values: object):
    extra = "".join(f"      {key}: {value}\n" for key, value in values.items()) or "      {}\n"
    path = tmp_path / "hosts.yml"
    path.write_text(HOSTS.format(extra=extra).replace("    edge-1:\n      {}\n", "    edge-1: {}\n"))
    return load_inventory(path).host("edge-1")


def test_a_command_under_become_is_the_same_argv_behind_sudo_n_and_the_user() -> None:
    argv = ["sh", "-c", 'cat > "$1"', "sh", "/srv/kong; rm -rf /"]
    assert as_become(argv, Become()) == ["sudo", "-n", "-u", "root", "--", *argv]
    assert as_become(argv, Become("kong")) == ["sudo", "-n", "-u", "kong", "--", *argv]
    assert as_become(argv, None) == argv
    # What the server's shell gets: every word quoted, the value never split or run.
    assert shlex.split(shlex.join(as_become(argv, Become()))) == ["sudo", "-n", "-u", "root", "--", *argv]


def test_docker_through_sudo_names_the_inventorys_socket_since_sudo_drops_docker_host() -> None:
    assert dial_stdio_argv("/run/docker.sock", None) == ["docker", "system", "dial-stdio"]
    assert dial_stdio_argv("/run/docker.sock", Become()) == [
        "sudo", "-n", "-u", "root", "--", "docker", "-H", "unix:///run/docker.sock", "system", "dial-stdio",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("stderr", "why"),
    [
        (b"sudo: a password is required\n", "password"),
        (b"sudo: a terminal is required to read the password; either use the -S option\n", "password"),
        (b"Sorry, user deploy is not allowed to execute '/bin/sh -c x' as root on vps.\n", "not-allowed"),
        (b"deploy is not in the sudoers file.\n", "not-allowed"),
        (b"sh: 1: sudo: not found\n", "missing"),
        (b"cat: /srv/kong.yml: No such file or directory\n", None),  # the command's own failure
        (b"", None),
    ],
    ids=["password", "terminal", "not allowed", "no rule", "no sudo", "command failed", "silent"],
)
def test_sudos_own_refusals_are_told_from_the_commands_failures(stderr: bytes, why: str | None) -> None:
    assert sudo_refusal(stderr) == why


def test_the_password_message_names_host_user_and_both_fixes_on_one_line() -> None:
    message = sudo_refusal_message("edge-1", "ubuntu", Become(), "password")
    assert "\n" not in message
    assert message.startswith("edge-1: sudo asks for a password for ubuntu")
    assert "ubuntu ALL=(root) NOPASSWD: ALL" in message and "/etc/sudoers.d/" in message
    assert "docker group" in message and "drop ansible_become" in message
    assert "not installed" in sudo_refusal_message("edge-1", "ubuntu", Become(), "missing")
    assert "as kong" in sudo_refusal_message("edge-1", "ubuntu", Become("kong"), "not-allowed")


def test_a_directory_a_run_with_become_made_tells_a_run_without_it_what_to_do() -> None:
    hint = not_writable_hint("deploy", "/srv/api/.supakong", None)
    assert "ansible_become: true" in hint and "sudo chown -R deploy /srv/api/.supakong" in hint
    assert "root either" not in hint
    assert not_writable_hint("deploy", "/srv/api", Become()) == "/srv/api is not writable by root either"


@pytest.mark.parametrize(
    ("flags", "refused"),
    [("-H -S -n", None), ("", None), ("--set-home", None), ("-H -E", "-E"), ("-i", "-i"), ("'-H", "'-H")],
)
def test_only_become_flags_that_change_nothing_are_accepted(flags: str, refused: str | None) -> None:
    assert check_flags(flags) == refused


def test_the_inventory_reads_ansible_become_and_its_user(tmp_path: Path) -> None:
    plain = host_with(tmp_path)
    assert (plain.become, plain.become_user) == (False, "root")
    become = host_with(tmp_path, ansible_become="yes", ansible_become_user="kong", ansible_become_flags="'-H -S -n'")
    assert (become.become, become.become_user) == (True, "kong")
    assert host_with(tmp_path, ansible_become="true", ansible_become_method="sudo").become is True
    assert host_with(tmp_path, ansible_become="False").become is False


@pytest.mark.parametrize(
    ("key", "value", "problem"),
    [
        ("ansible_become", "maybe", "expected true or false, got 'maybe'"),
        ("ansible_become_method", "su", "'su' is not supported: supakong becomes another user with sudo only"),
        ("ansible_become_flags", "'-E'", "'-E' is not supported"),
        ("ansible_become_user", "'root; id'", "invalid value 'root; id'"),
    ],
)
def test_become_values_supakong_cannot_honour_are_refused_naming_the_key(
    tmp_path: Path, key: str, value: str, problem: str
) -> None:
    with pytest.raises(InventoryError) as err:
        host_with(tmp_path, **{key: value})
    assert f"hosts/edge-1/{key}: {problem}" in str(err.value)
