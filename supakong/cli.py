"""The ``supakong`` console script and the executor that hands tasks the whole ``-H`` list.

Fabric's executor calls a task once per ``-H`` host, serially (fabric#2156). supakong's
tasks take the list themselves so that :mod:`supakong.fleet` can run hosts in parallel or
rolling; :class:`FleetExecutor` passes ``-H`` through the config as ``supakong_hosts``.
"""

from __future__ import annotations

from typing import Any

import fabric
from fabric.main import Fab
from invoke import Collection

from . import __version__


class FleetExecutor(fabric.Executor):
    """Run each task once, with ``-H`` available as ``c.config.supakong_hosts``."""

    def expand_calls(self, calls: list[Any], apply_hosts: bool = True) -> list[Any]:
        host_str = self.core[0].args.hosts.value if self.core else None
        hosts = [h.strip() for h in (host_str or "").split(",") if h.strip()]
        self.config["supakong_hosts"] = hosts
        return list(super().expand_calls(calls, apply_hosts=False))


def make_program() -> Fab:
    """The ``supakong`` program: Fabric's CLI over supakong's task collection."""
    from supakong.tasks import ns

    namespace: Collection = ns
    return Fab(
        name="supakong",
        version=__version__,
        namespace=namespace,
        executor_class=FleetExecutor,
        config_class=fabric.Config,
    )


def main() -> None:
    """Entry point of the ``supakong`` console script."""
    make_program().run()
