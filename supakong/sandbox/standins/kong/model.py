"""The loaded configuration: services, routes, plugins and consumers, indexed for the proxy.

A :class:`Gateway` is built once from a validated document and never changed afterwards:
the proxy reads one snapshot per request, so a new configuration can be swapped in while
requests (and WebSocket tunnels) of the old one are still running.
"""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

Doc = dict[str, Any]  # a parsed YAML mapping
# DAO entities that a plugin adds to the declarative format; they exist only if it is enabled.
PLUGIN_ENTITIES = {
    "key-auth": "keyauth_credentials",
    "acl": "acls",
    "basic-auth": "basicauth_credentials",
    "jwt": "jwt_secrets",
    "hmac-auth": "hmacauth_credentials",
    "oauth2": "oauth2_credentials",
}


@dataclass(frozen=True)
class Service:
    key: str  # name, or a placeholder for plugin scoping
    protocol: str
    host: str
    port: int
    path: str | None
    connect_timeout: float  # seconds
    read_timeout: float


@dataclass(frozen=True)
class Route:
    key: str
    service: Service | None
    protocols: tuple[str, ...]
    methods: tuple[str, ...]
    hosts: tuple[str, ...]
    headers: tuple[tuple[str, tuple[str, ...]], ...]
    paths: tuple[str, ...]
    strip_path: bool
    preserve_host: bool
    path_handling: str
    regex_priority: int
    implicit_regex: bool  # 2.8 treats paths with regex characters as regexes
    expression: str | None = None  # router_flavor = expressions only
    priority: int = 0


@dataclass(frozen=True)
class Plugin:
    name: str
    config: Doc
    service: str | None
    route: str | None
    consumer: str | None
    runtime: dict[str, Any] = field(default_factory=dict, compare=False)  # compiled Lua, per snapshot


@dataclass
class Consumer:
    id: str
    username: str | None
    custom_id: str | None
    groups: list[str] = field(default_factory=list)


@dataclass
class Gateway:
    """One loaded configuration, indexed the way the proxy needs it."""

    routes: list[Route] = field(default_factory=list)
    plugins: list[Plugin] = field(default_factory=list)
    consumers: dict[str, Consumer] = field(default_factory=dict)  # by id and by username
    keys: dict[str, Consumer] = field(default_factory=dict)
    basic: dict[str, tuple[str, Consumer]] = field(default_factory=dict)


def url_shorthand(url: str) -> Doc:
    """The service ``url`` shorthand. Its parts overwrite protocol/host/port/path, so
    Supabase's ``protocol: ws`` next to ``url: http://...`` ends up as plain http
    (Kong/kong@3.9.3:kong/db/schema/entities/services.lua:72-101)."""
    parts = urlsplit(url)
    fields: Doc = {
        "protocol": parts.scheme,
        "host": parts.hostname,
        "port": parts.port or (443 if parts.scheme == "https" else 80),
    }
    if parts.path:
        fields["path"] = parts.path
    return fields


def ref_key(value: Any) -> str:
    """A foreign key as written: a name/username/id string, or ``{id: ...}``."""
    if isinstance(value, dict):
        return str(value.get("id") or value.get("name") or value.get("username"))
    return str(value)


def build_gateway(doc: Doc, legacy_paths: bool) -> Gateway:
    """Turn a validated document into routes, plugins and consumers (last name wins).
    ``legacy_paths``: Kong 2.8 treats a path with regex characters as a regex."""
    gw, counter = Gateway(), itertools.count(1)
    services: dict[str, Service] = {}
    routes: dict[str, tuple[Doc, Service | None]] = {}
    for svc in doc.get("services") or []:
        service = make_service(svc, f"service#{next(counter)}")
        services.update({key: service for key in (service.key, svc.get("id")) if key})
        for route in svc.get("routes") or []:
            routes[route.get("name") or f"route#{next(counter)}"] = (route, service)
        add_plugins(gw, svc.get("plugins"), service=service.key)
    for route in doc.get("routes") or []:
        target = services.get(ref_key(route["service"])) if route.get("service") else None
        routes[route.get("name") or f"route#{next(counter)}"] = (route, target)
    for key, (route, parent) in routes.items():
        gw.routes.append(make_route(route, key, parent, legacy_paths))
        add_plugins(gw, route.get("plugins"), route=key, service=parent.key if parent else None)
    add_plugins(gw, doc.get("plugins"))
    load_consumers(gw, doc)
    return gw


def make_service(svc: Doc, fallback_key: str) -> Service:
    fields = {**svc, **(url_shorthand(svc["url"]) if svc.get("url") else {})}
    return Service(
        svc.get("name") or fallback_key,
        fields.get("protocol") or "http",
        fields["host"],
        int(fields.get("port") or 80),
        fields.get("path"),
        (fields.get("connect_timeout") or 60000) / 1000,
        (fields.get("read_timeout") or 60000) / 1000,
    )


def make_route(route: Doc, key: str, service: Service | None, legacy_paths: bool) -> Route:
    headers = tuple(
        (name.lower(), tuple(str(v).lower() for v in values))
        for name, values in as_lists(route.get("headers") or {}).items()
    )
    return Route(
        key,
        service,
        tuple(route.get("protocols") or ("http", "https")),
        tuple(m.upper() for m in route.get("methods") or ()),
        tuple(h.lower() for h in route.get("hosts") or ()),
        headers,
        tuple(route.get("paths") or ()),
        route.get("strip_path") is not False,
        bool(route.get("preserve_host")),
        route.get("path_handling") or "v0",
        int(route.get("regex_priority") or 0),
        legacy_paths,
        route.get("expression"),
        int(route.get("priority") or 0),
    )


def as_lists(mapping: Doc) -> dict[str, list[Any]]:
    return {k: v if isinstance(v, list) else [v] for k, v in mapping.items()}


def add_plugins(gw: Gateway, items: list[Doc] | None, **scope: str | None) -> None:
    for item in items or []:
        if item.get("enabled") is False:
            continue
        where = {
            k: scope.get(k) or (ref_key(item[k]) if item.get(k) else None) for k in ("service", "route", "consumer")
        }
        gw.plugins.append(
            Plugin(item["name"], item.get("config") or {}, where["service"], where["route"], where["consumer"])
        )


def load_consumers(gw: Gateway, doc: Doc) -> None:
    """Consumers plus their key-auth keys, acl groups and basic-auth credentials."""
    for item in doc.get("consumers") or []:
        name = item.get("username") or item.get("custom_id")
        cid = str(item.get("id") or uuid.uuid5(uuid.NAMESPACE_URL, f"consumer:{name}"))
        consumer = Consumer(cid, item.get("username"), item.get("custom_id"))
        gw.consumers.update({key: consumer for key in (cid, consumer.username) if key})
        for kind in PLUGIN_ENTITIES.values():
            for cred in item.get(kind) or []:
                attach_credential(gw, kind, cred, consumer)
    for kind in PLUGIN_ENTITIES.values():
        for cred in doc.get(kind) or []:
            attach_credential(gw, kind, cred, gw.consumers[ref_key(cred["consumer"])])


def attach_credential(gw: Gateway, kind: str, cred: Doc, consumer: Consumer) -> None:
    if kind == "keyauth_credentials" and cred.get("key"):
        gw.keys[str(cred["key"])] = consumer
    elif kind == "acls":
        consumer.groups.append(str(cred["group"]))
    elif kind == "basicauth_credentials":
        gw.basic[str(cred["username"])] = (str(cred["password"]), consumer)
