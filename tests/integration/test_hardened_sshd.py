"""Servers whose sshd is hardened (issue #17): ``MaxSessions 1`` or ``2``, ``DisableForwarding
yes``, ``AllowStreamLocalForwarding no``. Each is a real OpenSSH sshd of the sandbox VPS on a
port of its own (supakong.sandbox.variants), in front of the same dockerd and containers.
Every task passes through each; the server's own log shows that it did refuse what its
settings refuse (else these tests would prove nothing), and a limit is learned once."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from supakong.deploy import DeployOptions, deploy_host
from supakong.doctor import doctor_host
from supakong.errors import TransportError
from supakong.inventory import load_inventory
from supakong.render import render_kong_config
from supakong.rollback import rollback_host
from supakong.sandbox.variants import HARDENED, SshdVariant, start_variants, write_variants_inventory
from supakong.transport import HostConnection
from supakong.verify_run import VerifyOptions, verify_host

BY_NAME = {v.name: v for v in HARDENED}
#: What each server's log says when it refuses: a session beyond MaxSessions, a Unix socket.
NO_MORE_SESSIONS = "no more sessions"
REFUSED_STREAMLOCAL = "refused streamlocal port forward"
REFUSALS = {
    "ms1-nofwd": (NO_MORE_SESSIONS, REFUSED_STREAMLOCAL),
    "ms2-nofwd": (REFUSED_STREAMLOCAL,),
    "no-streamlocal": (REFUSED_STREAMLOCAL,),
    "ms1": (NO_MORE_SESSIONS,),
}


@pytest.fixture(scope="module")
def variants(sandbox_spec, tmp_path_factory):
    """The hardened sshds started, and an inventory with a host for each."""
    start_variants(sandbox_spec)
    path = write_variants_inventory(tmp_path_factory.mktemp("variants") / "hosts.yml", sandbox_spec)
    return load_inventory(path)


@pytest.fixture(scope="module")
def serving(sandbox_spec, variants, secrets):
    """A valid config deployed through the sandbox's own sshd (the seed config breaks
    Realtime on purpose): every rollback below then has a serving config to go back to."""
    from supakong.report import BufferOutput
    from supakong.sandbox import sandbox_reset

    sandbox_reset(sandbox_spec)
    assert deploy_host(variants.host(sandbox_spec.name), DeployOptions(), BufferOutput()).status == "changed"


class ServerLog:
    """What an sshd logged since the test started."""

    def __init__(self, spec, variant: SshdVariant) -> None:
        self.path = spec.state_dir / f"{variant.pid_name()}.log"
        self.start = len(self.path.read_text())

    def since(self) -> str:
        return self.path.read_text()[self.start :]


@pytest.mark.parametrize("name", list(BY_NAME), ids=list(BY_NAME))
def test_deploy_noop_rollback_doctor_and_verify_pass_behind_a_hardened_sshd(
    name, sandbox_spec, variants, serving, secrets, out, tmp_path
):
    variant = BY_NAME[name]
    host = variants.host(variant.host_name(sandbox_spec))
    log = ServerLog(sandbox_spec, variant)
    config = tmp_path / "kong.yml"
    config.write_text(render_kong_config(host, secrets) + f"# deployed through {name}\n")

    changed = deploy_host(host, DeployOptions(file=config), out)
    assert (changed.status, changed.verify_state) == ("changed", "SUBSCRIBED"), out.text
    assert sandbox_spec.kong_config_path.read_text() == config.read_text()
    noop = deploy_host(host, DeployOptions(file=config), out)
    assert (noop.status, noop.message) == ("ok", "no change"), out.text

    rolled = rollback_host(host, None, True, out)
    assert (rolled.status, rolled.verify_state) == ("changed", "SUBSCRIBED"), out.text
    assert "deployed through" not in sandbox_spec.kong_config_path.read_text()

    doctor = doctor_host(host, VerifyOptions(), out)
    assert doctor.status == "ok", out.text
    assert verify_host(host, secrets, VerifyOptions()).ok

    seen = log.since()
    if NO_MORE_SESSIONS in REFUSALS[name] and NO_MORE_SESSIONS not in seen:
        # Whether a run's sessions overlap is a matter of timing (a session asked for ahead
        # may open after the last one closed): show that this server does enforce the limit.
        seen += _second_session_refusal(host, log)
    for refusal in REFUSALS[name]:
        assert refusal in seen, f"{name}: the server never refused ({refusal!r}): the test proves nothing"
    assert "Traceback" not in out.text and "ChannelException" not in out.text


def _second_session_refusal(host, log: ServerLog) -> str:
    """What the server logs when a second session is asked for while one is held."""
    start = len(log.path.read_text())
    with HostConnection(host) as conn:
        _, held = conn.start(["sh", "-c", "echo ready; read -r line"], until=b"ready")
        assert held is not None
        threading.Timer(0.3, held.finish, args=("",)).start()
        assert conn.run(["true"]).exit_code == 0
    return log.path.read_text()[start:]


def test_a_session_limit_is_learned_once_and_later_commands_wait_for_a_free_session(sandbox_spec, variants):
    variant = BY_NAME["ms1"]
    host = variants.host(variant.host_name(sandbox_spec))
    log = ServerLog(sandbox_spec, variant)
    with HostConnection(host) as conn:
        _, held = conn.start(["sh", "-c", "echo ready; read -r line; echo $line"], until=b"ready")
        assert held is not None
        threading.Timer(0.5, held.finish, args=("done",)).start()
        started = time.monotonic()
        assert conn.run(["echo", "after"]).stdout == b"after\n"  # refused, then waits for the held one
        assert time.monotonic() - started >= 0.4
        assert conn._budget().capacity == 1
        for _ in range(3):
            assert conn.run(["true"]).exit_code == 0
            conn.reserve_session()  # not once the limit is known: it would hold the only session
        assert not conn._reserved
    assert log.since().count(NO_MORE_SESSIONS) == 1, "the limit is paid for once per connection"


def test_with_one_session_and_no_forwarding_the_engine_gets_a_connection_of_its_own(sandbox_spec, variants):
    variant = BY_NAME["ms1-nofwd"]
    host = variants.host(variant.host_name(sandbox_spec))
    log = ServerLog(sandbox_spec, variant)
    with HostConnection(host) as conn:
        _, held = conn.start(["sh", "-c", "echo ready; read -r line"], until=b"ready")
        assert held is not None  # the only session this connection may have, held
        kong = conn.engine().inspect_container(host.kong_container)
        assert kong is not None and kong["State"]["Running"]
        assert conn.engine().exec(host.kong_container, ["echo", "in kong"]) == (0, b"in kong\n")
        assert conn.engine_route().mode == "dial-stdio"
        held.finish("")
    seen = log.since()
    assert seen.count("Accepted publickey") == 2, "one connection for the commands, one for the engine"
    assert seen.count(REFUSED_STREAMLOCAL) == 1 and seen.count(NO_MORE_SESSIONS) == 1


def test_a_session_that_never_frees_is_one_line_naming_max_sessions(sandbox_spec, variants, monkeypatch):
    import supakong.transport

    monkeypatch.setattr(supakong.transport, "RETRY_FOR", 0.5)
    host = variants.host(BY_NAME["ms1"].host_name(sandbox_spec))
    with HostConnection(host) as conn:
        _, held = conn.start(["sh", "-c", "echo ready; read -r line"], until=b"ready")
        with pytest.raises(TransportError) as err:
            conn.run(["true"])
        assert held is not None
        held.release()
    message = str(err.value)
    assert "\n" not in message and message.startswith(host.name)
    assert "MaxSessions" in message and "1 at a time" in message


def test_the_variants_inventory_reaches_the_same_containers(sandbox_spec, variants):
    own = variants.host(sandbox_spec.name)
    for variant in HARDENED:
        host = variants.host(variant.host_name(sandbox_spec))
        assert (host.kong_container, host.kong_config_path) == (own.kong_container, own.kong_config_path)
        assert Path(host.ssh_config_file or "").read_text().count(f"Port {variant.port}\n") == 1
