"""A change's read-only steps start before the lock is taken (supakong.deploy._Ahead): their
results count only for the container incarnation they ran against."""

from __future__ import annotations

import dataclasses
import threading

import pytest

from supakong.container import ContainerState
from supakong.deploy import _Ahead
from supakong.engine import EngineClient, EngineRoute
from supakong.errors import ValidationError

KONG = ContainerState(
    name="kong",
    exists=True,
    status="running",
    running=True,
    started_at=100.0,
    image="kong:2.8.1",
    env={"KONG_PROXY_LISTEN": "off"},  # no listen gate: nothing to dial
    command=("/docker-entrypoint.sh", "kong", "docker-start"),
)


class ParsingEngine(EngineClient):
    """An engine whose `docker exec` answers as `kong config parse` would, counting runs."""

    def __init__(self, code: int = 0, output: bytes = b"parse successful\n") -> None:
        super().__init__(EngineRoute(opener=lambda: None, mode="fake", timeout=1.0), "host")  # type: ignore[arg-type]
        self.code, self.output, self.runs = code, output, 0
        self._count = threading.Lock()

    def exec(self, name: str, argv: list[str], stdin: bytes | None = None) -> tuple[int, bytes]:
        assert name == "kong" and stdin == b"_format_version: '2.1'\n"
        with self._count:
            self.runs += 1
        return self.code, self.output


class Connection:
    """What _Ahead uses of a HostConnection."""

    def __init__(self, engine: EngineClient) -> None:
        self._engine = engine

    def engine(self) -> EngineClient:
        return self._engine


CONTENT = b"_format_version: '2.1'\n"


def test_the_preflight_run_before_the_lock_counts_for_the_same_container():
    engine = ParsingEngine()
    ahead = _Ahead(Connection(engine), KONG, CONTENT)  # type: ignore[arg-type]
    result = ahead.preflight_for(dataclasses.replace(KONG, health="healthy"))
    ahead.settle()
    assert result is not None and result.status == "ok" and engine.runs == 1


@pytest.mark.parametrize(
    "under_the_lock",
    [
        dataclasses.replace(KONG, started_at=105.0),  # restarted meanwhile
        dataclasses.replace(KONG, image="kong/kong:3.9.1"),  # recreated from another image
    ],
    ids=["restarted", "recreated"],
)
def test_a_container_restarted_or_recreated_meanwhile_is_checked_again(under_the_lock):
    engine = ParsingEngine()
    ahead = _Ahead(Connection(engine), KONG, CONTENT)  # type: ignore[arg-type]
    result = ahead.preflight_for(under_the_lock)  # no verdict for it: the deploy runs the preflight there
    ahead.settle()
    assert result is None and engine.runs == 1


def test_kongs_refusal_found_ahead_is_raised_when_the_verdict_is_taken():
    engine = ParsingEngine(code=1, output=b"Error: failed parsing declarative configuration\n")
    ahead = _Ahead(Connection(engine), KONG, CONTENT)  # type: ignore[arg-type]
    ahead.settle()  # the refusal is held, not raised in the background
    with pytest.raises(ValidationError, match="refuses the new file"):
        ahead.preflight_for(KONG)


def test_without_a_file_to_check_only_the_gate_runs_ahead():
    engine = ParsingEngine()
    ahead = _Ahead(Connection(engine), KONG, None)  # type: ignore[arg-type]
    ahead.settle()
    assert engine.runs == 0


def test_a_parse_killed_with_its_crash_looping_kong_is_kong_not_running_not_a_refusal():
    from supakong.preflight import NOT_RUNNING, preflight_parse

    killed = preflight_parse(ParsingEngine(137, b""), KONG, CONTENT, "eval")
    assert killed.status == NOT_RUNNING and "could not finish" in killed.detail and "crash-looping" in killed.detail
    stopped = b"OCI runtime exec failed: exec failed: cannot exec in a stopped container: unknown"
    assert preflight_parse(ParsingEngine(126, stopped), KONG, CONTENT, "eval").status == NOT_RUNNING
    with pytest.raises(ValidationError, match="refuses the new file"):
        preflight_parse(ParsingEngine(1, b"Error: Failed parsing:\nin 'services'\n"), KONG, CONTENT, "eval")
