"""More doors into one sandbox VPS: extra sshds with the settings of hardened servers, and
deploy users that reach Docker and the config only through ``sudo``.

Each variant is another OpenSSH sshd in the VPS's network namespace, on its own port, with
its own ``sshd_config`` (the sandbox's, plus the variant's lines), the same host key, and an
alias of its own in ``<state>/ssh_config_variants``. It reaches the same dockerd and the same
containers, so an inventory host per variant (:func:`variant_host_vars`) deploys the very
same Kong as the sandbox's own host.

The ``become`` variant lets in two more users of this machine, made for this sandbox only
(their names carry its index, so that sandboxes of concurrent test runs never share them):

- ``supakong-sudo-<index>``: a system user, NOT in the docker group, that may run anything
  as root through ``sudo`` without a password: the rule Ubuntu's cloud-init writes for the
  ``ubuntu`` user (``/etc/sudoers.d/90-cloud-init-users``);
- ``supakong-pw-<index>``: the same, except that its ``sudo`` asks for a password (it has
  none: sudo can never succeed for it).

Both have no password (``*``: key-only logins, the sandbox's client key), a ``/bin/sh``
login without rc files, and can log in only through the ``become`` sshd, which listens on
the VPS's address alone. Their sudoers drop-in (``/etc/sudoers.d/supakong-sandbox-<index>``,
mode 0440) is checked with ``visudo -cf`` before it is installed. :func:`remove_become_users`
(called by ``sandbox_down(purge=True)``) deletes the users, their homes and the drop-in.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import yaml

from ..errors import DeployError
from .inventory import host_vars, write_sandbox_inventory
from .spec import CLIENT_KEY, SSH_USER, SandboxSpec
from .vps import sh, start_sshd

SUDOERS_DIR = Path("/etc/sudoers.d")


@dataclass(frozen=True)
class SshdVariant:
    """One more sshd of a sandbox VPS: its name, port, and ``sshd_config`` lines."""

    name: str
    port: int
    settings: tuple[str, ...]
    become: bool = False  # the sudo users log in here (and the sandbox's user does not)

    def alias(self, spec: SandboxSpec) -> str:
        """Its Host alias in the variants' ssh config."""
        return f"{spec.ssh_alias}-{self.name}"

    def host_name(self, spec: SandboxSpec) -> str:
        """Its inventory host name (``sandbox…``, within the allowlist fence)."""
        return f"{spec.name}-{self.name}"

    def pid_name(self) -> str:
        """Its pid, config and log files' stem (``sshd-<name>``)."""
        return f"sshd-{self.name}"


#: Settings seen on hardened servers (issue #17): a single session per connection and no
#: forwarding of any kind; two sessions; Unix-socket forwarding alone refused; one session.
HARDENED = (
    SshdVariant("ms1-nofwd", 2201, ("MaxSessions 1", "DisableForwarding yes")),
    SshdVariant("ms2-nofwd", 2202, ("MaxSessions 2", "DisableForwarding yes")),
    SshdVariant("no-streamlocal", 2203, ("AllowStreamLocalForwarding no",)),
    SshdVariant("ms1", 2204, ("MaxSessions 1",)),
)
BECOME = SshdVariant("become", 2210, (), become=True)


def sudo_user(spec: SandboxSpec) -> str:
    """The user with passwordless sudo and no docker group."""
    return f"supakong-sudo-{spec.index}"


def password_user(spec: SandboxSpec) -> str:
    """The user whose sudo asks for a password."""
    return f"supakong-pw-{spec.index}"


def sudoers_path(spec: SandboxSpec) -> Path:
    """This sandbox's sudoers drop-in (no dot in the name: sudo would skip it)."""
    return SUDOERS_DIR / f"supakong-sandbox-{spec.index}"


def sudoers_text(spec: SandboxSpec) -> str:
    """The drop-in's rules: one user like Ubuntu's ``ubuntu``, one that must type a password."""
    return (
        f"# supakong sandbox {spec.name}: deploy users of its `become` sshd only (see supakong/sandbox/variants.py)\n"
        f"{sudo_user(spec)} ALL=(ALL) NOPASSWD: ALL\n"
        f"{password_user(spec)} ALL=(ALL) ALL\n"
    )


