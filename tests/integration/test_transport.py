"""SSH transport against the sandbox's real OpenSSH sshd: strict host keys, one connection
for commands, SFTP and the Docker API, argv quoting."""

from __future__ import annotations

import dataclasses
import hashlib
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from ports import free_port
from sshconfig import dialling_local_port, with_known_hosts

from supakong.container import inspect_container
from supakong.engine import EngineClient, EngineRoute
from supakong.errors import TransportError
from supakong.listen_probe import ListenGate, answers_http, proxy_address
from supakong.logs import fetch_interleaved
from supakong.sandbox.spec import CLIENT_KEY, SSH_USER
from supakong.transport import HostConnection


def test_unknown_host_key_is_refused_with_the_fix_spelled_out(host, tmp_path):
    unknown, _ = with_known_hosts(host, tmp_path, "")
    with pytest.raises(TransportError) as err:
        HostConnection(unknown).open()
    message = str(err.value)
    assert "host key is unknown" in message and "ssh-keyscan" in message and "--accept-new" in message


def test_changed_host_key_is_refused(host, sandbox_spec, tmp_path):
    fake = f"{sandbox_spec.vps_addr} ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBq2hJ0oVQkbG4ofQ9wqH3ytbqL1l4r8mvSv8bHZZ0u5\n"
    changed, _ = with_known_hosts(host, tmp_path, fake)
    with pytest.raises(TransportError, match="HOST KEY HAS CHANGED"):
        HostConnection(changed).open()


def test_accept_new_records_the_key_then_connects(host, tmp_path):
    unknown, known = with_known_hosts(host, tmp_path, "")
    with HostConnection(unknown, accept_new=True) as conn:
        assert conn.run(["true"]).exit_code == 0
    assert "ssh-ed25519" in known.read_text()
    with HostConnection(unknown) as conn:  # now known: strict mode connects
        assert conn.run(["echo", "ok"]).text.strip() == "ok"


def test_the_connection_prefers_aes_gcm_and_keeps_every_other_cipher_for_older_servers(host):
    import paramiko

    from supakong.transport import _Transport

    with HostConnection(host) as conn:
        transport = conn.transport
        assert transport.local_cipher == transport.remote_cipher == "aes128-gcm@openssh.com"
    preferred = _Transport._preferred_ciphers
    assert preferred[:2] == ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com")
    assert sorted(preferred) == sorted(paramiko.Transport._preferred_ciphers), "nothing dropped"


@pytest.mark.parametrize("how", ["run", "held"])
def test_an_eof_held_up_by_a_busy_thread_never_follows_the_channels_close(host, monkeypatch, how):
    """paramiko sends a channel's EOF after releasing the channel's lock: a command that ends
    meanwhile gets its CLOSE answered first, and OpenSSH drops the whole connection on the
    late EOF ("ieof packet referred to nonexistent channel"). Every EOF is delayed here, as
    a preempted thread would delay it, while the command has already ended."""
    import paramiko
    from paramiko.common import MSG_CHANNEL_EOF

    real_send = paramiko.Transport._send_user_message  # type: ignore[attr-defined]

    def late_eof(transport, message):  # type: ignore[no-untyped-def]
        if message.asbytes()[:1] == bytes([MSG_CHANNEL_EOF]):
            time.sleep(0.3)
        return real_send(transport, message)

    with HostConnection(host) as conn:
        transport = conn.transport  # the one connection (conn.transport would reconnect)
        if how == "run":
            monkeypatch.setattr(paramiko.Transport, "_send_user_message", late_eof)
            assert conn.run(["sh", "-c", "echo done"]).stdout == b"done\n"
        else:  # a held look's audit line: the command ends as soon as it has read the line
            _, held = conn.start(["sh", "-c", "echo ready; read -r line; echo $line"], until=b"ready")
            assert held is not None
            monkeypatch.setattr(paramiko.Transport, "_send_user_message", late_eof)
            held.finish("audit")
        time.sleep(0.5)  # the late EOF has reached the server by now
        monkeypatch.undo()
        assert transport.is_active(), "the server dropped the connection"
        assert conn.run(["echo", "still connected"]).stdout == b"still connected\n"
        assert conn.transport is transport


