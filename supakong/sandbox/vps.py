"""The sandbox VPS itself: network namespace, veth link, sshd and dockerd.

Everything here runs locally as root. ``sshd`` runs inside the namespace with
``ip netns exec``; ``dockerd`` with ``nsenter --net`` because ``ip netns exec`` remounts
/sys and dockerd then fails ("Devices cgroup isn't mounted").
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from ..errors import DeployError
from .spec import CLIENT_KEY, SSH_USER, SandboxSpec

REQUIRED_TOOLS = ("ip", "nsenter", "sshd", "ssh-keygen", "dockerd", "docker", "busybox", "useradd")


def sh(argv: list[str], *, check: bool = True, input: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    """Run a local command; a failure raises :class:`DeployError` with its stderr."""
    proc = subprocess.run(argv, input=input, capture_output=True, check=False)
    if check and proc.returncode != 0:
        err = proc.stderr.decode(errors="replace").strip().splitlines()[-3:]
        raise DeployError(f"sandbox: `{' '.join(argv)}` exited {proc.returncode}: {' | '.join(err)}")
    return proc


def check_prerequisites() -> None:
    """Fail early, with the fix, when not root or a tool is missing."""
    if os.geteuid() != 0:
        raise DeployError("sandbox: must run as root (it creates a network namespace and a dockerd)")
    missing = [t for t in REQUIRED_TOOLS if shutil.which(t) is None and not Path(f"/usr/sbin/{t}").exists()]
    if missing:
        raise DeployError(f"sandbox: missing {', '.join(missing)}; run `make deps` (apt-get install ...)")


def ensure_network(spec: SandboxSpec) -> None:
    """Create the namespace and the veth link with the host and VPS addresses (idempotent)."""
    listed = sh(["ip", "netns", "list"]).stdout.decode().splitlines()
    if spec.netns not in {line.split()[0] for line in listed if line.strip()}:  # "sk-sandbox" ≠ "sk-sandbox-b01"
        sh(["ip", "netns", "add", spec.netns])
    if sh(["ip", "link", "show", spec.host_if], check=False).returncode != 0:
        sh(["ip", "link", "add", spec.host_if, "type", "veth", "peer", "name", "eth0", "netns", spec.netns])
        sh(["ip", "addr", "add", f"{spec.host_addr}/24", "dev", spec.host_if])
        sh(["ip", "-n", spec.netns, "addr", "add", f"{spec.vps_addr}/24", "dev", "eth0"])
    sh(["ip", "link", "set", spec.host_if, "up"])
    sh(["ip", "-n", spec.netns, "link", "set", "eth0", "up"])
    sh(["ip", "-n", spec.netns, "link", "set", "lo", "up"])


def remove_network(spec: SandboxSpec) -> None:
    """Delete the veth link and the namespace (the peer goes with the namespace)."""
    sh(["ip", "link", "del", spec.host_if], check=False)
    sh(["ip", "netns", "del", spec.netns], check=False)


def ensure_user() -> None:
    """Create the unprivileged SSH user (docker group, /bin/sh, no password, not locked)."""
    sh(["groupadd", "-f", "docker"])
    if sh(["id", "-u", SSH_USER], check=False).returncode != 0:
        sh(["useradd", "--system", "--create-home", "--shell", "/bin/sh", "--groups", "docker", SSH_USER])
    # "*" = no password login, but not locked ("!"), which sshd without PAM would refuse.
    sh(["usermod", "-p", "*", SSH_USER])
    home = Path(f"~{SSH_USER}").expanduser()
    for rc in (".bashrc", ".profile", ".bash_logout"):
        (home / rc).unlink(missing_ok=True)


def ensure_keys(spec: SandboxSpec) -> None:
    """The VPS's host key, the client key and the user's authorized_keys."""
    spec.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    host_key = spec.state_dir / "ssh_host_ed25519_key"
    if not host_key.exists():
        sh(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"{spec.name}-host", "-f", str(host_key)])
    if not CLIENT_KEY.exists():
        sh(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "supakong-sandbox", "-f", str(CLIENT_KEY)])
    ssh_dir = Path(f"~{SSH_USER}").expanduser() / ".ssh"
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    auth = ssh_dir / "authorized_keys"
    auth.write_text(Path(f"{CLIENT_KEY}.pub").read_text())
    auth.chmod(0o600)
    shutil.chown(ssh_dir, SSH_USER, SSH_USER)
    shutil.chown(auth, SSH_USER, SSH_USER)


def write_client_config(spec: SandboxSpec) -> None:
    """known_hosts with the VPS's real host key, and an ssh config alias using it strictly."""
    pub = (spec.state_dir / "ssh_host_ed25519_key.pub").read_text().split()
    spec.known_hosts_path.write_text(f"{spec.vps_addr} {pub[0]} {pub[1]}\n")
    spec.ssh_config_path.write_text(
        f"Host {spec.ssh_alias}\n"
        f"  HostName {spec.vps_addr}\n"
        "  Port 22\n"
        f"  User {SSH_USER}\n"
        f"  IdentityFile {CLIENT_KEY}\n"
        "  IdentitiesOnly yes\n"
        f"  UserKnownHostsFile {spec.known_hosts_path}\n"
        "  StrictHostKeyChecking yes\n"
    )


