"""Tell from the Kong container alone whether Dokploy manages the stack, and where the file
Kong reads lives in Dokploy's layout (pure: labels and mounts in, a frozen value out).

Dokploy (``Dokploy/dokploy`` v0.22.5–v0.30.2) keeps a compose service under
``/etc/dokploy/compose/<appName>/`` (``packages/server/src/constants/index.ts``):

- ``code/``: the compose file, rewritten from Dokploy's database (raw) or a fresh git clone on
  every deploy (``utils/providers/raw.ts``, ``git.ts``): a hand edit there is lost;
- ``files/<filePath>``: a file mount ("Volumes" in the service's Advanced tab), written from
  Dokploy's stored copy when the mount is created or saved (``services/mount.ts``), never by a
  deploy: a hand edit there survives until the next save of that mount, which reverts it.

Compose mode: ``docker compose -p <appName>`` run in ``code/`` gives the labels
``com.docker.compose.project=<appName>`` and ``…project.working_dir=/etc/dokploy/compose/
<appName>/code``. Stack mode: ``docker stack deploy … <appName>`` gives
``com.docker.stack.namespace=<appName>`` and no compose labels; the bind mount's source
under ``/etc/dokploy/compose/<appName>/`` says it is Dokploy's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

COMPOSE_ROOT = "/etc/dokploy/compose/"
PROJECT_LABEL = "com.docker.compose.project"
WORKING_DIR_LABEL = "com.docker.compose.project.working_dir"
STACK_LABEL = "com.docker.stack.namespace"
SWARM_SERVICE_LABEL = "com.docker.swarm.service.name"
COMPOSE, STACK = "compose", "stack"
FILES, CODE, ELSEWHERE = "files", "code", "elsewhere"


@dataclass(frozen=True)
class DokployStack:
    """A Dokploy compose service seen from its Kong container."""

    app_name: str
    mode: str  # COMPOSE (docker compose -p) or STACK (docker stack deploy)
    location: str  # where Kong's file is: FILES (a file mount), CODE (the compose's code/), ELSEWHERE
    source: str | None  # the file on the host
    file_path: str | None  # the file mount's filePath ("/volumes/api/kong.yml") when in files/
    swarm_service: str | None = None  # stack mode: "<appName>_kong"

    @property
    def base(self) -> str:
        """``/etc/dokploy/compose/<appName>``."""
        return COMPOSE_ROOT + self.app_name

    def describe(self) -> str:
        """One line: appName, mode and where the file is."""
        where = {
            FILES: f"file mount {self.file_path} (files/)",
            CODE: f"{self.source} in code/ (rewritten on every Dokploy deploy)",
            ELSEWHERE: f"{self.source or 'no mounted file'} (outside {self.base})",
        }[self.location]
        return f"Dokploy-managed: appName {self.app_name}, {self.mode} mode, {where}"


def detect(labels: Mapping[str, str], source: str | None) -> DokployStack | None:
    """The Dokploy service the Kong container belongs to (None: not Dokploy's). ``source``:
    the host file bind-mounted where Kong's entrypoint reads its config."""
    working_dir = labels.get(WORKING_DIR_LABEL) or ""
    namespace = labels.get(STACK_LABEL)
    if working_dir.startswith(COMPOSE_ROOT):
        app = labels.get(PROJECT_LABEL) or working_dir[len(COMPOSE_ROOT) :].split("/", 1)[0]
        mode, service = COMPOSE, None
    elif namespace and (source or "").startswith(f"{COMPOSE_ROOT}{namespace}/"):
        app, mode, service = namespace, STACK, labels.get(SWARM_SERVICE_LABEL)
    else:
        return None
    location, file_path = _location(app, source)
    return DokployStack(app, mode, location, source, file_path, service)


def _location(app: str, source: str | None) -> tuple[str, str | None]:
    base = f"{COMPOSE_ROOT}{app}/"
    if source and source.startswith(base + "files/"):
        return FILES, "/" + source[len(base + "files/") :]
    if source and source.startswith(base + "code/"):
        return CODE, None
    return ELSEWHERE, None
