"""The sandbox waits for a container's *current* incarnation: a log line printed before a
restart does not make the restarted container ready, even when both starts fall within the
same second, and a line printed at once by a fresh start counts (Docker's ``since`` is the
last incarnation's FinishedAt: not StartedAt's whole second, which still sees the old line,
nor StartedAt itself, which dockerd records after the process may have printed)."""

from __future__ import annotations

import time

import pytest

from supakong.container import parse_docker_time
from supakong.errors import DeployError
from supakong.sandbox import SandboxSpec
from supakong.sandbox.stack import _runtime_binds, docker_client, wait_running

#: Prints READY on its first start only (the flag file survives a restart of the container).
ONCE = "if [ -e /tmp/started ]; then exec sleep 600; fi; touch /tmp/started; echo READY; exec sleep 600"


def _same_second_restart(client, name: str) -> tuple[float, float]:
    """Start at the top of a second, wait for READY, restart at once: both StartedAt."""
    time.sleep(1.02 - time.time() % 1)
    client.start(name)
    first = parse_docker_time(wait_running(client, name, log_marker=b"READY", timeout=10)["StartedAt"])
    client.restart(name, timeout=0)
    second = parse_docker_time(client.inspect_container(name)["State"]["StartedAt"])
    return first, second


def test_a_line_logged_before_a_restart_in_the_same_second_does_not_count(sandbox_spec: SandboxSpec) -> None:
    name = f"{sandbox_spec.name}-wait-test"
    client = docker_client(sandbox_spec)
    try:
        for _attempt in range(3):  # a loaded machine may push the restart into the next second
            if client.containers(all=True, filters={"name": name}):
                client.remove_container(name, force=True)
            client.create_container(
                sandbox_spec.kong_image,
                name=name,
                entrypoint=["/bin/sh", "-c"],
                command=[ONCE],
                host_config=client.create_host_config(network_mode="none", binds=_runtime_binds(sandbox_spec)),
            )
            first, second = _same_second_restart(client, name)
            if int(first) == int(second):
                break
        assert int(first) == int(second), "could not restart within the same second (3 tries)"
        assert second > first
        # The restarted incarnation never prints READY: it must not be reported ready.
        with pytest.raises(DeployError, match="not ready"):
            wait_running(client, name, log_marker=b"READY", timeout=1.5)
    finally:
        client.remove_container(name, force=True)
        client.close()
