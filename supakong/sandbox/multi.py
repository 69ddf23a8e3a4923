"""Many sandbox VPSes at once (fleet tests, the benchmark): names, indexes, and bringing them
up in parallel.

Each sandbox is independent (own namespace, sshd, dockerd, containers) except for what
:func:`supakong.sandbox.sandbox_up` shares between them: the unprivileged SSH user and the
client key. The first sandbox is brought up alone so that those are created once; the rest
come up in parallel (most of the time is waiting for dockerd and the containers).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from ..errors import DeployError
from . import sandbox_down, sandbox_reset, sandbox_up
from .inventory import spec_for
from .spec import SandboxSpec

#: Indexes above this would give 10.203.<index>.x addresses outside one octet.
MAX_INDEX = 250


def fleet_specs(prefix: str, count: int, first_index: int) -> list[SandboxSpec]:
    """``count`` sandboxes named ``<prefix>01``… with indexes ``first_index``… (10.203.<index>.2).

    ``prefix`` must start with ``sandbox`` (the allowlist fence) and the indexes must fit.
    """
    if not prefix.startswith("sandbox"):
        raise DeployError(f"sandbox names must start with 'sandbox' (the allowlist fence), got {prefix!r}")
    if count < 1 or first_index < 2 or first_index + count - 1 > MAX_INDEX:
        raise DeployError(f"sandbox indexes {first_index}..{first_index + count - 1} are out of range 2..{MAX_INDEX}")
    width = max(2, len(str(count)))
    return [spec_for(f"{prefix}{i + 1:0{width}d}", first_index + i) for i in range(count)]


@dataclass(frozen=True)
class FleetTiming:
    """How long bringing a fleet up took: the first sandbox alone, then the rest in parallel."""

    first: float
    rest: float

    @property
    def total(self) -> float:
        """Wall-clock seconds for the whole fleet."""
        return self.first + self.rest


def _each(specs: Sequence[SandboxSpec], step: Callable[[SandboxSpec], object], workers: int) -> None:
    """Run ``step`` on every spec with ``workers`` threads; raise the first failure, naming it."""
    if not specs:
        return
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(specs)))) as pool:
        futures = {spec.name: pool.submit(step, spec) for spec in specs}
    errors = [f"{name}: {f.exception()}" for name, f in futures.items() if f.exception() is not None]
    if errors:
        raise DeployError(f"sandbox fleet: {len(errors)} failed; first: {errors[0]}")


def fleet_up(
    specs: Sequence[SandboxSpec],
    *,
    workers: int = 4,
    recreate: bool = False,
    then: Callable[[SandboxSpec], object] | None = None,
) -> FleetTiming:
    """Bring every sandbox up (idempotent); ``recreate`` puts each back in its before state;
    ``then`` runs on each sandbox as soon as it is up (in the same worker).

    A sandbox that fails to come up (a container not ready in time on a loaded machine) is
    tried once more: every step is idempotent.
    """

    def step(spec: SandboxSpec) -> None:
        up = sandbox_reset if recreate else sandbox_up
        try:
            up(spec)
        except DeployError:
            sandbox_up(spec)
        if then is not None:
            then(spec)

    t0 = time.monotonic()
    if specs:
        step(specs[0])
    t1 = time.monotonic()
    _each(specs[1:], step, workers)
    return FleetTiming(first=t1 - t0, rest=time.monotonic() - t1)


def fleet_down(specs: Sequence[SandboxSpec], *, purge: bool = False, workers: int = 8) -> None:
    """Stop every sandbox (and delete its data with ``purge``)."""
    _each(specs, lambda spec: sandbox_down(spec, purge=purge), workers)
