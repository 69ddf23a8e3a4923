"""The gate in front of Kong's healthcheck after a restart: where Kong's proxy port is seen
from the host, and how often the (costly) healthcheck runs while Kong does not answer yet."""

from __future__ import annotations

import dataclasses
import types
from concurrent.futures import ThreadPoolExecutor

import pytest

from supakong import container
from supakong.container import ContainerState, state_from_inspect, wait_until_running
from supakong.listen_probe import ListenGate, proxy_address


def kong(**extra) -> ContainerState:
    return dataclasses.replace(ContainerState(name="kong", exists=True, running=True), **extra)


@pytest.mark.parametrize(
    ("state", "address"),
    [
        (kong(network_mode="host"), ("127.0.0.1", 8000)),
        (kong(network_mode="host", env={"KONG_PROXY_LISTEN": "10.0.0.5:9000 reuseport"}), ("10.0.0.5", 9000)),
        (kong(network_mode="host", env={"KONG_PROXY_LISTEN": "[::]:8000, 0.0.0.0:8443 ssl"}), ("127.0.0.1", 8000)),
        (kong(network_mode="default", published={"8000/tcp": (("0.0.0.0", "18000"),)}), ("127.0.0.1", 18000)),
        (kong(network_mode="default", published={"8000/tcp": (("10.1.2.3", "8000"),)}), ("10.1.2.3", 8000)),
        (kong(network_mode="supabase_default", addresses=("172.18.0.7",)), ("172.18.0.7", 8000)),
        (kong(network_mode="host", env={"KONG_PROXY_LISTEN": "off"}), None),
        (kong(network_mode="host", env={"KONG_PROXY_LISTEN": "0.0.0.0:http"}), None),
        (kong(network_mode="host", env={"KONG_PROXY_LISTEN": "0.0.0.0:8000²"}), None),
        (kong(network_mode="default", published={"8000/tcp": (("0.0.0.0", "18000²"),)}), None),
        (kong(network_mode="none"), None),
    ],
    ids=[
        "host-net",
        "host-net-own-address",
        "first-listener",
        "published",
        "published-on-one-ip",
        "own-ip",
        "off",
        "bad-port",
        "superscript-port",
        "superscript-published-port",
        "no-network",
    ],  # fmt: skip
)
def test_kongs_proxy_port_as_seen_from_the_host(state, address):
    assert proxy_address(state) == address


def test_inspect_carries_what_the_gate_needs():
    data = {
        "State": {"Running": True},
        "Config": {"Env": ["KONG_PROXY_LISTEN=0.0.0.0:8000"], "Entrypoint": ["bash"], "Cmd": ["-c", "eval x"]},
        "HostConfig": {"NetworkMode": "supabase_default"},
        "NetworkSettings": {
            "Ports": {"8000/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8000"}], "8001/tcp": None},
            "Networks": {"supabase_default": {"IPAddress": "172.18.0.7"}, "other": {"IPAddress": ""}},
        },
    }
    state = state_from_inspect("kong", data)
    assert state.published == {"8000/tcp": (("0.0.0.0", "8000"),)}
    assert state.addresses == ("172.18.0.7",)
    assert state.command == ("bash", "-c", "eval x")
    assert proxy_address(state) == ("127.0.0.1", 8000)


class FakeEngine:
    """A restarted Kong that answers HTTP from ``ready_at`` on (fake clock); counts healthchecks."""

    def __init__(self, clock, ready_at: float) -> None:
        self.clock, self.ready_at, self.healthchecks = clock, ready_at, 0

    def inspect_container(self, name):
        return {
            "State": {"Status": "running", "Running": True, "StartedAt": "2026-11-26T10:00:01Z",
                      "Health": {"Status": "starting"}},
            "Config": {"Healthcheck": {"Test": ["CMD", "kong", "health"]}},
        }  # fmt: skip

    def exec_create(self, name, argv, **kwargs):
        self.healthchecks += 1
        return {"Id": "x"}

    def exec_start(self, exec_id):
        return b""

    def exec_inspect(self, exec_id):
        return {"ExitCode": 0 if self.clock.now >= self.ready_at else 1}


@pytest.fixture()
def clock(monkeypatch):
    fake = types.SimpleNamespace(now=0.0)
    fake.monotonic = lambda: fake.now
    fake.sleep = lambda seconds: setattr(fake, "now", fake.now + seconds)
    monkeypatch.setattr(container, "time", fake)
    return fake