def ensure_become_users(spec: SandboxSpec) -> None:
    """Create the two sudo users of this sandbox with the client key, and their sudoers rules."""
    if shutil.which("sudo") is None or shutil.which("visudo") is None:
        raise DeployError("sandbox: sudo is not installed; run `make deps` (apt-get install sudo)")
    for user in (sudo_user(spec), password_user(spec)):
        if sh(["id", "-u", user], check=False).returncode != 0:
            sh(["useradd", "--system", "--create-home", "--shell", "/bin/sh", user])
        sh(["usermod", "-p", "*", user])  # no password: key-only (sshd without PAM refuses "!")
        home = Path(f"~{user}").expanduser()
        for rc in (".bashrc", ".profile", ".bash_logout"):
            (home / rc).unlink(missing_ok=True)
        ssh_dir = home / ".ssh"
        ssh_dir.mkdir(mode=0o700, exist_ok=True)
        (ssh_dir / "authorized_keys").write_text(Path(f"{CLIENT_KEY}.pub").read_text())
        (ssh_dir / "authorized_keys").chmod(0o600)
        for path in (ssh_dir, ssh_dir / "authorized_keys"):
            shutil.chown(path, user, user)
    staged = sudoers_path(spec).with_name(f".{sudoers_path(spec).name}.new")  # sudo skips dot files
    staged.write_text(sudoers_text(spec))
    staged.chmod(0o440)
    try:
        sh(["visudo", "-cf", str(staged)])
        os.replace(staged, sudoers_path(spec))
    finally:
        staged.unlink(missing_ok=True)


def remove_become_users(spec: SandboxSpec) -> None:
    """Delete this sandbox's sudo users (with their homes) and their sudoers drop-in."""
    sudoers_path(spec).unlink(missing_ok=True)
    for user in (sudo_user(spec), password_user(spec)):
        if sh(["id", "-u", user], check=False).returncode == 0:
            sh(["userdel", "--remove", user], check=False)


def variants_ssh_config(spec: SandboxSpec) -> Path:
    """The ssh config with every variant's alias."""
    return spec.state_dir / "ssh_config_variants"


def write_variants_client_config(spec: SandboxSpec, variants: tuple[SshdVariant, ...]) -> Path:
    """known_hosts entries (``[address]:port``, the VPS's host key) and one alias per variant."""
    key = " ".join((spec.state_dir / "ssh_host_ed25519_key.pub").read_text().split()[:2])
    known = spec.state_dir / "known_hosts_variants"
    known.write_text("".join(f"[{spec.vps_addr}]:{v.port} {key}\n" for v in variants))
    user = f"  User {SSH_USER}\n"  # the become variant's users are named by the inventory
    blocks = [
        f"Host {v.alias(spec)}\n  HostName {spec.vps_addr}\n  Port {v.port}\n{'' if v.become else user}"
        f"  IdentityFile {CLIENT_KEY}\n  IdentitiesOnly yes\n"
        f"  UserKnownHostsFile {known}\n  StrictHostKeyChecking yes\n"
        for v in variants
    ]
    variants_ssh_config(spec).write_text("".join(blocks))
    return variants_ssh_config(spec)


def start_variants(spec: SandboxSpec, variants: tuple[SshdVariant, ...] = (*HARDENED, BECOME)) -> None:
    """Start the variants' sshds (idempotent; the sandbox must be up) and write their aliases."""
    if any(v.become for v in variants):
        ensure_become_users(spec)
    for v in variants:
        users = (sudo_user(spec), password_user(spec)) if v.become else (SSH_USER,)
        start_sshd(spec, port=v.port, name=v.pid_name(), users=users, settings=v.settings)
    write_variants_client_config(spec, variants)


def variant_host_vars(spec: SandboxSpec, variant: SshdVariant, **extra: object) -> dict[str, object]:
    """The inventory variables of a host that reaches ``spec``'s containers through ``variant``."""
    return {
        **host_vars(spec),
        "ansible_host": variant.alias(spec),
        "ssh_config_file": str(variants_ssh_config(spec)),
        **extra,
    }


def become_hosts(spec: SandboxSpec) -> dict[str, dict[str, object]]:
    """Inventory hosts of the ``become`` sshd: the sudo user with and without ansible_become,
    and the user whose sudo asks for a password, with ansible_become."""
    return {
        f"{spec.name}-become": variant_host_vars(spec, BECOME, ansible_user=sudo_user(spec), ansible_become=True),
        f"{spec.name}-sudo-user": variant_host_vars(spec, BECOME, ansible_user=sudo_user(spec)),
        f"{spec.name}-become-password": variant_host_vars(
            spec, BECOME, ansible_user=password_user(spec), ansible_become=True
        ),
    }


def write_variants_inventory(path: Path, spec: SandboxSpec) -> Path:
    """An inventory with ``spec``'s own host, one host per hardened variant and the become
    hosts, all reaching the same containers (the variants must be started)."""
    write_sandbox_inventory(path, [spec])
    doc = yaml.safe_load(path.read_text())
    hosts = doc["all"]["children"]["sandboxes"]["hosts"]
    hosts.update({v.host_name(spec): variant_host_vars(spec, v) for v in HARDENED})
    hosts.update(become_hosts(spec))
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path
