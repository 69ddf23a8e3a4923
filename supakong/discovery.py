"""Which containers on a host are Supabase's gateway, Realtime and database: by image and by
the labels ``docker compose`` sets, never by container name (names are the user's choice:
``supabase-kong``, ``<app>-kong-1`` under Dokploy, ``mudrock-supabase-kong``…).

Pure: it reads the engine's container list (``GET /containers/json?all=1``) and names one
container per role, or says why it cannot (none, or several that nothing tells apart).
``supakong init`` uses it; so will any later step that needs to find a container again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import InventoryError

#: Compose's labels on every container it creates (docker/compose ``api/labels.go``).
PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
WORKING_DIR_LABEL = "com.docker.compose.project.working_dir"
CONFIG_FILES_LABEL = "com.docker.compose.project.config_files"

KONG, REALTIME, DB, ENVOY = "kong", "realtime", "db", "envoy"
ROLES = (KONG, REALTIME, DB, ENVOY)

#: Image repositories per role (Docker Hub's ``library/`` and registry host stripped):
#: Kong OSS (``kong``, ``kong/kong``), Kong Enterprise (``kong/kong-gateway``, the older
#: ``kong/kong-enterprise-edition``), Supabase's Realtime and Postgres, Envoy (Supabase's
#: newer default gateway).
_IMAGES: Mapping[str, tuple[str, ...]] = {
    KONG: ("kong", "kong/kong", "kong/kong-gateway", "kong/kong-enterprise-edition"),
    REALTIME: ("supabase/realtime",),
    DB: ("supabase/postgres",),
    ENVOY: ("envoyproxy/envoy", "envoyproxy/envoy-distroless"),
}
#: Supabase's compose service names, for images built or retagged by the user.
_SERVICES: Mapping[str, tuple[str, ...]] = {
    KONG: ("kong",),
    REALTIME: ("realtime",),
    DB: ("db",),
    ENVOY: ("envoy",),
}


@dataclass(frozen=True)
class ContainerSummary:
    """One row of the engine's container list."""

    name: str
    image: str
    state: str = "running"
    labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def project(self) -> str | None:
        """The compose project, if compose made it."""
        return self.labels.get(PROJECT_LABEL)

    @property
    def service(self) -> str | None:
        """The compose service, if compose made it."""
        return self.labels.get(SERVICE_LABEL)

    @property
    def running(self) -> bool:
        """Running (or restarting: a crash-looping Kong is still the host's Kong)."""
        return self.state in ("running", "restarting")


def summaries(rows: Iterable[Mapping[str, Any]]) -> list[ContainerSummary]:
    """The engine's ``GET /containers/json`` rows as summaries (sorted by name)."""
    found = []
    for row in rows:
        names = [str(n).lstrip("/") for n in row.get("Names") or [] if n]
        if not names:
            continue
        labels = {str(k): str(v) for k, v in (row.get("Labels") or {}).items()}
        found.append(ContainerSummary(names[0], str(row.get("Image") or ""), str(row.get("State") or ""), labels))
    return sorted(found, key=lambda c: c.name)


def image_repository(image: str) -> str:
    """``docker.io/library/kong:2.8.1`` → ``kong``; ``kong/kong-gateway:3.9@sha256:…`` →
    ``kong/kong-gateway``; a registry host (it has a dot or a port) is dropped."""
    reference = image.split("@", 1)[0]
    head, _, tail = reference.rpartition("/")
    if ":" in tail:
        tail = tail.split(":", 1)[0]
    parts = [*(head.split("/") if head else []), tail]
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        parts = parts[1:]
    if parts[:1] == ["library"]:
        parts = parts[1:]
    return "/".join(parts).lower()


def role_of(container: ContainerSummary) -> str | None:
    """The role its image names, else its compose service name; None for anything else."""
    repository = image_repository(container.image)
    for role, repositories in _IMAGES.items():
        if repository in repositories:
            return role
    for role, services in _SERVICES.items():
        if container.service in services:
            return role
    return None


@dataclass(frozen=True)
class Discovery:
    """The container of each role (None: the host has none), and what was considered."""

    kong: ContainerSummary | None
    realtime: ContainerSummary | None
    db: ContainerSummary | None
    envoy: ContainerSummary | None
    containers: tuple[ContainerSummary, ...] = ()

    @property
    def project(self) -> str | None:
        """The compose project of the gateway (Kong, else Envoy), else Realtime's."""
        for found in (self.kong, self.envoy, self.realtime):
            if found is not None and found.project:
                return found.project
        return None


def discover(containers: Sequence[ContainerSummary], project: str | None = None, host: str = "host") -> Discovery:
    """One container per role. With several candidates, a running one beats a stopped one,
    then one in the same compose project as the others; ``project`` (``--project``) narrows
    every role to that compose project first. Raises :class:`InventoryError` naming the
    candidates when two stay equal."""
    pool = [c for c in containers if project is None or c.project == project]
    if project is not None and not pool:
        known = sorted({c.project for c in containers if c.project})
        raise InventoryError(
            f"{host}: no container of compose project {project!r} (projects: {', '.join(known) or 'none'})"
        )
    by_role: dict[str, list[ContainerSummary]] = {role: [] for role in ROLES}
    for container in pool:
        role = role_of(container)
        if role is not None:
            by_role[role].append(container)
    gateway_projects = {c.project for c in by_role[KONG] + by_role[ENVOY] if c.running and c.project}
    chosen = {role: _choose(role, found, gateway_projects, host) for role, found in by_role.items()}
    return Discovery(chosen[KONG], chosen[REALTIME], chosen[DB], chosen[ENVOY], tuple(pool))


def _choose(role: str, found: list[ContainerSummary], projects: set[str], host: str) -> ContainerSummary | None:
    if len(found) <= 1:
        return found[0] if found else None
    preferred: set[str] = projects if len(projects) == 1 else set()

    def rank(c: ContainerSummary) -> tuple[bool, bool]:
        return (not c.running, c.project not in preferred)

    ranked = sorted(found, key=rank)
    ties = [c for c in ranked if rank(c) == rank(ranked[0])]
    if len(ties) == 1:
        return ranked[0]
    listed = ", ".join(f"{c.name} ({c.image}, project {c.project or '-'})" for c in ties)
    raise InventoryError(
        f"{host}: several {role} containers and nothing tells them apart: {listed};"
        " name the compose project with --project"
    )