def test_the_first_session_and_the_engine_channel_open_with_the_authentication(host):
    from supakong.transport import _Transport

    with HostConnection(host) as conn:
        transport = conn.transport
        assert isinstance(transport, _Transport) and transport.auth_requests == 1
        early = {kind: transport._requested[kind].chanid for kind in ("session", "direct-streamlocal@openssh.com")}
        assert conn.run(["echo", "first"]).stdout == b"first\n"
        assert conn.engine().inspect_container(host.kong_container)["State"]["Running"]
        assert conn.engine_route().mode.startswith("streamlocal")
        assert conn.run(["echo", "second"]).stdout == b"second\n"  # a channel opened the usual way
        assert not transport._requested, "both were taken"
    assert sorted(early.values()) == [0, 1], "asked for before any other channel"


def test_channels_asked_for_behind_a_rejected_key_are_opened_again_after_the_accepted_one(host, sandbox_spec, tmp_path):
    """OpenSSH answers channel requests that arrive before authentication succeeded with
    "unimplemented" (and logs a protocol error): the next key is tried and the channels are
    opened the usual way."""
    wrong = tmp_path / "not_authorized"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(wrong)], check=True)
    config = tmp_path / "ssh_config"
    config.write_text(
        re.sub(r"(\n\s*)IdentityFile ", rf"\1IdentityFile {wrong}\1IdentityFile ", host.ssh_config_file.read_text())
    )
    log = sandbox_spec.state_dir / "sshd.log"
    before = log.read_text()
    with HostConnection(dataclasses.replace(host, ssh_config_file=config)) as conn:
        assert conn.transport.auth_requests == 2  # type: ignore[attr-defined]
        assert conn.run(["echo", "ok"]).stdout == b"ok\n"
        assert conn.engine().inspect_container(host.kong_container)["State"]["Running"]
        assert conn.engine_route().mode.startswith("streamlocal")
    seen = log.read_text()[len(before) :]
    assert seen.count("Accepted publickey") == 1 and "dispatch_protocol_error: type 90" in seen


@pytest.fixture()
def dropbear(sandbox_spec, tmp_path) -> Iterator[tuple[int, str, Path]]:
    """A real Dropbear server (Debian's dropbear-bin) on the sandbox VPS's address, port 2222,
    in the VPS's network namespace: its port, its host key line and its log."""
    host_key = tmp_path / "dropbear_ed25519"
    made = subprocess.run(["dropbearkey", "-t", "ed25519", "-f", str(host_key)], capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    public = subprocess.run(["dropbearkey", "-y", "-f", str(host_key)], capture_output=True, text=True).stdout
    key_line = next(line for line in public.splitlines() if line.startswith("ssh-"))
    port, log = 2222, tmp_path / "dropbear.log"
    with log.open("wb") as sink:
        server = subprocess.Popen(
            ["ip", "netns", "exec", sandbox_spec.netns, "dropbear", "-F", "-E", "-s", "-w", "-j", "-k",
             "-p", f"{sandbox_spec.vps_addr}:{port}", "-r", str(host_key)],
            stdout=sink, stderr=sink,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while "Not backgrounding" not in log.read_text():
            assert server.poll() is None and time.monotonic() < deadline, f"dropbear did not start: {log.read_text()}"
            time.sleep(0.05)
        yield port, " ".join(key_line.split()[:2]), log
    finally:
        server.terminate()
        server.wait(10)


def test_a_server_that_hangs_up_over_early_channel_requests_is_dialled_again_without_them(
    host, sandbox_spec, tmp_path, dropbear
):
    """Dropbear exits on a message other than authentication's before authentication
    succeeded ("Received message 90 before userauth"): after a rejected first key the next
    key was never tried. supakong connects once more without asking for channels early."""
    port, key_line, log = dropbear
    rejected = tmp_path / "rejected"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(rejected)], check=True)
    known = tmp_path / "known_hosts"
    known.write_text(f"[{sandbox_spec.vps_addr}]:{port} {key_line}\n")
    config = tmp_path / "ssh_config"
    config.write_text(
        f"Host {host.ssh_host}\n  HostName {sandbox_spec.vps_addr}\n  User {SSH_USER}\n  IdentitiesOnly yes\n"
        f"  IdentityFile {rejected}\n  IdentityFile {CLIENT_KEY}\n"
        f"  UserKnownHostsFile {known}\n  StrictHostKeyChecking yes\n"
    )
    through_dropbear = dataclasses.replace(host, ssh_config_file=config, ssh_port=port, identity_file=None)
    with HostConnection(through_dropbear) as conn:
        assert conn.run(["echo", "hi"]).stdout == b"hi\n"
        assert conn._early == (), "the second connection asked for nothing early"
    said = log.read_text()
    assert said.count("Child connection from") == 2, said
    assert "Received message 90 before userauth" in said, said
    assert said.count("Pubkey auth succeeded for 'supakong'") == 1, said


