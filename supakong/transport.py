"""One SSH connection per host: commands, SFTP and the Docker Engine API share it.

The connection is a :class:`fabric.Connection` (so ``~/.ssh/config`` or the inventory's
``ssh_config_file`` decides HostName, User, Port, IdentityFile, ProxyJump…), with one
difference from Fabric's default: host keys are verified. Fabric accepts any key
(``AutoAddPolicy``, fabric#1804); supakong loads ``UserKnownHostsFile`` and
``GlobalKnownHostsFile`` and refuses unknown or changed keys unless the operator opts in
with ``accept_new`` (OpenSSH's ``StrictHostKeyChecking accept-new``).

The channels a run needs first (a session for the look's command, a streamlocal channel to
the Docker Engine) are asked for right behind the authentication request, in the same
flight: RFC 4252 §5.1 has the server pass "any non-authentication messages sent by the
client after the request that resulted in SSH_MSG_USERAUTH_SUCCESS" to the connection
service, so they open with the authentication's own round trip instead of one after it.
When that first request is not the one that succeeds (another key is tried next), the
server dropped them as unexpected and they are opened the usual way.

Hardened servers refuse some of these: a session beyond ``MaxSessions`` teaches the
connection its limit once (:mod:`supakong.sessions`), and from then on sessions open as they
free up; a refused streamlocal channel sends the engine through ``docker system dial-stdio``
sessions, which move to a second connection when the server allows one session per
connection. Under ``ansible_become`` commands and the engine go through ``sudo -n``
(:mod:`supakong.become`).
"""

from __future__ import annotations

import functools
import logging
import os
import select
import shlex
import socket
import threading
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fabric
import paramiko
from paramiko.message import Message

from . import fence
from .become import Become, as_become, dial_stdio_argv, sudo_refusal, sudo_refusal_message
from .engine import EngineClient, EngineRoute, engine_opener
from .errors import TransportError
from .inventory import HostConfig, check_allowed
from .secrets import mask
from .sessions import RETRY_FOR, SessionBudget, max_sessions_message, sessions_refused_message
from .sshchannel import SESSION, STREAMLOCAL, PendingChannel, request_channel, send_eof, streamlocal_payload

# paramiko logs refused channel opens (e.g. the streamlocal probe of supakong.dockerssh
# falling back to dial-stdio) as errors; supakong reports failures itself, masked.
logging.getLogger("paramiko").addHandler(logging.NullHandler())

DEFAULT_KNOWN_HOSTS = "~/.ssh/known_hosts ~/.ssh/known_hosts2"
DEFAULT_GLOBAL_KNOWN_HOSTS = "/etc/ssh/ssh_known_hosts /etc/ssh/ssh_known_hosts2"


@dataclass(frozen=True)
class CommandResult:
    """What a remote command returned."""

    argv: tuple[str, ...]
    exit_code: int
    stdout: bytes
    stderr: bytes

    @property
    def text(self) -> str:
        """Standard output decoded as UTF-8 (replacing undecodable bytes)."""
        return self.stdout.decode("utf-8", "replace")

    def stderr_tail(self, lines: int = 5) -> str:
        """The last ``lines`` lines of standard error, masked, on one line."""
        tail = self.stderr.decode("utf-8", "replace").strip().splitlines()[-lines:]
        return mask(" | ".join(tail))


def known_hosts_files(ssh_config: Any) -> tuple[list[Path], list[Path]]:
    """The user and global known_hosts files an ssh config (one host's) names."""
    user = ssh_config.get("userknownhostsfile", DEFAULT_KNOWN_HOSTS)
    glob = ssh_config.get("globalknownhostsfile", DEFAULT_GLOBAL_KNOWN_HOSTS)
    return (
        [Path(os.path.expanduser(p)) for p in _split_paths(user)],
        [Path(os.path.expanduser(p)) for p in _split_paths(glob)],
    )


def install_host_key_policy(client: paramiko.SSHClient, ssh_config: Any, accept_new: bool) -> list[Path]:
    """Load the known_hosts files ``ssh_config`` names into ``client`` and refuse an unknown
    key (remember it with ``accept_new`` or ``StrictHostKeyChecking accept-new``/``no``); a
    changed key is always refused. For the final host and every ProxyJump hop alike.
    Returns the user known_hosts files (for the messages)."""
    user_files, global_files = known_hosts_files(ssh_config)
    for path in global_files:
        if path.is_file():
            client.load_system_host_keys(str(path))
    for path in user_files:
        if path.is_file():
            client.load_host_keys(str(path))
    strict = str(ssh_config.get("stricthostkeychecking", "yes")).lower()
    if accept_new or strict in ("accept-new", "no", "off"):
        client.set_missing_host_key_policy(_AcceptNewPolicy(user_files[0]))
    else:
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
    return user_files


