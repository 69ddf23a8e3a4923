"""Flatten a declarative config into entities with their YAML paths and parents.

Kong lets children be nested under their parent or declared at top level with a reference
(`service: <name>`, `consumer: <username>`), and Supabase mixes both styles
(Kong/kong@3.9.3:kong/db/schema/others/declarative_config.lua, nest_foreign_relationships).
Every check works on this flat list, so the nesting is interpreted in one place.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from .findings import Finding, error
from .schema_types import yaml_type
from .yamlpath import child, item

# Plugin DAO entities, present only when their plugin is in KONG_PLUGINS
# (Kong/kong@3.9.3:kong/db/schema/others/declarative_config.lua, DeclarativeConfig.load).
PLUGIN_ENTITY_KEYS: dict[str, str] = {
    "keyauth_credentials": "key-auth",
    "acls": "acl",
    "basicauth_credentials": "basic-auth",
    "jwt_secrets": "jwt",
    "hmacauth_credentials": "hmac-auth",
    "oauth2_credentials": "oauth2",
    "oauth2_authorization_codes": "oauth2",
    "oauth2_tokens": "oauth2",
    "acme_storage": "acme",
    "sessions": "session",
}
CONSUMER_CHILD_KEYS = ("plugins", *PLUGIN_ENTITY_KEYS)
NESTED_KEYS: dict[str, tuple[str, ...]] = {
    "services": ("routes", "plugins"),
    "routes": ("plugins",),
    "consumers": CONSUMER_CHILD_KEYS,
}
TOP_LEVEL_ENTITY_KEYS = ("services", "routes", "consumers", "plugins", *PLUGIN_ENTITY_KEYS)
# The field a top-level child uses to point at its parent, per parent kind.
PARENT_FIELD = {"services": "service", "routes": "route", "consumers": "consumer"}
DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443, "grpc": 80, "grpcs": 443}


@dataclass(frozen=True)
class Entity:
    """One entity of the config: its kind (the YAML key it lives under), path and data."""

    kind: str
    path: str
    data: Mapping[object, object]
    parent: Entity | None = None

    def get(self, key: str) -> object:
        """A field of the entity (None when absent)."""
        return self.data.get(key)


@dataclass(frozen=True)
class Entities:
    """All entities of a document, plus findings about lists or items of the wrong shape."""

    items: tuple[Entity, ...]
    shape_findings: tuple[Finding, ...] = field(default=())

    def of_kind(self, kind: str) -> list[Entity]:
        """Entities declared under `kind` (e.g. `routes`), nested or top level."""
        return [entity for entity in self.items if entity.kind == kind]

    def find(self, kind: str, reference: object) -> Entity | None:
        """Resolve a reference (name, username or id) to an entity of `kind`."""
        key = reference_key(reference)
        if key is None:
            return None
        for entity in self.of_kind(kind):
            if key in (entity.get("id"), entity.get("name"), entity.get("username")):
                return entity
        return None


def reference_key(reference: object) -> str | None:
    """A foreign key as written in declarative config: `name`, or `{id: ...}`/`{name: ...}`."""
    if isinstance(reference, str):
        return reference
    if isinstance(reference, Mapping):
        for key in ("id", "name", "username"):
            if isinstance(reference.get(key), str):
                return str(reference[key])
    return None


def collect_entities(doc: Mapping[object, object]) -> Entities:
    """Walk the document and return every entity with its YAML path."""
    items: list[Entity] = []
    problems: list[Finding] = []
    for key in TOP_LEVEL_ENTITY_KEYS:
        if key in doc:
            _collect_list(doc[key], key, key, None, items, problems)
    return Entities(tuple(items), tuple(problems))


def _collect_list(
    value: object,
    kind: str,
    path: str,
    parent: Entity | None,
    items: list[Entity],
    problems: list[Finding],
) -> None:
    if value is None:
        return
    if not isinstance(value, list):
        problems.append(error(path, f"expected an array (YAML list) of {kind}, got {yaml_type(value)}"))
        return
    for index, data in enumerate(value):
        where = item(path, index)
        if not isinstance(data, Mapping):
            problems.append(error(where, f"expected a record (YAML mapping), got {yaml_type(data)}"))
            continue
        entity = Entity(kind, where, data, parent)
        items.append(entity)
        for nested in NESTED_KEYS.get(kind, ()):
            if nested in data:
                _collect_list(data[nested], nested, child(where, nested), entity, items, problems)


def parent_of(entity: Entity, kind: str, entities: Entities) -> Entity | None:
    """The `kind` parent of an entity: the enclosing one, or the one it references."""
    if entity.parent is not None and entity.parent.kind == kind:
        return entity.parent
    if entity.parent is not None and kind == "services" and entity.parent.kind == "routes":
        return parent_of(entity.parent, "services", entities)
    reference = entity.get(PARENT_FIELD[kind])
    return entities.find(kind, reference) if reference is not None else None


def is_nested_under(entity: Entity, kind: str) -> bool:
    """True when the entity sits (directly) inside a `kind` entity."""
    return entity.parent is not None and entity.parent.kind == kind


def plugins_applying_to(route: Entity, entities: Entities) -> Iterator[Entity]:
    """Plugins that run for requests on `route`: route-level, service-level and global.

    Consumer-scoped plugins are left out: they depend on who calls.
    """
    service = parent_of(route, "services", entities)
    for plugin in entities.of_kind("plugins"):
        if is_nested_under(plugin, "consumers") or plugin.get("consumer") is not None:
            continue
        on_route = _scope(plugin, "routes", entities)
        on_service = _scope(plugin, "services", entities) if on_route is None else None
        if on_route is not None:
            if on_route is route:
                yield plugin
        elif on_service is not None:
            if on_service is service:
                yield plugin
        elif not _names_missing_scope(plugin):
            yield plugin


def _scope(plugin: Entity, kind: str, entities: Entities) -> Entity | None:
    if is_nested_under(plugin, kind):
        return plugin.parent
    reference = plugin.get(PARENT_FIELD[kind])
    return entities.find(kind, reference) if reference is not None else None


def _names_missing_scope(plugin: Entity) -> bool:
    # A plugin whose route/service reference does not resolve is not global: skip it.
    return plugin.get("route") is not None or plugin.get("service") is not None


@dataclass(frozen=True)
class Upstream:
    """Where a service sends requests, after applying the `url` shorthand."""

    protocol: str | None
    host: str | None
    port: int | None
    path: str | None


def effective_upstream(service: Mapping[object, object]) -> Upstream:
    """Resolve protocol/host/port/path; `url` overwrites the explicit fields
    (Kong/kong@3.9.3:kong/db/schema/entities/services.lua:72-103)."""
    url = service.get("url")
    if isinstance(url, str) and url:
        parsed = parse_url(url)
        if parsed is not None:
            return parsed
    protocol = service.get("protocol")
    host = service.get("host")
    port = service.get("port")
    path = service.get("path")
    return Upstream(
        protocol if isinstance(protocol, str) else "http",
        host if isinstance(host, str) else None,
        port if isinstance(port, int) and not isinstance(port, bool) else None,
        path if isinstance(path, str) else None,
    )


def parse_url(url: str) -> Upstream | None:
    """Split a service `url` like Kong's shorthand does; None when it cannot be parsed."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if not parts.scheme or not parts.hostname:
        return None
    scheme = parts.scheme.lower()
    return Upstream(scheme, parts.hostname, port or DEFAULT_PORTS.get(scheme), parts.path or None)