def test_arguments_are_quoted_never_interpolated(host, sandbox_spec):
    hostile = "$(touch /tmp/supakong-pwned); `id` 'quoted' \"double\""
    with HostConnection(host) as conn:
        assert conn.run(["printf", "%s", hostile]).text == hostile


def test_failed_command_names_command_exit_code_and_stderr(host, sandbox_spec):
    with HostConnection(host) as conn, pytest.raises(TransportError) as err:
        conn.run(["ls", "/no/such/dir"])
    assert "`ls /no/such/dir` exited 2" in str(err.value) and "No such file" in str(err.value)


def test_commands_sftp_and_docker_share_one_ssh_connection(host, sandbox_spec):
    log = sandbox_spec.state_dir / "sshd.log"
    before = log.read_text().count("Accepted publickey")
    with HostConnection(host) as conn:
        conn.run(["true"])
        conn.sftp().listdir("/tmp")
        assert conn.docker().inspect_container(host.kong_container)["State"]["Running"]
    assert log.read_text().count("Accepted publickey") == before + 1


def test_docker_api_goes_straight_to_the_engine_socket_over_ssh(host, sandbox_spec):
    with HostConnection(host) as conn:
        api = conn.docker()
        assert api.mode == f"streamlocal {sandbox_spec.docker_socket}"
        assert api.inspect_container(host.kong_container)["Name"] == f"/{host.kong_container}"


def test_docker_api_falls_back_to_dial_stdio_when_the_socket_is_refused(host, sandbox_spec):
    elsewhere = dataclasses.replace(host, docker_socket="/nonexistent/docker.sock")
    with HostConnection(elsewhere) as conn:
        api = conn.docker()
        assert api.mode == "dial-stdio"
        assert api.inspect_container(host.kong_container)["State"]["Running"]


def test_the_look_reads_containers_over_the_same_route_without_docker_py(host, sandbox_spec):
    with HostConnection(host) as conn:
        engine = conn.engine()
        kong = engine.inspect_container(sandbox_spec.kong_container)
        assert kong is not None and kong["State"]["Running"]
        assert engine.inspect_container("no-such-container") is None
        assert conn.docker().mode == engine.route.mode == f"streamlocal {sandbox_spec.docker_socket}"


@pytest.mark.parametrize("socket_path", ["default", "/nonexistent/docker.sock"], ids=["streamlocal", "dial-stdio"])
def test_an_exec_gets_its_stdin_and_returns_code_and_both_streams(host, sandbox_spec, socket_path):
    target = host if socket_path == "default" else dataclasses.replace(host, docker_socket=socket_path)
    payload = bytes(range(256)) * 1200  # 300 KiB: more than one SSH window, every byte value
    with HostConnection(target) as conn:
        engine = conn.engine()
        code, output = engine.exec(
            sandbox_spec.kong_container, ["sh", "-c", "sha256sum; echo to-stderr >&2; exit 3"], stdin=payload
        )
    assert code == 3
    # The engine reads stdout and stderr from two pipes at once: their order is not kept.
    assert sorted(output.decode().split()) == sorted([hashlib.sha256(payload).hexdigest(), "-", "to-stderr"])


def test_an_exec_into_a_missing_container_is_a_transport_error_naming_it(host):
    with HostConnection(host) as conn, pytest.raises(TransportError, match="no-such-container"):
        conn.engine().exec("no-such-container", ["true"])


