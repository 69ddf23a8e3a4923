"""The Kong and Realtime containers through the Docker Engine API: inspect, restart, wait.

Kong reads its declarative file only when it starts, and a running container keeps the old
file after a rename (a single-file bind mount pins the inode), so a changed file always
needs a restart; these helpers make that restart observable and bounded.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .engine import EngineClient
from .errors import RestartError, TransportError


@dataclass(frozen=True)
class ContainerState:
    """What Docker says about one container."""

    name: str
    exists: bool
    status: str = "missing"
    running: bool = False
    restarting: bool = False
    started_at: float = 0.0
    restart_count: int = 0
    exit_code: int = 0
    health: str | None = None
    image: str = ""
    env: Mapping[str, str] = field(default_factory=dict, repr=False)
    mounts: tuple[tuple[str, str], ...] = ()
    healthcheck: tuple[str, ...] = ()
    command: tuple[str, ...] = ()  # entrypoint + command
    network_mode: str = ""
    published: Mapping[str, tuple[tuple[str, str], ...]] = field(default_factory=dict, repr=False)
    addresses: tuple[str, ...] = ()  # the container's own IPs on its networks
    labels: Mapping[str, str] = field(default_factory=dict, repr=False)  # compose's among them
    aliases: tuple[str, ...] = ()  # the names other containers reach it by (network aliases)

    def describe(self) -> str:
        """A short human description, e.g. ``running (healthy), 0 restarts``."""
        health = f" ({self.health})" if self.health else ""
        code = f", exit code {self.exit_code}" if not self.running and self.exists else ""
        return f"{self.status}{health}, {self.restart_count} restarts{code}"

    def mount_source(self, destination: str) -> str | None:
        """The host path bind-mounted at ``destination`` in the container, if any."""
        return next((src for src, dst in self.mounts if dst == destination), None)


def parse_docker_time(value: str) -> float:
    """Docker's RFC 3339 timestamps (nanoseconds, ``Z``) as epoch seconds."""
    if not value or value.startswith("0001-"):
        return 0.0
    head, _, frac = value.rstrip("Z").partition(".")
    seconds = datetime.fromisoformat(head + "+00:00").timestamp()
    return seconds + (float(f"0.{frac[:9]}") if frac else 0.0)


def healthcheck_argv(test: Sequence[str] | None) -> tuple[str, ...]:
    """The container's healthcheck ``Test`` as a command to exec, or ``()`` if it has none:
    ``["CMD", "kong", "health"]`` runs as is, ``["CMD-SHELL", "…"]`` through ``/bin/sh -c``."""
    if not test:
        return ()
    kind, *rest = test
    if kind == "CMD" and rest:
        return tuple(rest)
    if kind == "CMD-SHELL" and rest:
        return ("/bin/sh", "-c", rest[0])
    return ()  # ["NONE"], or a form Docker would not run either


def state_from_inspect(name: str, data: Mapping[str, Any]) -> ContainerState:
    """Build a :class:`ContainerState` from ``GET /containers/{name}/json``."""
    state = data.get("State") or {}
    config = data.get("Config") or {}
    env = dict(item.split("=", 1) for item in config.get("Env") or [] if "=" in item)
    mounts = tuple((m.get("Source", ""), m.get("Destination", "")) for m in data.get("Mounts") or [])
    network = data.get("NetworkSettings") or {}
    published = {
        port: tuple((b.get("HostIp", ""), b.get("HostPort", "")) for b in bindings)
        for port, bindings in (network.get("Ports") or {}).items()
        if bindings
    }
    networks = [n for n in (network.get("Networks") or {}).values() if n]
    addresses = tuple(n["IPAddress"] for n in networks if n.get("IPAddress"))
    aliases = tuple(dict.fromkeys(a for n in networks for a in (*(n.get("Aliases") or ()), *(n.get("DNSNames") or ()))))
    return ContainerState(
        name=name,
        exists=True,
        status=state.get("Status", "unknown"),
        running=bool(state.get("Running")),
        restarting=bool(state.get("Restarting")),
        started_at=parse_docker_time(state.get("StartedAt", "")),
        restart_count=int(data.get("RestartCount") or 0),
        exit_code=int(state.get("ExitCode") or 0),
        health=(state.get("Health") or {}).get("Status"),
        image=config.get("Image", ""),
        env=env,
        mounts=mounts,
        healthcheck=healthcheck_argv((config.get("Healthcheck") or {}).get("Test")),
        command=(*(config.get("Entrypoint") or []), *(config.get("Cmd") or [])),
        network_mode=(data.get("HostConfig") or {}).get("NetworkMode", ""),
        published=published,
        addresses=addresses,
        labels=dict(config.get("Labels") or {}),
        aliases=aliases,
    )


