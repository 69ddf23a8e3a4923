"""Proof with the official client: a realtime-js channel held open through `deploy-kong`.

A change applied to the running Kong (POST /config on its Admin API) keeps the client's
WebSocket, its subscription and every broadcast it sends meanwhile; the same change with
``--restart`` closes the socket and loses broadcasts, so the first test can fail."""

from __future__ import annotations

import json
import queue
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from test_kong_2026 import PORT as PORT_2026
from test_kong_2026 import kong_2026  # noqa: F401 - the fixture
from test_reload_2026 import reload as reload_2026

from supakong.apply import APPLIED
from supakong.deploy import DeployOptions, deploy_host
from supakong.render import render_kong_config
from supakong.report import BufferOutput
from supakong.sandbox.stack import docker_client

REPO = Path(__file__).resolve().parents[2]
HOLD_CHANNEL = REPO / "tests" / "standins" / "js" / "hold_channel.mjs"


class HeldChannel:
    """``node hold_channel.mjs``: one realtime-js channel subscribed and broadcasting to
    itself, its observations read line by line as they come."""

    def __init__(self, url: str, apikey: str) -> None:
        if not (HOLD_CHANNEL.parent / "node_modules").is_dir() or shutil.which("node") is None:
            pytest.fail("realtime-js is not installed: run `make js` (make test does)")
        self.proc = subprocess.Popen(
            ["node", str(HOLD_CHANNEL), url, apikey, "100"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self._new: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._follow, daemon=True).start()

    def _follow(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._new.put(line.rstrip("\n"))

    def wait_for(self, what: str, done: Callable[[list[str]], bool], timeout: float = 60) -> None:
        """Read lines until ``done(lines)``; fail with what was seen after ``timeout``."""
        deadline = time.monotonic() + timeout
        while not done(self.lines):
            try:
                self.lines.append(self._new.get(timeout=max(0.0, deadline - time.monotonic())))
            except queue.Empty:
                pytest.fail(f"realtime-js: no {what} within {timeout:.0f} s; it printed:\n" + self.tail())

    def echoes(self) -> int:
        return sum(line.startswith("echo ") for line in self.lines)

    def wait_for_echoes(self, more: int) -> None:
        """Until ``more`` broadcasts beyond those seen so far have come back."""
        target = self.echoes() + more
        self.wait_for(f"{more} more echoed broadcasts", lambda _: self.echoes() >= target)

    def stop(self) -> dict[str, Any]:
        """Stop sending; the client's summary (sent, lost, statuses, sockets opened/closed)."""
        assert self.proc.stdin is not None
        self.proc.stdin.write("stop\n")
        self.proc.stdin.flush()
        self.wait_for("summary", lambda lines: bool(lines) and lines[-1].startswith("summary "), timeout=30)
        summary: dict[str, Any] = json.loads(self.lines[-1].removeprefix("summary "))
        return summary

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)

    def tail(self) -> str:
        return "\n".join(self.lines[-30:])


@contextmanager
def held_channel(host, secrets) -> Iterator[HeldChannel]:
    """A realtime-js channel through the host's Kong, SUBSCRIBED and echoing broadcasts."""
    with held_channel_at(f"{host.public_url.replace('http', 'ws', 1)}/realtime/v1", secrets.anon_key) as held:
        yield held


@contextmanager
def held_channel_at(url: str, apikey: str) -> Iterator[HeldChannel]:
    """A realtime-js channel through the Kong at ``url``, SUBSCRIBED and echoing broadcasts."""
    held = HeldChannel(url, apikey)
    try:
        held.wait_for("SUBSCRIBED", lambda lines: "status SUBSCRIBED" in lines)
        held.wait_for_echoes(5)
        yield held
    finally:
        held.close()


def kong_started_at(spec) -> str:
    client = docker_client(spec)
    try:
        return str(client.inspect_container(spec.kong_container)["State"]["StartedAt"])
    finally:
        client.close()


def variant(host, secrets, tmp_path: Path, marker: str) -> Path:
    """The rendered config plus a comment unique to this run: a change to deploy."""
    path = tmp_path / f"{marker}.yml"
    path.write_text(render_kong_config(host, secrets) + f"# held-channel {marker} {time.time_ns()}\n")
    return path


@pytest.fixture()
def converged(sandbox_spec, host):
    """The sandbox serving supakong's rendered config (deployed if it was not)."""
    deploy_host(host, DeployOptions(verify=False), BufferOutput())
    return sandbox_spec


def test_a_held_realtime_js_channel_survives_change_deploys(converged, host, secrets, tmp_path):
    started = kong_started_at(converged)
    out = BufferOutput()
    with held_channel(host, secrets) as held:
        for marker in ("first", "second"):
            result = deploy_host(host, DeployOptions(file=variant(host, secrets, tmp_path, marker)), out)
            assert result.status == "changed" and result.method == "reloaded", out.text
            held.wait_for_echoes(5)  # broadcasts still flow after the change
        summary = held.stop()
    assert summary["opened"] == 1 and summary["closed"] == 0, held.tail()
    assert summary["statuses"] == ["SUBSCRIBED"], summary
    assert summary["lost"] == [] and summary["sent"] >= 15, summary
    assert kong_started_at(converged) == started


def test_a_restart_deploy_drops_the_held_realtime_js_channel(converged, host, secrets, tmp_path):
    started = kong_started_at(converged)
    out = BufferOutput()
    with held_channel(host, secrets) as held:
        options = DeployOptions(file=variant(host, secrets, tmp_path, "restart"), restart=True)
        result = deploy_host(host, options, out)
        assert result.status == "changed" and result.method == "restarted", out.text
        held.wait_for("SUBSCRIBED again", lambda lines: lines.count("status SUBSCRIBED") >= 2)
        held.wait_for_echoes(5)  # realtime-js reconnected and rejoined on its own
        summary = held.stop()
    assert summary["closed"] >= 1 and summary["opened"] >= 2, held.tail()
    assert "CHANNEL_ERROR" in summary["statuses"], summary
    assert summary["lost"], summary
    assert kong_started_at(converged) != started


def test_a_held_realtime_js_channel_survives_reloads_of_the_2026_kong(kong_2026, host, secrets):  # noqa: F811
    """kong/kong:3.9.3 run by kong-entrypoint.sh: the template is rendered by re-running the
    script in the container and posted; 3.x answers before its workers swap routers."""
    started = kong_started_at(kong_2026)
    template = Path(next(source for source, dest in _mounts(kong_2026) if dest == "/home/kong/temp.yml"))
    url = f"ws://{kong_2026.vps_addr}:{PORT_2026}/realtime/v1"
    with held_channel_at(url, secrets.anon_key) as held:
        for marker in ("first", "second"):
            changed = template.read_text() + f"# held-channel {marker} {time.time_ns()}\n"
            outcome = reload_2026(host, kong_2026, changed.encode())
            assert (outcome.result, outcome.status) == (APPLIED, 201), outcome.detail
            held.wait_for_echoes(5)
        summary = held.stop()
    assert summary["opened"] == 1 and summary["closed"] == 0, held.tail()
    assert summary["statuses"] == ["SUBSCRIBED"], summary
    assert summary["lost"] == [] and summary["sent"] >= 15, summary
    assert kong_started_at(kong_2026) == started


def _mounts(spec) -> list[tuple[str, str]]:
    client = docker_client(spec)
    try:
        return [(m["Source"], m["Destination"]) for m in client.inspect_container(spec.kong_container)["Mounts"]]
    finally:
        client.close()
