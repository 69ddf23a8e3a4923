"""Learn the host once: what its gateway is and how it loads the file supakong writes.

:func:`build_profile` turns what a look reads (the Kong container's image, entrypoint and
command, env *names*, labels and mounts; the Realtime and database containers; the host's
container list) into a :class:`HostProfile`, a small frozen value that every later step
reads instead of deriving the same facts again: ``init`` writes it into the inventory,
``doctor`` reports it, the validator's :class:`~supakong.kong.target.KongTarget` and the
preflight's expansion come from it, and the deploy chooses by it.

Pure: no I/O, unit-testable from inspect data. It never keeps an env *value* that may be a
secret: only names, and the few settings that are not secrets (``KONG_PLUGINS``,
``KONG_ROUTER_FLAVOR``, ``KONG_DECLARATIVE_CONFIG``, ``SELF_HOST_TENANT_NAME``).

Sources for the rules:

- Supabase's 2.8.1-era compose runs ``eval "echo \\"$(cat ~/temp.yml)\\"" > ~/kong.yml``
  (``supabase/supabase@00069a4c:docker/docker-compose.yml``); the 2026 one mounts
  ``kong-entrypoint.sh``, which substitutes ``$NAME`` with awk over ``ENVIRON``
  (``supabase/supabase@1f37f2a9:docker/volumes/api/kong-entrypoint.sh``). Both read the
  mounted ``/home/kong/temp.yml``.
- ``router_flavor`` defaults to ``traditional`` on 2.8 and ``traditional_compatible`` on
  3.x (``Kong/kong@3.9.3:kong/templates/kong_defaults.lua``).
- Dokploy keeps compose projects under ``/etc/dokploy/compose/<appName>``
  (``Dokploy/dokploy@v0.25.0:packages/server/src/constants/index.ts``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .container import ContainerState
from .discovery import (
    CONFIG_FILES_LABEL,
    PROJECT_LABEL,
    SERVICE_LABEL,
    WORKING_DIR_LABEL,
    ContainerSummary,
    image_repository,
)
from .dokploy.detect import DokployStack, detect
from .errors import InventoryError
from .secrets import is_secret_name

if TYPE_CHECKING:
    from .inventory import HostConfig
    from .kong.target import KongTarget

KONG, ENVOY, NO_GATEWAY = "kong", "envoy", "none"
#: How the entrypoint turns the mounted file into the one Kong loads (the names the "kong"
#: helper's ``KongTarget.expansion`` uses).
EVAL, AWK, NO_EXPANSION = "eval", "awk", "none"
DEFAULT_TENANT = "realtime-dev"
DEFAULT_TEMPLATE_MOUNT = "/home/kong/temp.yml"
KONG_HOME = "/home/kong"
DOKPLOY_COMPOSE_ROOT = "/etc/dokploy/compose/"
#: Names Supabase's kong-entrypoint.sh sets itself before it substitutes (never in the
#: container's env): references to them are the script's business.
SCRIPT_DEFINED = re.compile(r"LUA_[A-Z0-9_]*|WELL_KNOWN_OAUTH_PATH")

_ENTERPRISE_IMAGES = ("kong/kong-gateway", "kong/kong-enterprise-edition")
_VERSION_TAG = re.compile(r"v?(\d+\.\d+(?:\.\d+){0,2})")
_CAT_PATH = re.compile(r"""cat\s+["']?([~/][^\s"'`)]*)""")


@dataclass(frozen=True)
class Owner:
    """Who manages the gateway's containers: ``compose``, ``dokploy`` (a compose project
    Dokploy deploys) or ``unmanaged`` (``docker run``); the evidence for Dokploy."""

    kind: str = "unmanaged"
    project: str | None = None
    service: str | None = None
    working_dir: str | None = None
    config_files: tuple[str, ...] = ()
    markers: tuple[str, ...] = ()


@dataclass(frozen=True)
class HostProfile:
    """What supakong knows about a host's gateway after one look (see the module doc)."""

    gateway: str
    kong_container: str | None = None
    kong_image: str = ""
    kong_version: str | None = None
    kong_version_source: str = ""
    kong_edition: str = "oss"
    kong_plugins: str | None = None  # KONG_PLUGINS as set; None: not set
    router_flavor: str | None = None
    router_flavor_source: str = ""
    expansion: str = EVAL
    entrypoint_script: str | None = None  # in the container
    entrypoint_script_source: str | None = None  # on the host
    template_mount: str | None = None  # where Kong's container sees the file supakong writes
    template_source: str | None = None  # that file on the host
    declarative_config: str | None = None  # KONG_DECLARATIVE_CONFIG
    env_names: frozenset[str] = frozenset()
    secret_env: frozenset[str] = frozenset()  # names only
    owner: Owner = field(default_factory=Owner)
    realtime_container: str | None = None
    realtime_tenant: str = DEFAULT_TENANT
    tenant_source: str = "the default (SELF_HOST_TENANT_NAME not read)"
    db_container: str | None = None
    envoy_container: str | None = None
    dokploy: DokployStack | None = None  # the Dokploy service Kong belongs to (supakong.dokploy)

    @property
    def expands_references(self) -> bool:
        """True when the entrypoint replaces ``$NAME`` in the mounted file at start."""
        return self.expansion in (EVAL, AWK)

    def missing_reference(self, names: Iterable[str]) -> str | None:
        """The first ``$NAME`` of ``names`` the container cannot expand (None: all fine).

        Names the awk entrypoint defines itself (``LUA_*``) are its own business."""
        for name in names:
            if self.expansion == AWK and SCRIPT_DEFINED.fullmatch(name):
                continue
            if name not in self.env_names:
                return name
        return None


def image_version(image: str) -> str | None:
    """The version an image tag names (``kong:2.8.1`` → ``2.8.1``), None for ``latest``,
    a digest or a tag that is not a version."""
    reference = image.split("@", 1)[0]
    last = reference.rsplit("/", 1)[-1]
    if ":" not in last:
        return None
    match = _VERSION_TAG.match(last.rsplit(":", 1)[1])
    return match.group(1) if match else None


def default_router_flavor(version: str | None) -> str | None:
    """Kong's default ``router_flavor`` for a version (None: unknown version)."""
    if not version:
        return None
    return "traditional" if version.split(".", 1)[0] == "2" else "traditional_compatible"


def build_profile(
    kong: ContainerState | None,
    realtime: ContainerState | None = None,
    db: ContainerState | None = None,
    *,
    envoy: str | None = None,
    containers: Sequence[ContainerSummary] = (),
    host_markers: Sequence[str] = (),
) -> HostProfile:
    """The profile of a host from its containers (pure; see the module doc).

    ``containers`` is the host's container list (for Dokploy's own containers) and
    ``host_markers`` what was seen outside Docker (``/etc/dokploy``)."""
    tenant, tenant_source = _tenant(realtime)
    common = {
        "realtime_container": realtime.name if realtime is not None and realtime.exists else None,
        "realtime_tenant": tenant,
        "tenant_source": tenant_source,
        "db_container": db.name if db is not None and db.exists else None,
        "envoy_container": envoy,
    }
    if kong is None or not kong.exists:
        owner = _owner(realtime.labels if realtime is not None else {}, containers, host_markers)
        return HostProfile(gateway=ENVOY if envoy else NO_GATEWAY, owner=owner, **common)  # type: ignore[arg-type]
    env = kong.env
    version, version_source = _version(kong)
    flavor = env.get("KONG_ROUTER_FLAVOR")
    expansion, script = _expansion(kong)
    mount = _template_mount(kong, expansion)
    source = kong.mount_source(mount) if mount else None
    return HostProfile(
        gateway=KONG,
        kong_container=kong.name,
        kong_image=kong.image,
        kong_version=version,
        kong_version_source=version_source,
        kong_edition="enterprise" if image_repository(kong.image) in _ENTERPRISE_IMAGES else "oss",
        kong_plugins=env.get("KONG_PLUGINS"),
        router_flavor=flavor or default_router_flavor(version),
        router_flavor_source="KONG_ROUTER_FLAVOR" if flavor else f"Kong {version or '?'}'s default",
        expansion=expansion,
        entrypoint_script=script,
        entrypoint_script_source=kong.mount_source(script) if script else None,
        template_mount=mount,
        template_source=source,
        declarative_config=env.get("KONG_DECLARATIVE_CONFIG"),
        env_names=frozenset(env),
        secret_env=frozenset(name for name in env if is_secret_name(name)),
        owner=_owner(kong.labels, containers, host_markers),
        dokploy=detect(kong.labels, source),
        **common,  # type: ignore[arg-type]
    )


def _tenant(realtime: ContainerState | None) -> tuple[str, str]:
    if realtime is None or not realtime.exists:
        return DEFAULT_TENANT, "the default (no Realtime container read)"
    name = realtime.env.get("SELF_HOST_TENANT_NAME")
    if name:
        return name, f"SELF_HOST_TENANT_NAME of {realtime.name}"
    return DEFAULT_TENANT, f"the default (SELF_HOST_TENANT_NAME is not set on {realtime.name})"


def _version(kong: ContainerState) -> tuple[str | None, str]:
    tagged = image_version(kong.image)
    if tagged:
        return tagged, f"the image tag of {kong.image}"
    from_env = kong.env.get("KONG_VERSION")
    if from_env and _VERSION_TAG.fullmatch(from_env):
        return from_env.lstrip("v"), "KONG_VERSION of the image"
    return None, f"{kong.image} names no version"


def _expansion(kong: ContainerState) -> tuple[str, str | None]:
    """(how the entrypoint expands the mounted file, the mounted entrypoint script)."""
    if any("eval" in part for part in kong.command):
        return EVAL, None
    mounted = {destination for _, destination in kong.mounts}
    for part in kong.command:
        if part in mounted and part.endswith(".sh"):
            return AWK, part
    return NO_EXPANSION, None


def _template_mount(kong: ContainerState, expansion: str) -> str | None:
    """Where the container sees the file supakong writes (the one the entrypoint reads)."""
    mounted = [destination for _, destination in kong.mounts]
    if expansion == EVAL:
        for part in kong.command:
            match = _CAT_PATH.search(part)
            if match:
                path = match.group(1)
                path = KONG_HOME + path[1:] if path.startswith("~") else path
                if path in mounted:
                    return path
    if expansion == NO_EXPANSION:
        declared = kong.env.get("KONG_DECLARATIVE_CONFIG")
        if declared in mounted:
            return declared
    return DEFAULT_TEMPLATE_MOUNT if DEFAULT_TEMPLATE_MOUNT in mounted else None


def _owner(labels: Mapping[str, str], containers: Sequence[ContainerSummary], host_markers: Sequence[str]) -> Owner:
    working_dir = labels.get(WORKING_DIR_LABEL)
    markers = list(host_markers)
    if working_dir and working_dir.startswith(DOKPLOY_COMPOSE_ROOT):
        markers.append(f"compose working dir {working_dir} is under {DOKPLOY_COMPOSE_ROOT}")
    if labels.get("com.docker.stack.namespace"):
        markers.append(f"a Docker stack ({labels['com.docker.stack.namespace']}), as Dokploy deploys them")
    for container in containers:
        if container.name == "dokploy-traefik" or image_repository(container.image) == "dokploy/dokploy":
            markers.append(f"container {container.name} ({container.image})")
    project = labels.get(PROJECT_LABEL)
    kind = "dokploy" if working_dir and working_dir.startswith(DOKPLOY_COMPOSE_ROOT) else "compose"
    files = tuple(f for f in (labels.get(CONFIG_FILES_LABEL) or "").split(",") if f)
    return Owner(
        kind=kind if project else "unmanaged",
        project=project,
        service=labels.get(SERVICE_LABEL),
        working_dir=working_dir,
        config_files=files,
        markers=tuple(dict.fromkeys(markers)),
    )


def kong_target(host: HostConfig, profile: HostProfile) -> KongTarget:
    """The Kong a file for ``host`` is validated against: what the inventory pins
    (``kong_version``, ``kong_edition``, ``kong_plugins``, ``realtime_tenant``), else what
    the profile read from the containers, with the host's own expansion, router flavor and
    the variables that expansion can substitute (the container's env names, plus the ones
    ``kong-entrypoint.sh`` sets itself)."""
    from .kong.target import SUPABASE_ENV, SUPABASE_PLUGINS, KongTarget  # the validator loads only when used

    tenant = host.realtime_tenant or profile.realtime_tenant
    plugins = host.kong_plugins or profile.kong_plugins
    version = host.kong_version or profile.kong_version
    if version is None:
        if profile.gateway != KONG:
            raise InventoryError(
                f"{host.name}: container {host.kong_container} does not exist and kong_version is not set;"
                " set kong_container (and kong_version) in the inventory"
            )
        raise InventoryError(
            f"hosts/{host.name}/kong_version: image {profile.kong_image!r} does not name a Kong version:"
            " pin kong_version in the inventory (e.g. 2.8.1 or 3.9.1) so the config is validated against"
            " the Kong that will load it"
        )
    if plugins is None:
        names: tuple[str, ...] = SUPABASE_PLUGINS
    else:
        names = tuple(p.strip() for p in plugins.split(",") if p.strip()) or ("bundled",)
    edition = host.kong_edition or (profile.kong_edition if profile.gateway == KONG else "oss")
    seen: dict[str, Any] = {}
    if profile.gateway == KONG:  # the host's own container: its entrypoint, router and env
        names_set = set(profile.env_names)
        if profile.expansion == AWK:
            names_set |= {n for n in SUPABASE_ENV[AWK] if SCRIPT_DEFINED.fullmatch(n)}
        seen = {
            "expansion": profile.expansion,
            "router_flavor": profile.router_flavor or "",
            "env_names": tuple(sorted(names_set)),
        }
    try:
        return KongTarget(version=version, edition=edition, plugins=names, realtime_tenant=tenant, **seen)
    except ValueError as exc:
        raise InventoryError(f"hosts/{host.name}/kong_version: {exc}") from None