def inspect_container(api: Any, name: str) -> ContainerState:
    """Inspect ``name`` with docker-py's client or the look's :class:`EngineClient`; a
    missing container is a state, not an error."""
    if isinstance(api, EngineClient):
        data = api.inspect_container(name)
        return state_from_inspect(name, data) if data is not None else ContainerState(name=name, exists=False)
    import docker.errors  # lazy: keeps `fab` start-up fast

    try:
        return state_from_inspect(name, api.inspect_container(name))
    except docker.errors.NotFound:
        return ContainerState(name=name, exists=False)
    except docker.errors.APIError as exc:
        raise TransportError(f"docker inspect {name}: {exc.explanation or exc}") from None


def restart_container(api: Any, name: str, stop_timeout: int = 10) -> None:
    """Restart ``name`` (stop with a grace period, then start) through the API."""
    if isinstance(api, EngineClient):
        if not api.restart(name, stop_timeout):
            raise RestartError(f"container {name} does not exist; check kong_container in the inventory")
        return
    import docker.errors  # lazy: keeps `fab` start-up fast

    try:
        api.restart(name, timeout=stop_timeout)
    except docker.errors.NotFound:
        raise RestartError(f"container {name} does not exist; check kong_container in the inventory") from None
    except docker.errors.APIError as exc:
        raise RestartError(f"docker restart {name}: {exc.explanation or exc}") from None


def is_up(state: ContainerState, *, since: float, settle: float, now: float) -> bool:
    """True once the container restarted after ``since``, runs, is healthy (if it has a
    healthcheck) and has stayed up for ``settle`` seconds (no crash loop)."""
    if not state.running or state.restarting or state.started_at <= since:
        return False
    if state.health not in (None, "healthy"):
        return False
    return now - state.started_at >= settle


def is_crash_looping(state: ContainerState, *, restarts_before: int, since: float) -> bool:
    """True when the container exited or restarted again after our restart."""
    if state.started_at <= since and not state.restarting and state.running:
        return False  # our restart has not happened yet
    return (
        state.restarting
        or state.restart_count > restarts_before
        or (not state.running and state.exit_code != 0 and state.started_at > since)
    )


def probe_health(api: Any, state: ContainerState) -> bool:
    """Run the container's own healthcheck command now (``docker exec``), instead of
    waiting up to a whole healthcheck ``interval`` for Docker's next probe. It is the test
    Docker itself would run; exit 0 is what Docker would record as healthy."""
    if not state.healthcheck:
        return False
    try:
        code, _ = exec_in_container(api, state.name, list(state.healthcheck))
    except TransportError:
        return False  # e.g. the container stopped between inspect and exec
    return code == 0


def probed_healthy(api: Any, state: ContainerState) -> ContainerState | None:
    """For a container Docker still reports "starting": its state marked healthy if its
    healthcheck passes now and it is still the same incarnation afterwards; else None."""
    if not (state.health == "starting" and probe_health(api, state)):
        return None
    again = inspect_container(api, state.name)
    same = again.running and same_incarnation(again, state)
    return dataclasses.replace(again, health="healthy") if same and again.health != "unhealthy" else None


def same_incarnation(a: ContainerState, b: ContainerState) -> bool:
    """The same run of the same container (nothing restarted or recreated it in between)."""
    return (a.started_at, a.restart_count, a.running, a.image, a.command) == (
        b.started_at,
        b.restart_count,
        b.running,
        b.image,
        b.command,
    )


def _awaiting_health(state: ContainerState, since: float) -> bool:
    """Restarted after ``since``, running, its healthcheck not passed yet: the listen gate's turn."""
    return state.running and state.started_at > since and state.health == "starting"


#: Without an answer on Kong's port, the healthcheck still runs after these many seconds
#: (doubling, at most the last): the safety net for an address the gate could not guess.
UNGATED_PROBE_AFTER = (1.0, 8.0)
#: The same when the gate's address was proven before the restart (Kong answered there).
PROVEN_GATE_PROBE_AFTER = (8.0, 8.0)


