"""The benchmark's sandbox fleet: brought up incrementally (only the hosts the current N
needs are running), with a cheap Kong healthcheck, and the machine's idle CPU measured.

Why the healthcheck: every sandbox Kong runs ``kong health`` (the Python stand-in, about
0.17 s of CPU plus runc) every 2 s. Thirty of them want ~3 CPU-seconds per second, more
than this 2-core machine has, so the background would dominate every measurement (even a
busybox probe every 2 s kept 1.3 of the 2 cores busy with 30 hosts: most of the cost is
runc's exec). Thirty real servers each have their own CPUs for that. The benchmark
therefore recreates its own sandboxes' Kong containers with a busybox port probe
(``nc 127.0.0.1 8000``) every 30 s, an interval common in compose files; the health
semantics are unchanged (healthy once Kong listens, which the stand-in only does after
loading its config). Nobody waits for Docker's next probe: supakong runs the container's
healthcheck command itself after a restart, and so does the ``paramiko+health`` floor.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import Any

from harness import cpu_ticks

from supakong.container import wait_until_healthy
from supakong.sandbox.spec import SandboxSpec
from supakong.sandbox.stack import create_kong, docker_client, ensure_secrets, wait_running

CHEAP_HEALTHCHECK: dict[str, Any] = {
    "test": ["CMD-SHELL", "nc -w 1 127.0.0.1 8000 </dev/null"],
    "interval": 30_000_000_000,
    "timeout": 5_000_000_000,
    "retries": 3,
}
NO_HEALTHCHECK = {"test": ["NONE"]}


class _WithHealthcheck:
    """A docker APIClient whose ``create_container`` uses another healthcheck."""

    def __init__(self, client: Any, healthcheck: dict[str, Any]) -> None:
        self._client = client
        self._healthcheck = healthcheck

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def create_container(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["healthcheck"] = self._healthcheck
        return self._client.create_container(*args, **kwargs)


def quiet_healthchecks(specs: Sequence[SandboxSpec], healthcheck: dict[str, Any] = CHEAP_HEALTHCHECK) -> int:
    """Recreate each sandbox's Kong with ``healthcheck`` (once); return how many changed."""
    changed = 0
    for spec in specs:
        client = docker_client(spec)
        try:
            current = client.inspect_container(spec.kong_container)["Config"].get("Healthcheck") or {}
            if current.get("Test") == healthcheck["test"] and current.get("Interval") == healthcheck.get("interval"):
                continue
            client.remove_container(spec.kong_container, force=True)
            create_kong(_WithHealthcheck(client, healthcheck), spec, ensure_secrets(spec))
            client.start(spec.kong_container)
            changed += 1
        finally:
            client.close()
    for spec in specs:
        client = docker_client(spec)
        try:
            if healthcheck["test"] == ["NONE"]:
                wait_running(client, spec.kong_container)
            else:
                wait_until_healthy(client, spec.kong_container, timeout=60)
        finally:
            client.close()
    return changed


def busy_cores(seconds: float = 3.0) -> float:
    """How many cores were busy (all processes) over ``seconds``, from /proc/stat."""
    busy0, total0 = cpu_ticks()
    time.sleep(seconds)
    busy1, total1 = cpu_ticks()
    return (busy1 - busy0) / max(total1 - total0, 1) * (os.cpu_count() or 1)