def unknown_key_message(hostname: str, port: object, known: Sequence[Path]) -> str:
    """Why an unknown host key is refused, and how to check and add it."""
    files = " ".join(str(p) for p in known)
    scan = f"ssh-keyscan -p {port} {hostname}" if str(port) != "22" else f"ssh-keyscan {hostname}"
    return (
        f"host key is unknown (looked in {files}); refusing to"
        f" connect. Check the fingerprint on the server (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub)"
        f" against `{scan} | ssh-keygen -lf -`, then add it: `{scan} >> {known[0]}`"
        " (or pass --accept-new to trust it on first use)"
    )


def changed_key_message(exc: paramiko.BadHostKeyException, hostname: str) -> str:
    """Why a changed host key is refused."""
    got = exc.key.get_fingerprint().hex()
    return (
        f"HOST KEY HAS CHANGED (got {exc.key.get_name()} {got});"
        " refusing to connect: this may be an attack. If the server was reinstalled, remove the"
        f" old key with `ssh-keygen -R {hostname}` and verify the new one."
    )


class _AcceptNewPolicy(paramiko.MissingHostKeyPolicy):
    """OpenSSH's ``accept-new``: remember an unknown key, still refuse a changed one."""

    def __init__(self, known_hosts: Path) -> None:
        self.known_hosts = known_hosts

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        # OpenSSH's own: ~/.ssh is the user's alone (0700, whatever the umask).
        if not self.known_hosts.parent.exists():
            self.known_hosts.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            self.known_hosts.parent.chmod(0o700)
        with self.known_hosts.open("a", encoding="utf-8") as fh:
            fh.write(f"{hostname} {key.get_name()} {key.get_base64()}\n")
        client.get_host_keys().add(hostname, key.get_name(), key)


#: The channels a connection can ask for with its authentication (see the module's doc).
SESSION_CHANNEL = "session"
ENGINE_CHANNEL = "engine"
_MSG_USERAUTH_REQUEST = 50


def _answered_at_once(request: bytes) -> bool:
    """Does this USERAUTH_REQUEST get SUCCESS or FAILURE as its very next answer? A signed
    publickey request and a password do; a publickey query, keyboard-interactive and GSSAPI
    exchange more messages first, and a success after them would come after the early
    requests were already dropped as unexpected."""
    m = Message(request)
    m.get_byte()
    m.get_text()  # user
    m.get_text()  # service
    method = m.get_text()
    if method == "publickey":
        return m.get_boolean()  # with a signature (not a query)
    return method == "password"


def connection_ended(sent_early: bool, active: bool, failure: BaseException) -> bool:
    """After early channel requests, did ``failure`` come from the server ending the
    connection? Either paramiko's own thread saw the end (``active`` is False), or this
    thread saw it first, writing the next authentication request to a closed socket
    (EOFError, a reset): paramiko's thread may not have read the end yet."""
    return sent_early and (not active or isinstance(failure, EOFError | ConnectionError))


@dataclass(frozen=True)
class _EarlyChannel:
    kind: str
    payload: Callable[[Message], None] | None
    what: str


class _Transport(paramiko.Transport):
    """paramiko's transport, preferring AES-GCM when the server offers it (OpenSSH has since
    6.2): an AEAD cipher has no separate MAC, which paramiko otherwise computes with a fresh
    HMAC object and compares byte by byte in Python for every packet it sends and receives.
    The other ciphers stay, in paramiko's order, for servers without GCM.

    It also sends the CHANNEL_OPENs of ``early`` right after the first authentication
    request (see the module's doc): :meth:`take_early` hands them out."""

    _preferred_ciphers = tuple(
        sorted(paramiko.Transport._preferred_ciphers, key=lambda c: "-gcm@" not in c)  # type: ignore[attr-defined]
    )

    def __init__(self, sock: Any, *args: Any, early: Sequence[_EarlyChannel] = (), **kwargs: Any) -> None:
        super().__init__(sock, *args, **kwargs)
        self._early = tuple(early)
        self._requested: dict[str, PendingChannel] = {}
        self.auth_requests = 0
        self.sent_early = False
        #: what the server allows on this connection, learned from its refusals
        self.sessions = SessionBudget()
        self.refused_kinds: set[str] = set()  # channel kinds it refused for good (direct-tcpip)

    def _send_message(self, data: Message) -> None:
        super()._send_message(data)  # type: ignore[misc]  # private in paramiko's stubs
        if not self._early or self.is_authenticated():
            return
        raw = data.asbytes()
        if raw[:1] == bytes([_MSG_USERAUTH_REQUEST]):
            self.auth_requests += 1
            if self.auth_requests == 1 and _answered_at_once(raw):
                # paramiko's thread, between sending the request and reading its answer
                self.sent_early = True
                for early in self._early:
                    self._requested[early.kind] = request_channel(
                        self, early.kind, early.payload, what=early.what, from_transport_thread=True
                    )

    def early_pending(self, kind: str) -> bool:
        """Is a channel of ``kind`` asked for with the authentication still to be taken?"""
        return kind in self._requested and self.auth_requests == 1

    def take_early(self, kind: str) -> PendingChannel | None:
        """The channel of ``kind`` asked for with the authentication, once: None if there is
        none, or if the server will never answer it (the request it followed was not the one
        that succeeded: the server saw it before authentication and dropped it)."""
        pending = self._requested.pop(kind, None)
        if pending is not None and self.auth_requests != 1:
            pending.abandon()
            return None
        return pending


