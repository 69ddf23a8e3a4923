"""``ansible_become``: the host's commands and its Docker Engine through ``sudo``, as Ansible's
``become`` does for a user that is not root (Ubuntu's ``ubuntu``, with its NOPASSWD rule).

Every remote command supakong runs touches the config file, its backups, lock or audit log;
under become each one runs as ``sudo -n -u USER -- ARGV…``: the argv stays a list (each word
quoted by :func:`shlex.join` on the way, never a string built from values), and ``-n`` makes
sudo fail at once instead of waiting for a password nobody will type. The Docker Engine is
then reached with ``sudo -n -u USER -- docker -H unix://SOCKET system dial-stdio``: sudo
resets the environment, so the socket is named explicitly (the login's ``DOCKER_HOST`` is
gone, and root's docker CLI would otherwise talk to whatever engine is its default).

Files written under become belong to the become user (root): a replaced file keeps the owner
and mode it had, a new one is root's, and so are the ``.supakong`` directory beside it (its
lock, backups and audit log). A later run without become cannot write there: its error says
so (:func:`not_writable_hint`).
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass

#: The only method supakong implements (Ansible's default).
METHOD = "sudo"
#: ``ansible_become_flags`` words that change nothing here (Ansible's default is ``-H -S -n``):
#: the home directory is not used, and no password is ever sent on stdin.
HARMLESS_FLAGS = frozenset({"-H", "--set-home", "-S", "--stdin", "-n", "--non-interactive"})


@dataclass(frozen=True)
class Become:
    """Run as ``user`` through ``sudo -n``."""

    user: str = "root"

    def argv(self, argv: Sequence[str]) -> list[str]:
        """``argv`` run as :attr:`user` (sudo never prompts: ``-n``)."""
        return ["sudo", "-n", "-u", self.user, "--", *argv]


def as_become(argv: Sequence[str], become: Become | None) -> list[str]:
    """``argv`` itself, or wrapped in sudo when the host is configured with become."""
    return become.argv(argv) if become is not None else list(argv)


def dial_stdio_argv(socket_path: str, become: Become | None) -> list[str]:
    """The command that splices a session onto the Docker Engine: the login's docker CLI
    (``DOCKER_HOST`` from the login's environment picks the engine), or under become, sudo's
    docker CLI told the inventory's ``docker_socket`` explicitly."""
    if become is None:
        return ["docker", "system", "dial-stdio"]
    return become.argv(["docker", "-H", f"unix://{socket_path}", "system", "dial-stdio"])


def check_flags(flags: str) -> str | None:
    """The first ``ansible_become_flags`` word supakong would ignore at the user's cost, or None."""
    try:
        words = shlex.split(flags)
    except ValueError:  # unbalanced quotes
        return flags
    return next((word for word in words if word not in HARMLESS_FLAGS), None)


def sudo_refusal(stderr: bytes | str) -> str | None:
    """Why sudo refused to run the command (from its stderr), or None if it did not:
    ``password`` (``-n`` and a rule that asks for one, or no rule: sudo asks first),
    ``not-allowed`` (a rule exists, not for this command or user), ``missing`` (no sudo)."""
    text = stderr.decode("utf-8", "replace") if isinstance(stderr, bytes) else stderr
    if "sudo: a password is required" in text or "sudo: a terminal is required" in text:
        return "password"
    if "is not allowed to execute" in text or "is not in the sudoers file" in text:
        return "not-allowed"
    if "sudo: not found" in text or "sudo: command not found" in text:
        return "missing"
    return None


def sudo_refusal_message(host: str, login: str, become: Become, why: str) -> str:
    """One line: the host, the user, and the two ways out."""
    drop = f"or add {login} to the docker group, make the config's directory writable by it, and drop ansible_become"
    if why == "missing":
        return f"{host}: ansible_become is set but sudo is not installed on the host; install it, {drop}"
    ask = "asks for a password" if why == "password" else f"does not allow it to run commands as {become.user}"
    return (
        f"{host}: sudo {ask} for {login} (supakong runs `sudo -n`, it never types a password): add a NOPASSWD rule"
        f" for {login} (e.g. `{login} ALL=({become.user}) NOPASSWD: ALL` in /etc/sudoers.d/), {drop}"
    )


def not_writable_hint(login: str, directory: str, become: Become | None) -> str:
    """Why a directory supakong writes in may refuse the SSH user, and what to do."""
    if become is not None:
        return f"{directory} is not writable by {become.user} either"
    return (
        f"{directory} is not writable by {login}: if an earlier run used ansible_become, it belongs to root;"
        f" set ansible_become: true for this host (docs/inventory.md, become), or `sudo chown -R {login} {directory}`"
    )