def test_kongs_proxy_port_answers_through_the_ssh_connection_and_a_closed_port_does_not(host, sandbox_spec):
    with HostConnection(host) as conn:
        kong = inspect_container(conn.engine(), host.kong_container)
        address = proxy_address(kong)
        assert address == ("127.0.0.1", 8000)  # the sandbox's Kong uses host networking
        assert answers_http(conn.transport, address) is True
        assert answers_http(conn.transport, ("127.0.0.1", 1)) is False


def test_the_gate_is_proven_by_the_running_kong_and_not_by_a_port_nobody_listens_on(host):
    with HostConnection(host) as conn:
        kong = inspect_container(conn.engine(), host.kong_container)
        proven, wrong = ListenGate(lambda: conn.transport), ListenGate(lambda: conn.transport)
        proven.check_before_restart(kong)
        wrong.check_before_restart(dataclasses.replace(kong, env={**kong.env, "KONG_PROXY_LISTEN": "0.0.0.0:1"}))
    assert proven.verified and not proven.refused
    assert not wrong.verified and not wrong.refused


def counting(route: EngineRoute) -> tuple[EngineRoute, list[int]]:
    opened: list[int] = []

    def opener():
        opened.append(1)
        return route.opener()

    return EngineRoute(opener, route.mode, route.timeout), opened


def test_engine_requests_reuse_one_kept_channel_and_an_exec_start_gets_its_own(host):
    with HostConnection(host) as conn:
        route, opened = counting(conn.engine_route())
        engine = EngineClient(route, host.name)
        for _ in range(3):
            assert engine.inspect_container(host.kong_container) is not None
        assert len(opened) == 1
        assert engine.exec(host.kong_container, ["true"]) == (0, b"")
        assert len(opened) == 2  # create and inspect on the kept channel, start on its own
        engine.close()


def test_logs_and_a_missing_containers_restart_go_through_the_light_engine_client(host, sandbox_spec):
    with HostConnection(host) as conn:
        engine = conn.engine()
        raw = engine.logs(sandbox_spec.kong_container, tail=5)
        assert engine.logs("no-such-container") is None
        assert engine.restart("no-such-container") is False
        lines = fetch_interleaved(engine, [sandbox_spec.kong_container, "no-such-container"], tail=5)
    assert raw is not None and 0 < len(raw.splitlines()) <= 5
    assert all(line[:4].isdigit() and "T" in line.split(" ", 1)[0] for line in raw.decode().splitlines())
    assert "(container no-such-container does not exist)" in [line.text for line in lines]
    assert any(line.container == sandbox_spec.kong_container and line.time > 0 for line in lines)


def test_a_kept_channel_the_engine_side_closed_is_replaced_without_an_error(host):
    with HostConnection(host) as conn:
        route, opened = counting(conn.engine_route())
        engine = EngineClient(route, host.name)
        engine.inspect_container(host.kong_container)
        engine._idle[0].channel.close()  # as if the engine (or sshd) had dropped it
        assert engine.inspect_container(host.kong_container) is not None
        assert len(opened) == 2
        engine.close()


def test_a_reserved_session_opens_meanwhile_and_carries_the_next_command(host, sandbox_spec, tmp_path):
    """reserve_session() asks for the session without waiting: a command with input then
    costs two round trips (its exec, then its input and answer) instead of three. Counted by
    bench's delaying proxy, as the flights its client waited for (bench/latency.py)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
    from latency import delayed_forward

    port = free_port()
    proxied = dialling_local_port(host, sandbox_spec.known_hosts_path, tmp_path, port)

    with delayed_forward(sandbox_spec.vps_addr, 300, port) as proxy, HostConnection(proxied, early=()) as conn:

        def round_trips() -> int:
            before = proxy.round_trips()[-1]
            assert conn.run(["cat"], stdin=b"input\n").stdout == b"input\n"
            return proxy.round_trips()[-1] - before

        plain = round_trips()
        conn.reserve_session()
        # The caller's own work meanwhile, here as long as the session takes to open.
        assert conn._reserved[0].event.wait(10), "the reserved session never opened"
        reserved = round_trips()
        after = round_trips()  # a reservation serves one command

    assert (plain, reserved, after) == (3, 2, 3)