def _fabric_config(ssh_config_file: str | None) -> fabric.Config:
    """Fabric's configuration (its config files and the parsed ssh config), built once per
    ssh config file (and version of it) and shared, read-only, by every host's connection,
    as Fabric's own ``ThreadingGroup`` shares one; building it took ~10 ms of CPU per host."""
    try:
        version = os.stat(ssh_config_file).st_mtime_ns if ssh_config_file else 0
    except OSError:
        version = -1
    return _cached_fabric_config(ssh_config_file, version)


@functools.lru_cache(maxsize=64)
def _cached_fabric_config(ssh_config_file: str | None, version: int) -> fabric.Config:
    return fabric.Config(overrides={"load_ssh_configs": True}, runtime_ssh_path=ssh_config_file)


class _Connection(fabric.Connection):
    """:class:`fabric.Connection` with two costs of its constructor removed, which every
    host pays (building one took 0.79 ms of CPU, now 0.26 ms):

    - Invoke's ``DataProxy.__setattr__`` decides between "attribute" and "config key" with
      ``key in dir(self)``, a sorted list of ~200 names, for each of the constructor's 15
      assignments: the same question is answered here from the instance and its class.
    - ``inline_ssh_env`` is not a class attribute of Fabric's Connection, so its
      assignment wrote the value into the *config*, which then merged all of its layers
      again; that config is shared by every host's connection (see :func:`_fabric_config`),
      so threads were rewriting it concurrently. Declared here, it is the connection's own
      attribute, as Fabric reads it (``self.inline_ssh_env``), and the shared config is
      never written.
    """

    inline_ssh_env: bool | None = None
    #: The inventory host this connection (or ProxyJump hop) is for, named by the fence.
    fence_name: str = ""
    #: OpenSSH's ``StrictHostKeyChecking accept-new`` for this connection and every hop.
    accept_new: bool = False
    #: For a ProxyJump hop, its name in the ssh config (empty for the final host).
    hop: str = ""

    def __init__(self, *args: Any, fence_name: str, accept_new: bool = False, hop: str = "", **kwargs: Any) -> None:
        object.__setattr__(self, "fence_name", fence_name)  # get_gateway() needs them already
        object.__setattr__(self, "accept_new", accept_new)
        object.__setattr__(self, "hop", hop)
        super().__init__(*args, **kwargs)

    def __setattr__(self, key: str, value: Any) -> None:
        if key in self.__dict__ or hasattr(type(self), key):
            object.__setattr__(self, key, value)
        else:  # a config key, as Invoke's DataProxy does it
            super().__setattr__(key, value)

    def open(self) -> Any:
        """Fabric's open, with the socket dialled through :func:`supakong.fence.connect`
        (the allowlist's check of the resolved address) and TCP_NODELAY set: without it
        every small SSH request waits ~40 ms for a delayed ACK (Nagle)."""
        if self.is_connected:
            return None
        if not self.gateway:
            what = f"host {self.fence_name!r}"
            sock = fence.connect(what, self.host, int(self.port), self.connect_timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.connect_kwargs["sock"] = sock
        if not self.hop:
            return super().open()
        # Fabric gives a hop AutoAddPolicy and no known_hosts: verify it as the final host is.
        known = install_host_key_policy(self.client, self.ssh_config, self.accept_new)
        try:
            return super().open()
        except paramiko.BadHostKeyException as exc:
            raise TransportError(f"{self._hop_name()}: {changed_key_message(exc, self.host)}") from None
        except paramiko.SSHException as exc:
            if "not found in known_hosts" not in str(exc):
                raise
            raise TransportError(f"{self._hop_name()}: {unknown_key_message(self.host, self.port, known)}") from None

    def _hop_name(self) -> str:
        return f"{self.fence_name}: jump host {self.hop} ({self.host}:{self.port})"

    def get_gateway(self) -> Any:
        """Fabric's gateway, with each ProxyJump hop one of these (so its own dial is
        fenced too), built as Fabric builds them."""
        if "proxyjump" not in self.ssh_config:
            return super().get_gateway()
        gateway = None
        for hop in reversed(self.ssh_config["proxyjump"].split(",")):
            if self.derive_shorthand(hop)["host"] == self.host:
                return None  # we appear to be our own proxy (ssh config wildcards)
            kwargs: dict[str, Any] = {
                "config": self.config.clone(),
                "fence_name": self.fence_name,
                "accept_new": self.accept_new,
                "hop": hop,
            }
            if gateway is not None:
                kwargs["gateway"] = gateway
            gateway = _Connection(hop, **kwargs)
        return gateway

    def open_gateway(self) -> Any:
        """The socket through the gateway, once the fence agreed to what the gateway dials
        for us: a ProxyCommand cannot be checked; a jump host dials ``host:port``."""
        what = f"host {self.fence_name!r}"
        if isinstance(self.gateway, str):
            fence.check_proxy_command(what, self.gateway)
        else:
            fence.check_unresolved(f"{what} (through the jump host {self.gateway.host})", self.host, int(self.port))
        return super().open_gateway()


class HostConnection:
    """The one SSH connection supakong keeps to a host for a whole run."""

    def __init__(
        self,
        host: HostConfig,
        *,
        accept_new: bool = False,
        connect_timeout: float = 10.0,
        early: Collection[str] = (SESSION_CHANNEL, ENGINE_CHANNEL),
    ):
        """``early``: the channels to ask for with the authentication (see the module's
        doc), the ones the caller is going to use first: a session for its first command
        (:data:`SESSION_CHANNEL`), a channel to the Docker Engine (:data:`ENGINE_CHANNEL`)."""
        self.host = host
        self.accept_new = accept_new
        self.connect_timeout = connect_timeout
        self._early = self._early_channels(early)
        self._transport_made: _Transport | None = None
        self._fabric = self._make_fabric_connection()
        self._docker: Any = None
        self._engine: EngineClient | None = None
        self._route: EngineRoute | None = None
        self._route_transport: paramiko.Transport | None = None
        self._route_lock = threading.Lock()  # the look inspects from worker threads
        self._reserved: list[PendingChannel] = []  # sessions asked for ahead (reserve_session)
        self._reserved_lock = threading.Lock()
        self.commands_run = 0
        self.become = Become(host.become_user) if host.become else None
        #: a second connection for dial-stdio channels, once the server allows one session only
        self._engine_conn: HostConnection | None = None
        self._engine_conn_lock = threading.Lock()
        self._engine_owner: HostConnection = self  # whose EngineClient keeps channels here
        self._own_budget = SessionBudget()  # for a transport not of our making

    # -- connection -------------------------------------------------------------------
    def _make_fabric_connection(self) -> _Connection:
        config = _fabric_config(str(self.host.ssh_config_file) if self.host.ssh_config_file else None)
        connect_kwargs: dict[str, Any] = {"allow_agent": True, "transport_factory": self._make_transport}
        if self.host.identity_file:
            connect_kwargs["key_filename"] = [str(self.host.identity_file)]
        return _Connection(
            self.host.ssh_host,
            user=self.host.ssh_user,
            port=self.host.ssh_port,
            config=config,
            connect_timeout=self.connect_timeout,
            connect_kwargs=connect_kwargs,
            fence_name=self.host.name,
            accept_new=self.accept_new,
        )

    def _early_channels(self, names: Collection[str]) -> tuple[_EarlyChannel, ...]:
        unknown = set(names) - {SESSION_CHANNEL, ENGINE_CHANNEL}
        if unknown:
            raise ValueError(f"unknown early channels: {sorted(unknown)}")
        channels = []
        if SESSION_CHANNEL in names:
            channels.append(_EarlyChannel(SESSION, None, "a session"))
        if ENGINE_CHANNEL in names:
            socket_path = self.host.docker_socket
            channels.append(_EarlyChannel(STREAMLOCAL, streamlocal_payload(socket_path), socket_path))
        return tuple(channels)

    def _make_transport(self, sock: Any, *args: Any, **kwargs: Any) -> _Transport:
        """paramiko's ``transport_factory``: our transport, remembered for :meth:`open`."""
        self._transport_made = _Transport(sock, *args, early=self._early, **kwargs)
        self._transport_made.sessions.reclaimers.append(self._close_idle_engine_channels)
        return self._transport_made

    def _close_idle_engine_channels(self) -> None:
        """The budget's reclaimer: kept engine channels (sessions, with dial-stdio) that wait
        idle give their session back to whoever waits for one."""
        engine = self._engine_owner._engine
        if engine is not None:
            engine.close()

    @property
    def user(self) -> str:
        """The SSH login (after ssh config resolution)."""
        return str(self._fabric.user)

    @property
    def address(self) -> str:
        """``host:port`` as actually dialled (after ssh config resolution)."""
        hostname = self._fabric.ssh_config.get("hostname", self._fabric.host)
        return f"{hostname}:{self._fabric.port}"

    def known_hosts_files(self) -> tuple[list[Path], list[Path]]:
        """The user and global known_hosts files this host's ssh config names."""
        return known_hosts_files(self._fabric.ssh_config)

    def _install_host_key_policy(self) -> None:
        install_host_key_policy(self._fabric.client, self._fabric.ssh_config, self.accept_new)

    def open(self) -> HostConnection:
        """Connect and authenticate, verifying the host key; idempotent."""
        if self._fabric.is_connected:
            return self
        check_allowed(self.host)  # by name; each address is checked where it is dialled
        self._install_host_key_policy()
        try:
            try:
                self._connect()
            except (paramiko.SSHException, EOFError, OSError) as exc:
                if not self._dropped_for_early_channels(exc):
                    raise
                self._early = ()  # a server that ends the connection over them: connect without
                self._connect()
        except paramiko.BadHostKeyException as exc:
            raise TransportError(self._changed_key_message(exc)) from None
        except paramiko.SSHException as exc:
            if "not found in known_hosts" in str(exc):
                raise TransportError(self._unknown_key_message()) from None
            raise TransportError(f"{self.host.name} ({self.address}): SSH failed: {mask(str(exc))}") from None
        except EOFError:
            raise TransportError(f"{self.host.name} ({self.address}): the server closed the connection") from None
        except (TimeoutError, OSError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc) or "timed out"
            raise TransportError(f"{self.host.name} ({self.address}): cannot connect: {reason}") from None
        return self

    def _connect(self) -> None:
        self._fabric.open()  # dials through the fence (see _Connection.open)

    def _dropped_for_early_channels(self, failure: BaseException) -> bool:
        """Did the server end the connection after a failed first authentication request
        that early channel requests followed? OpenSSH answers them "unimplemented" and goes
        on; a stricter server may disconnect, and then the next key was never tried."""
        made = self._transport_made
        return made is not None and connection_ended(made.sent_early, made.is_active(), failure)

    def _unknown_key_message(self) -> str:
        hostname, port = self.address.rsplit(":", 1)
        message = unknown_key_message(hostname, port, self.known_hosts_files()[0])
        return f"{self.host.name} ({self.address}): {message}"

    def _changed_key_message(self, exc: paramiko.BadHostKeyException) -> str:
        return f"{self.host.name} ({self.address}): {changed_key_message(exc, self.address.rsplit(':', 1)[0])}"

    @property
    def transport(self) -> paramiko.Transport:
        """The open paramiko transport (opens the connection on first use)."""
        self.open()
        transport = self._fabric.transport
        if transport is None or not transport.is_active():
            raise TransportError(f"{self.host.name}: SSH connection is closed")
        return transport

    def close(self) -> None:
        """Close the Docker clients, SFTP and the SSH connection(s)."""
        if self._engine is not None:
            self._engine.close()
        if self._engine_conn is not None:
            self._engine_conn.close()
        if self._docker is not None:
            try:
                self._docker.close()
            except Exception:  # noqa: BLE001 - closing is best effort
                pass
        self._fabric.close()

    def __enter__(self) -> HostConnection:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- commands ---------------------------------------------------------------------
    def run(
        self,
        argv: Sequence[str],
        *,
        stdin: bytes | None = None,
        check: bool = True,
        timeout: float = 120.0,
    ) -> CommandResult:
        """Run ``argv`` on the host (quoted with :func:`shlex.join`, never interpolated).

        With ``check``, a non-zero exit raises :class:`TransportError` naming the command,
        the exit code and the tail of stderr.
        """
        result = self._complete(self._exec(argv, timeout), argv, stdin, timeout)
        self.commands_run += 1
        self._raise_if_sudo_refused(result)
        return self._checked(result) if check else result

    def start(self, argv: Sequence[str], *, until: bytes, timeout: float = 120.0) -> tuple[bytes, HeldCommand | None]:
        """Start ``argv`` and read its stdout up to the line ``until``; the command then
        waits for one line on stdin (see :class:`HeldCommand`). Returns the output before
        that line and the held command, or all the output and None if it ended first."""
        marker = until + b"\n"
        channel = self._exec(argv, timeout)
        try:
            out = bytearray()
            deadline = time.monotonic() + timeout
            while marker not in out:
                while channel.recv_ready():
                    out += channel.recv(65536)
                if marker in out or (channel.eof_received and not channel.recv_ready()):
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"no {until.decode()!r} after {timeout:.0f}s")
                select.select([channel], [], [], min(remaining, 1.0))
        except (TimeoutError, paramiko.SSHException, OSError) as exc:
            channel.close()
            raise self._failed(argv, exc) from None
        self.commands_run += 1
        head, found, _ = bytes(out).partition(marker)
        if not found:  # it ended first: its exit code and stderr say whether that is a failure
            result = self._complete(channel, argv, None, timeout)
            self._raise_if_sudo_refused(result)
            self._checked(CommandResult(result.argv, result.exit_code, bytes(out) + result.stdout, result.stderr))
            return bytes(out) + result.stdout, None
        return head, HeldCommand(self, channel, tuple(argv))

    def reserve_session(self) -> None:
        """Ask for a session now, without waiting for it, for the next command: its opening
        overlaps whatever the caller does meanwhile, and that command then costs one round
        trip less. Best effort (a closed connection: the command opens its own), and never
        once the server has refused a session (MaxSessions): one held idle may starve others."""
        try:
            if self._budget().constrained:
                return
            pending = request_channel(self.transport, SESSION, what="a session")
        except (TransportError, paramiko.SSHException):
            return
        with self._reserved_lock:
            self._reserved.append(pending)

    def _reserved_channel(self) -> paramiko.Channel | None:
        """A session from :meth:`reserve_session` on the current transport, if one opened."""
        while True:
            with self._reserved_lock:
                if not self._reserved:
                    return None
                pending = self._reserved.pop(0)
            if pending.transport is not self.transport:
                continue  # asked for on a connection lost since
            try:
                return pending.wait(self.connect_timeout)
            except paramiko.ChannelException:  # refused: the server's session limit, learned
                self._budget().refused(self._pending_sessions())
                return None
            except paramiko.SSHException:  # never answered: the usual way says why
                return None

    def _budget(self) -> SessionBudget:
        transport = self.transport
        return transport.sessions if isinstance(transport, _Transport) else self._own_budget

    def _pending_sessions(self) -> int:
        """Sessions asked for ahead (with the authentication, or reserved) and not taken yet:
        the server counts them as open."""
        transport = self.transport
        with self._reserved_lock:
            reserved = sum(1 for pending in self._reserved if pending.transport is transport)
        early = isinstance(transport, _Transport) and transport.early_pending(SESSION)
        return reserved + int(early)

    def _open_session(self, *, ahead: bool = True, shared: bool = True) -> paramiko.Channel:
        """A session channel within what the server allows: the one asked for with the
        authentication or reserved (``ahead``), else a new one. A refusal teaches the limit
        (:class:`~supakong.sessions.SessionBudget`); from then on a session opens when one is
        free. With ``shared`` False (the engine's dial-stdio sessions), a limit of one raises
        :class:`_SingleSession` instead of waiting for the commands' session."""
        budget = self._budget()
        if ahead and (channel := self._early_channel(SESSION) or self._reserved_channel()):
            return budget.track(channel)
        deadline, delay = time.monotonic() + RETRY_FOR, 0.01
        while True:
            if not shared and budget.capacity == 1:
                raise _SingleSession()
            if not budget.wait_for_slot(deadline, self._pending_sessions(), self._sync):
                raise TransportError(max_sessions_message(self.host.name, self.address, budget.capacity, RETRY_FOR))
            transport = self.transport
            try:
                return budget.track(transport.open_session(timeout=self.connect_timeout), slot=True)
            except paramiko.ChannelException:
                budget.give_back()
                budget.refused(self._pending_sessions())
            except paramiko.SSHException:
                budget.give_back()
                if not transport.is_active():
                    raise
                # paramiko keeps one refusal per connection: of two refused at once, one
                # thread gets "Unable to open channel." (a timeout too: tried again, in time)
                budget.refused(self._pending_sessions())
            if time.monotonic() >= deadline:
                if budget.capacity is None:
                    raise TransportError(sessions_refused_message(self.host.name, self.address))
                raise TransportError(max_sessions_message(self.host.name, self.address, budget.capacity, RETRY_FOR))
            time.sleep(delay)  # a session closed on our side may still count on the server's
            delay = min(delay * 2, 0.2)

    def _sync(self) -> None:
        """One round trip to the server (OpenSSH's keepalive: a global request it answers
        with a failure): everything sent before it has been handled when the answer is back."""
        try:
            self.transport.global_request("keepalive@openssh.com", wait=True)
        except (paramiko.SSHException, OSError):
            pass  # the open that follows names the problem

    def _exec(self, argv: Sequence[str], timeout: float) -> paramiko.Channel:
        """A new session running ``argv`` (through sudo under become)."""
        try:
            channel = self._open_session()
            channel.settimeout(timeout)
            channel.exec_command(shlex.join(as_become(argv, self.become)))
        except (paramiko.SSHException, OSError) as exc:
            raise self._failed(argv, exc) from None
        return channel

    def _early_channel(self, kind: str) -> paramiko.Channel | None:
        """The channel of ``kind`` asked for with the authentication, if there is one and
        the server opened it (else the caller opens one the usual way)."""
        pending = self._early_request(kind)
        if pending is None:
            return None
        try:
            return pending.wait(self.connect_timeout)
        except paramiko.SSHException:  # refused, or never answered: the usual way says why
            return None

    def _early_request(self, kind: str) -> PendingChannel | None:
        transport = self.transport
        return transport.take_early(kind) if isinstance(transport, _Transport) else None

    def _complete(
        self, channel: paramiko.Channel, argv: Sequence[str], stdin: bytes | None, timeout: float
    ) -> CommandResult:
        """Send ``stdin`` and EOF to a started command, read all its output and its exit code."""
        try:
            if stdin:
                try:
                    channel.sendall(stdin)
                except OSError:
                    if not channel.exit_status_ready():
                        raise  # the connection is gone, not just the command
                    # else the command ended without reading all of it: its status says why
            send_eof(channel)
            stdout, stderr = _drain(channel, timeout)
            code = channel.recv_exit_status()
        except (TimeoutError, paramiko.SSHException, OSError) as exc:
            raise self._failed(argv, exc) from None
        finally:
            channel.close()
        return CommandResult(tuple(argv), code, stdout, stderr)

    def _raise_if_sudo_refused(self, result: CommandResult) -> None:
        """Under become, sudo itself failing (a password asked for, no rule) is one line
        naming the host, the user and the fix, whatever command it was."""
        if self.become is None or result.exit_code not in (1, 127):
            return
        why = sudo_refusal(result.stderr)
        if why is not None:
            raise TransportError(sudo_refusal_message(self.host.name, self.user, self.become, why))

    def _checked(self, result: CommandResult) -> CommandResult:
        """``result``, or a :class:`TransportError` naming the command, exit code and stderr."""
        if result.exit_code != 0:
            command = mask(shown(result.argv))
            raise TransportError(
                f"{self.host.name}: `{command}` exited {result.exit_code}: {result.stderr_tail() or 'no output'}"
            )
        return result

    def _failed(self, argv: Sequence[str], exc: BaseException) -> TransportError:
        return TransportError(f"{self.host.name}: `{mask(shown(argv))}` failed: {mask(str(exc)) or 'timed out'}")

    def sftp(self) -> paramiko.SFTPClient:
        """The SFTP client on this connection (opened once, then reused)."""
        transport = self.transport
        stale = self._fabric._sftp
        if stale is not None and stale.get_channel().get_transport() is not transport:
            self._fabric._sftp = None  # the connection was lost and opened again: a new session
        try:
            return self._fabric.sftp()
        except (paramiko.SSHException, OSError) as exc:
            raise TransportError(f"{self.host.name}: cannot open SFTP: {mask(str(exc))}") from None

    def engine_route(self) -> EngineRoute:
        """How this connection reaches the Docker Engine (found once per SSH transport)."""
        transport = self.transport
        with self._route_lock:
            if self._route is None or self._route_transport is not transport:
                # First use, or the connection was lost and opened again: channels of the old
                # transport are gone, so the route (and the clients on it) are made again.
                self._route = engine_opener(
                    transport,
                    host_name=self.host.name,
                    socket_path=self.host.docker_socket,
                    requested=self._early_request(STREAMLOCAL),
                    open_session=self._engine_session,
                    dial_argv=dial_stdio_argv(self.host.docker_socket, self.become),
                    explain=self._explain_engine_failure,
                )
                self._route_transport = transport
                self._engine = self._docker = None
            return self._route

    def _engine_session(self) -> paramiko.Channel:
        """A session for a dial-stdio channel to the engine: on this connection, or, once the
        server turned out to allow a single session per connection (MaxSessions 1), which a
        command may hold for the whole run (the look, held for the audit line), on a second
        connection of the engine's own."""
        try:
            return self._open_session(ahead=False, shared=False)
        except _SingleSession:
            return self._engine_connection()._open_session()

    def _engine_connection(self) -> HostConnection:
        """The second connection (opened once): the same host, verified the same way; its
        first session is asked for with its authentication, and its limit is this one's."""
        with self._engine_conn_lock:
            if self._engine_conn is None or not self._engine_conn._fabric.is_connected:
                conn = HostConnection(
                    self.host,
                    accept_new=self.accept_new,
                    connect_timeout=self.connect_timeout,
                    early=(SESSION_CHANNEL,),
                )
                conn._engine_owner = self
                conn.open()
                conn._budget().capacity = self._budget().capacity
                self._engine_conn = conn
            return self._engine_conn

    def _explain_engine_failure(self, detail: str) -> str | None:
        """The engine's route failed with ``detail`` (dial-stdio's stderr): sudo refusing
        under become is worded as for any command."""
        if self.become is None or (why := sudo_refusal(detail)) is None:
            return None
        return sudo_refusal_message(self.host.name, self.user, self.become, why)

    def engine(self) -> EngineClient:
        """The light Engine API client (standard library HTTP): the inspections and execs
        of every run, on kept channels of this connection."""
        route = self.engine_route()
        if self._engine is None:
            self._engine = EngineClient(route, self.host.name)
        return self._engine

    def docker(self) -> Any:
        """A docker-py ``APIClient`` whose HTTP goes through this SSH connection (imported
        and built on first use: a no-op converge never needs it)."""
        route = self.engine_route()
        if self._docker is None:
            from .dockerssh import docker_api_over_ssh

            self._docker = docker_api_over_ssh(route)
        return self._docker