def wait_until_running(
    api: Any,
    name: str,
    *,
    since: float,
    restarts_before: int,
    timeout: float = 60.0,
    settle: float = 2.0,
    listening: Callable[[ContainerState], bool | None] | None = None,
    ungated_after: tuple[float, float] = UNGATED_PROBE_AFTER,
    ask_ahead: Callable[[ContainerState], None] | None = None,
) -> ContainerState:
    """Poll with growing sleeps until the restarted container is up; raise
    :class:`RestartError` with the last state seen on a crash loop or at the deadline.

    "Up" is the container's own definition where it has one: its healthcheck passes,
    either by Docker's probe or by running the same command ourselves right away (Kong's
    ``kong health`` only passes once nginx runs, i.e. once the declarative config loaded).
    Without a healthcheck: running for ``settle`` seconds without a crash.

    ``listening`` (see :mod:`supakong.listen_probe`) is a cheap gate in front of our own
    healthcheck runs: while it says False, the healthcheck runs only on a slow doubling
    schedule (``ungated_after``: first delay, longest delay); True or None (no gate) runs it
    at every poll.

    ``ask_ahead`` (the gate's :meth:`~supakong.listen_probe.ListenGate.ask_ahead`) is called
    before each inspection that the gate will follow, so that its question goes out with
    the inspection instead of after it.

    ``since`` is the container's previous StartedAt (engine clock). "Up for ``settle``
    seconds" is measured as StartedAt plus the time we have watched this incarnation run,
    so clock skew between this machine and the host does not matter.
    """
    deadline = time.monotonic() + timeout
    delay = 0.1
    first_seen: dict[float, float] = {}
    step, longest = ungated_after
    next_ungated = time.monotonic() + step
    state = inspect_container(api, name)
    while True:
        if is_crash_looping(state, restarts_before=restarts_before, since=since):
            raise RestartError(f"{name} is crash-looping after the restart: {state.describe()}")
        if state.running and state.started_at > since:
            if state.healthcheck and state.health == "healthy":
                return state
            gate = listening(state) if listening and _awaiting_health(state, since) else None
            if gate is not False or time.monotonic() >= next_ungated:
                if gate is False:
                    step = min(step * 2, longest)
                    next_ungated = time.monotonic() + step
                if probed := probed_healthy(api, state):
                    return probed
            watched = time.monotonic() - first_seen.setdefault(state.started_at, time.monotonic())
            if not state.healthcheck and is_up(state, since=since, settle=settle, now=state.started_at + watched):
                return state
        if time.monotonic() >= deadline:
            raise RestartError(f"{name} did not come up within {timeout:.0f}s: {state.describe()}")
        time.sleep(min(delay, max(deadline - time.monotonic(), 0.01)))
        delay = min(delay * 1.5, 1.0)
        if ask_ahead and _awaiting_health(state, since):
            ask_ahead(state)
        state = inspect_container(api, name)


def wait_until_healthy(api: Any, name: str, *, timeout: float = 60.0) -> ContainerState:
    """Wait (growing sleeps, deadline) until a running container's healthcheck passes,
    probing it ourselves as :func:`wait_until_running` does."""
    deadline, delay = time.monotonic() + timeout, 0.1
    while True:
        state = inspect_container(api, name)
        if state.running and state.health in (None, "healthy"):
            return state
        if state.running and (probed := probed_healthy(api, state)):
            return probed
        if not state.running or state.health == "unhealthy" or time.monotonic() >= deadline:
            raise RestartError(f"{name} did not become healthy within {timeout:.0f}s: {state.describe()}")
        time.sleep(min(delay, max(deadline - time.monotonic(), 0.01)))
        delay = min(delay * 1.5, 1.0)


def exec_in_container(api: Any, name: str, argv: list[str], stdin: bytes | None = None) -> tuple[int, str]:
    """Run ``argv`` inside the container (``docker exec``); return (exit code, output).

    ``stdin`` (fed to the command, then end-of-file) needs the :class:`EngineClient`.
    """
    if isinstance(api, EngineClient):
        code, raw = api.exec(name, argv, stdin)
        return code, raw.decode("utf-8", "replace")
    if stdin is not None:
        raise TypeError("exec_in_container: stdin needs the EngineClient (HostConnection.engine())")
    import docker.errors  # lazy: keeps `fab` start-up fast

    try:
        exec_id = api.exec_create(name, argv, stdout=True, stderr=True)["Id"]
        output = api.exec_start(exec_id)
        code = api.exec_inspect(exec_id).get("ExitCode")
    except docker.errors.APIError as exc:
        raise TransportError(f"docker exec {name} {argv[0]}: {exc.explanation or exc}") from None
    return int(code if code is not None else -1), output.decode("utf-8", "replace")