def wait(engine, listening):
    return wait_until_running(engine, "kong", since=1.0, restarts_before=0, timeout=60, listening=listening)


def test_while_kong_does_not_answer_the_healthcheck_runs_only_on_a_slow_schedule(clock):
    engine = FakeEngine(clock, ready_at=20.0)
    state = wait(engine, listening=lambda state: clock.now >= engine.ready_at)
    assert state.health == "healthy"
    assert 20.0 <= clock.now <= 21.0  # found as soon as Kong answers
    assert engine.healthchecks <= 6  # ungated at ~1, 3, 7, 15 s, then when Kong answers


def test_without_a_gate_the_healthcheck_runs_at_every_poll(clock):
    engine = FakeEngine(clock, ready_at=20.0)
    wait(engine, listening=lambda state: None)
    assert engine.healthchecks >= 20


def test_a_gate_that_never_answers_delays_the_healthcheck_by_at_most_its_slowest_step(clock):
    engine = FakeEngine(clock, ready_at=5.0)
    wait(engine, listening=lambda state: False)  # e.g. an address the gate guessed wrong
    assert clock.now <= 5.0 + container.UNGATED_PROBE_AFTER[1] + 1.0


def test_once_the_address_is_proven_the_healthcheck_waits_for_kong_to_answer(clock):
    engine = FakeEngine(clock, ready_at=20.0)
    wait_until_running(
        engine,
        "kong",
        since=1.0,
        restarts_before=0,
        timeout=60,
        listening=lambda state: clock.now >= engine.ready_at,
        ungated_after=container.PROVEN_GATE_PROBE_AFTER,
    )
    assert 20.0 <= clock.now <= 21.0
    assert engine.healthchecks <= 3  # at ~8 and ~16 s, then when Kong answers


class RefusingTransport:
    """Nothing listens yet: every direct-tcpip open is refused (as sshd reports a refused
    connect); the addresses asked are recorded."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, int]] = []

    def open_channel(self, kind, dest, src, timeout):
        import paramiko

        self.asked.append(dest)
        raise paramiko.ChannelException(2, "Connect failed")


def test_a_question_asked_ahead_answers_the_next_call_once_and_only_for_its_address():
    transport = RefusingTransport()
    gate = ListenGate(lambda: transport)
    state = kong(network_mode="host", env={"KONG_PROXY_LISTEN": "0.0.0.0:8000"})
    with ThreadPoolExecutor(max_workers=1) as pool:
        gate.ask_ahead(state, pool)
        assert gate(state) is False and transport.asked == [("127.0.0.1", 8000)]  # the answer asked ahead
        assert gate(state) is False and len(transport.asked) == 2  # then a question of its own
        gate.ask_ahead(state, pool)
        moved = dataclasses.replace(state, env={"KONG_PROXY_LISTEN": "0.0.0.0:8443"})
        assert gate(moved) is False and transport.asked[-1] == ("127.0.0.1", 8443)  # not the old address's
        gate.settle()
    assert len(transport.asked) == 4


class ForwardingDisabled:
    """A connection whose server refuses direct-tcpip (DisableForwarding yes)."""

    def __init__(self) -> None:
        self.refused_kinds: set[str] = set()
        self.asked = 0

    def open_channel(self, *args, **kwargs):  # noqa: ANN002, ANN003, ANN201 - paramiko's shape
        import paramiko

        self.asked += 1
        raise paramiko.ChannelException(paramiko.common.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED, "prohibited")


def test_a_connection_that_refused_direct_tcpip_is_not_asked_again() -> None:
    from supakong.listen_probe import answers_http

    transport = ForwardingDisabled()
    assert answers_http(transport, ("127.0.0.1", 8000)) is None  # type: ignore[arg-type]
    assert answers_http(transport, ("127.0.0.1", 8443)) is None  # type: ignore[arg-type]
    assert ListenGate(lambda: transport)(kong(network_mode="host")) is None  # type: ignore[arg-type,return-value]
    assert transport.asked == 1, "the refusal is remembered by the connection"


def test_a_refused_engine_channel_is_worded_not_paramikos_repr() -> None:
    import paramiko

    from supakong.engine import channel_error

    worded = channel_error(paramiko.ChannelException(2, "Connect failed"))
    assert "ChannelException" not in worded and "refused a channel" in worded and "Connect failed" in worded