def sshd_config_text(
    spec: SandboxSpec, *, port: int, pidfile: Path, users: Sequence[str] = (SSH_USER,), settings: Sequence[str] = ()
) -> str:
    """The sandbox sshd's configuration: key-only logins for ``users``, the VPS's host key,
    ``DOCKER_HOST`` for the login; ``settings`` (sshd_config lines) come first, so that they
    win over the defaults below (sshd takes the first value of a keyword)."""
    first = "".join(f"{line}\n" for line in settings)
    return first + (
        f"ListenAddress {spec.vps_addr}:{port}\n"
        f"HostKey {spec.state_dir / 'ssh_host_ed25519_key'}\n"
        f"PidFile {pidfile}\n"
        "PubkeyAuthentication yes\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        "UsePAM no\nPermitRootLogin no\n"
        f"AllowUsers {' '.join(users)}\n"
        # The server's own environment for the login: the docker CLI (dial-stdio) finds
        # this VPS's engine, as it finds /var/run/docker.sock on a real server.
        f"SetEnv DOCKER_HOST=unix://{spec.docker_socket}\n"
        "Subsystem sftp internal-sftp\n"
        "LogLevel VERBOSE\nMaxSessions 100\nMaxStartups 200:30:400\n"
    )


def start_sshd(
    spec: SandboxSpec,
    *,
    port: int = 22,
    name: str = "sshd",
    users: Sequence[str] = (SSH_USER,),
    settings: Sequence[str] = (),
) -> None:
    """Start OpenSSH's sshd inside the namespace, listening on the VPS address (``name``:
    its pid file, config and log, for other sshds of the same VPS on other ports)."""
    pidfile = spec.run_dir / f"{name}.pid"
    if _alive(pidfile):
        return
    spec.run_dir.mkdir(parents=True, exist_ok=True)
    Path("/run/sshd").mkdir(exist_ok=True)
    config = spec.state_dir / f"{name}_config"
    config.write_text(sshd_config_text(spec, port=port, pidfile=pidfile, users=users, settings=settings))
    sh(["/usr/sbin/sshd", "-t", "-f", str(config)])  # a bad setting fails here, with sshd's message
    log = spec.state_dir / f"{name}.log"
    sh(["ip", "netns", "exec", spec.netns, "/usr/sbin/sshd", "-f", str(config), "-E", str(log)])
    _wait_for_port(spec.vps_addr, port, name)


def start_dockerd(spec: SandboxSpec) -> None:
    """Start the VPS's own Docker Engine in its network namespace."""
    pidfile = spec.run_dir / "docker.pid"
    if _alive(pidfile) and spec.docker_socket.exists():
        return
    spec.run_dir.mkdir(parents=True, exist_ok=True)
    spec.docker_data_root.mkdir(parents=True, exist_ok=True)
    daemon_json = spec.state_dir / "daemon.json"
    daemon_json.write_text("{}\n")  # keep the host's /etc/docker/daemon.json out of it
    log = (spec.state_dir / "dockerd.log").open("ab")
    subprocess.Popen(
        [
            "nsenter",
            f"--net=/var/run/netns/{spec.netns}",
            "dockerd",
            "--config-file",
            str(daemon_json),
            "--data-root",
            str(spec.docker_data_root),
            "--exec-root",
            str(spec.run_dir / "exec"),
            "--pidfile",
            str(pidfile),
            "-H",
            f"unix://{spec.docker_socket}",
            "--group",
            "docker",
            "--iptables=false",
            "--ip-masq=false",
            "--bridge=none",
            "--storage-driver=vfs",
        ],
        stdout=log,
        stderr=log,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    _wait_for_unix_socket(spec.docker_socket, "dockerd", spec.state_dir / "dockerd.log")


def stop_daemons(spec: SandboxSpec) -> None:
    """Stop dockerd (and with it the containers) and sshd."""
    _terminate(spec.run_dir / "docker.pid", timeout=20.0)
    for pidfile in sorted(spec.run_dir.glob("sshd*.pid")):  # the VPS's sshd and its variants
        _terminate(pidfile, timeout=20.0)


def process_running(pid: int) -> bool:
    """Whether ``pid`` is a live process. A zombie (exited, not yet reaped) is not: if it is
    our own child it is reaped here, so a daemon we started ourselves reads as stopped once it
    has exited instead of lingering in /proc forever."""
    try:
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass  # not our child: whoever started it reaps it
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            state = handle.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def wait_until_stopped(pid: int, timeout: float) -> bool:
    """Poll until ``pid`` is no longer running; False if it still is after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while process_running(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def _alive(pidfile: Path) -> bool:
    try:
        return process_running(int(pidfile.read_text().strip()))
    except (OSError, ValueError):
        return False


def _terminate(pidfile: Path, timeout: float) -> None:
    try:
        pid = int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    if not wait_until_stopped(pid, timeout):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        wait_until_stopped(pid, 5.0)


def _wait_for_port(addr: str, port: int, what: str, timeout: float = 15.0) -> None:
    deadline, delay = time.monotonic() + timeout, 0.02
    while time.monotonic() < deadline:
        try:
            socket.create_connection((addr, port), timeout=1).close()
            return
        except OSError:
            time.sleep(delay)
            delay = min(delay * 2, 0.5)
    raise DeployError(f"sandbox: {what} did not listen on {addr}:{port} within {timeout:.0f}s")


def _wait_for_unix_socket(path: Path, what: str, log: Path, timeout: float = 60.0) -> None:
    deadline, delay = time.monotonic() + timeout, 0.05
    while time.monotonic() < deadline:
        if path.exists():
            try:
                with socket.socket(socket.AF_UNIX) as s:
                    s.connect(str(path))
                    s.sendall(b"GET /_ping HTTP/1.0\r\n\r\n")
                    if s.recv(64).startswith(b"HTTP/1.0 200"):
                        return
            except OSError:
                pass
        time.sleep(delay)
        delay = min(delay * 2, 0.5)
    raise DeployError(f"sandbox: {what} did not answer on {path} within {timeout:.0f}s; see {log}")