class _SingleSession(Exception):
    """The server allows one session per connection: the engine needs a connection of its own."""


class HeldCommand:
    """A command that printed its answer and now waits for one line on stdin: the rest of
    its work (a no-op's audit line) costs a write on the same session instead of a second
    session (sshd fork, shell) and channel."""

    def __init__(self, conn: HostConnection, channel: paramiko.Channel, argv: tuple[str, ...]) -> None:
        self.conn, self.channel, self.argv = conn, channel, argv

    def finish(self, line: str, timeout: float = 60.0) -> None:
        """Send ``line`` (one line, no newline in it) and wait for the command to end;
        :class:`TransportError` if it fails or the session is gone."""
        result = self.conn._complete(self.channel, self.argv, line.encode("utf-8") + b"\n", timeout)
        self.conn._raise_if_sudo_refused(result)
        self.conn._checked(result)

    def release(self) -> None:
        """End the command without its last line (it reads EOF and exits); never raises."""
        try:
            send_eof(self.channel)
            self.channel.close()
        except (paramiko.SSHException, OSError):
            pass


def shown(argv: Sequence[str]) -> str:
    """``argv`` as a one-line shell command for messages: a ``sh -c`` script is shown as
    ``sh -c …`` followed by its arguments (the script is ours and spans many lines)."""
    if len(argv) > 2 and argv[0] == "sh" and argv[1] == "-c" and "\n" in argv[2]:
        return "sh -c … " + shlex.join(argv[3:])
    return shlex.join(argv)


def _split_paths(value: str | list[str]) -> list[str]:
    """ssh_config path lists come as a list (paramiko) or a space-separated string."""
    return value if isinstance(value, list) else shlex.split(value)


def _drain(channel: paramiko.Channel, timeout: float) -> tuple[bytes, bytes]:
    """Read stdout and stderr together until EOF (no window deadlock), then the exit status.

    ``select`` on a paramiko channel wakes on data in either stream and on EOF, so this
    never sleeps longer than needed.
    """
    out, err = bytearray(), bytearray()
    deadline = time.monotonic() + timeout
    while True:
        while channel.recv_ready():
            out += channel.recv(65536)
        while channel.recv_stderr_ready():
            err += channel.recv_stderr(65536)
        if channel.eof_received and not channel.recv_ready() and not channel.recv_stderr_ready():
            break
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"no end of output after {timeout:.0f}s")
        select.select([channel], [], [], min(remaining, 1.0))
    if not channel.status_event.wait(max(deadline - time.monotonic(), 0.1)):
        raise TimeoutError(f"no exit status after {timeout:.0f}s")
    return bytes(out), bytes(err)
