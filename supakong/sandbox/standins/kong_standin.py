"""A small stand-in for the Kong OSS gateway in DB-less mode (2.8.x and 3.x).

Real Kong cannot be installed in the sandbox, so this single file plays its part on the
command line and on the wire. It refuses the declarative files Kong refuses, with Kong's
error tree. It routes requests like Kong's traditional router and runs the plugins
self-hosted Supabase uses. It tunnels requests to the upstream byte for byte, WebSocket
upgrades included.

It deliberately shares no code with the ``supakong`` package: it is the "real Kong" that
the project's own validator is checked against. Needs only the standard library and PyYAML.

Command line (the container's ``/bin/kong`` runs ``python kong_standin.py "$@"``)::

    kong docker-start | start     serve the proxy until SIGTERM/SIGINT
    kong health [-p PREFIX]       exit 0 if the pid in $KONG_PREFIX/pids/nginx.pid is alive
    kong config parse FILE        validate FILE like start does ("parse successful")
    kong version                  "Kong 2.8.1"

Environment: KONG_DECLARATIVE_CONFIG, KONG_PLUGINS (default ``bundled``), KONG_VERSION
(default 2.8.1), KONG_PROXY_LISTEN (default 0.0.0.0:8000), KONG_PREFIX (default
/usr/local/kong), KONG_DNS_HOSTSFILE (default /etc/hosts). Only in the stand-in:
KONG_STANDIN_HOSTS_ONLY=1 resolves names from the hosts file alone, so tests send no DNS.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import http
import ipaddress
import itertools
import json
import os
import re
import signal
import socket
import sys
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Union
from urllib.parse import parse_qsl, urlencode, urlsplit

import yaml

Doc = dict[str, Any]  # a parsed YAML mapping
ErrTree = dict[Any, Any]  # Kong's err_t: field names (str) or 1-based entries (int)
Version = tuple[int, int, int]
Headers = list[tuple[str, str]]

PROTOCOLS = ("grpc", "grpcs", "http", "https", "tcp", "tls", "tls_passthrough", "udp")
ONE_OF_PROTOCOLS = "expected one of: " + ", ".join(PROTOCOLS)
BUNDLED_PLUGINS = frozenset(
    """
    acl acme aws-lambda azure-functions basic-auth bot-detection correlation-id cors datadog
    file-log grpc-gateway grpc-web hmac-auth http-log ip-restriction jwt key-auth ldap-auth
    loggly oauth2 opentelemetry post-function pre-function prometheus proxy-cache
    rate-limiting request-size-limiting request-termination request-transformer
    response-ratelimiting response-transformer session statsd syslog tcp-log udp-log zipkin
    """.split()
)  # noqa: SIM905 - a word list reads better than 40 quoted strings
# DAO entities that a plugin adds to the declarative format; they exist only if it is enabled.
PLUGIN_ENTITIES = {
    "key-auth": "keyauth_credentials",
    "acl": "acls",
    "basic-auth": "basicauth_credentials",
    "jwt": "jwt_secrets",
    "hmac-auth": "hmacauth_credentials",
    "oauth2": "oauth2_credentials",
}
# The access phase runs plugins by descending priority (kong/plugins/*/handler.lua, 2.8.1).
PRIORITIES = {
    "cors": 2000,
    "key-auth": 1003,
    "basic-auth": 1001,
    "ip-restriction": 990,
    "acl": 950,
    "request-transformer": 801,
    "request-termination": 2,
}
LUA = "/usr/local/share/lua/5.1/kong"
RUN_HINT = "\n\n  Run with --v (verbose) or --vv (debug) for more details"
JSON_TYPE = "application/json; charset=utf-8"
CORS_METHODS = ("GET", "HEAD", "PUT", "PATCH", "POST", "DELETE", "OPTIONS", "TRACE", "CONNECT")


@dataclass(frozen=True)
class Settings:
    """The node configuration Kong reads from its KONG_* environment."""

    version: Version
    plugins: frozenset[str]
    declarative_config: str | None
    proxy_listen: str
    prefix: str
    hostsfile: str
    hosts_only: bool

    @property
    def version_text(self) -> str:
        return ".".join(map(str, self.version))

    @property
    def pid_file(self) -> str:
        return os.path.join(self.prefix, "pids", "nginx.pid")


def load_settings(env: dict[str, str]) -> Settings:
    """Read the KONG_* variables the stand-in understands."""
    digits = [int(n) for n in re.findall(r"\d+", env.get("KONG_VERSION", "2.8.1"))] + [0, 0, 0]
    names = {p.strip() for p in env.get("KONG_PLUGINS", "bundled").split(",") if p.strip()}
    if "bundled" in names:
        names = (names - {"bundled"}) | BUNDLED_PLUGINS
    return Settings(
        (digits[0], digits[1], digits[2]),
        frozenset(names - {"off"}),
        env.get("KONG_DECLARATIVE_CONFIG") or None,
        env.get("KONG_PROXY_LISTEN", "0.0.0.0:8000"),
        env.get("KONG_PREFIX", "/usr/local/kong"),
        env.get("KONG_DNS_HOSTSFILE", "/etc/hosts"),
        env.get("KONG_STANDIN_HOSTS_ONLY", "") not in ("", "0", "off"),
    )


# ----------------------------------------------------------------------------- schemas
STR, BOOL, INT, NUM, ARRAY, SET, MAP, ANY, NESTED = (
    "string",
    "boolean",
    "integer",
    "number",
    "array",
    "set",
    "map",
    "any",
    "nested",
)
Spec = dict[str, Union[str, "Spec"]]  # field name -> kind, or a nested record's spec
COMMON: Spec = {"id": STR, "created_at": INT, "updated_at": INT, "tags": SET, "_comment": STR, "_ignore": ANY}
SERVICE_FIELDS: Spec = {
    **COMMON,
    "name": STR,
    "retries": INT,
    "protocol": STR,
    "host": STR,
    "port": INT,
    "path": STR,
    "connect_timeout": INT,
    "write_timeout": INT,
    "read_timeout": INT,
    "client_certificate": ANY,
    "tls_verify": BOOL,
    "tls_verify_depth": INT,
    "ca_certificates": SET,
    "enabled": BOOL,
    "url": STR,
    "routes": NESTED,
    "plugins": NESTED,
}
ROUTE_FIELDS: Spec = {
    **COMMON,
    "name": STR,
    "protocols": SET,
    "methods": SET,
    "hosts": SET,
    "paths": SET,
    "headers": MAP,
    "snis": SET,
    "sources": ANY,
    "destinations": ANY,
    "https_redirect_status_code": INT,
    "regex_priority": INT,
    "strip_path": BOOL,
    "path_handling": STR,
    "preserve_host": BOOL,
    "request_buffering": BOOL,
    "response_buffering": BOOL,
    "service": ANY,
    "plugins": NESTED,
}
CONSUMER_FIELDS: Spec = {**COMMON, "username": STR, "custom_id": STR, "plugins": NESTED}
PLUGIN_FIELDS: Spec = {
    **COMMON,
    "name": STR,
    "config": NESTED,
    "enabled": BOOL,
    "protocols": SET,
    "service": ANY,
    "route": ANY,
    "consumer": ANY,
}
CREDENTIAL_FIELDS: dict[str, Spec] = {
    "keyauth_credentials": {**COMMON, "consumer": ANY, "key": STR, "ttl": INT},
    "acls": {**COMMON, "consumer": ANY, "group": STR},
    "basicauth_credentials": {**COMMON, "consumer": ANY, "username": STR, "password": STR},
}
REQUIRED_FIELDS = {"acls": ("group",), "basicauth_credentials": ("username", "password")}
UNCHECKED_ENTITIES = (
    "upstreams",
    "targets",
    "certificates",
    "ca_certificates",
    "snis",
    "workspaces",
    "parameters",
    "clustering_data_planes",
)
TYPE_ERRORS = {
    STR: "expected a string",
    BOOL: "expected a boolean",
    INT: "expected an integer",
    NUM: "expected a number",
    ARRAY: "expected an array",
    SET: "expected a set",
    MAP: "expected a map",
}


def plugin_config_spec(name: str, version: Version) -> Spec | None:
    """Config fields of the plugins the proxy implements; None means "not checked"."""
    v3 = version >= (3, 0, 0)
    parts: Spec = {"body": ARRAY, "headers": ARRAY, "querystring": ARRAY}
    specs: dict[str, Spec] = {
        "key-auth": {
            "key_names": ARRAY,
            "hide_credentials": BOOL,
            "anonymous": STR,
            "key_in_header": BOOL,
            "key_in_query": BOOL,
            "key_in_body": BOOL,
            "run_on_preflight": BOOL,
            **({"realm": STR} if v3 else {}),
        },
        "acl": {
            "allow": ARRAY,
            "deny": ARRAY,
            "hide_groups_header": BOOL,
            **({"always_use_authenticated_groups": BOOL} if v3 else {"whitelist": ARRAY, "blacklist": ARRAY}),
        },
        "cors": {
            "origins": ARRAY,
            "headers": ARRAY,
            "exposed_headers": ARRAY,
            "methods": ARRAY,
            "max_age": NUM,
            "credentials": BOOL,
            "preflight_continue": BOOL,
            **({"private_network": BOOL} if version >= (3, 5, 0) else {}),
        },
        "request-transformer": {
            "http_method": STR,
            "remove": parts,
            "rename": parts,
            "replace": {**parts, "uri": STR},
            "add": parts,
            "append": parts,
        },
        "request-termination": {
            "status_code": INT,
            "message": STR,
            "body": STR,
            "content_type": STR,
            "trigger": STR,
            "echo": BOOL,
        },
        "basic-auth": {"hide_credentials": BOOL, "anonymous": STR, **({"realm": STR} if v3 else {})},
        "ip-restriction": {"allow": ARRAY, "deny": ARRAY, "status": INT, "message": STR},
    }
    return specs.get(name)


def check_value(value: Any, kind: str | Spec) -> str | ErrTree | None:
    """Kong's type check of one field value: a message, a subtree, or None when valid."""
    if isinstance(kind, dict):
        if not isinstance(value, dict):
            return "expected a record"
        return check_fields(value, kind) or None
    if kind in (ANY, NESTED):
        return None
    valid = {
        STR: isinstance(value, str),
        BOOL: isinstance(value, bool),
        INT: isinstance(value, int) and not isinstance(value, bool),
        NUM: isinstance(value, (int, float)) and not isinstance(value, bool),
        ARRAY: isinstance(value, list),
        SET: isinstance(value, list),
        MAP: isinstance(value, dict),
    }[kind]
    if not valid:
        return TYPE_ERRORS[kind]
    if kind in (ARRAY, SET):  # every array the stand-in checks holds strings
        bad = {i: "expected a string" for i, v in enumerate(value, 1) if not isinstance(v, str)}
        return bad or None
    return None


def check_fields(record: Doc, spec: Spec) -> ErrTree:
    """Unknown fields and field types of one record; null means "unset", as in Kong."""
    errs: ErrTree = {}
    for key, value in record.items():
        if value is None:
            continue
        if key not in spec:
            errs[key] = "unknown field"
        elif (err := check_value(value, spec[key])) is not None:
            errs[key] = err
    return errs


def url_shorthand(url: str) -> Doc:
    """The service ``url`` shorthand. Its parts overwrite protocol/host/port/path, so
    Supabase's ``protocol: ws`` next to ``url: http://...`` ends up as plain http."""
    parts = urlsplit(url)
    fields: Doc = {
        "protocol": parts.scheme,
        "host": parts.hostname,
        "port": parts.port or (443 if parts.scheme == "https" else 80),
    }
    if parts.path:
        fields["path"] = parts.path
    return fields


# ----------------------------------------------------------------------------- validation
class Validator:
    """Builds Kong's error tree for a declarative document: schemas, then references."""

    def __init__(self, settings: Settings) -> None:
        self.version = settings.version
        self.plugins = settings.plugins
        self.entity_keys = {e for p, e in PLUGIN_ENTITIES.items() if p in settings.plugins}

    def validate(self, doc: Doc) -> ErrTree:
        """All errors of the document; an empty tree means Kong would load it."""
        return self.check_document(doc) or self.check_references(doc)

    def credential_check(self, kind: str, nested: bool) -> Callable[[Doc, ErrTree], None]:
        return lambda cred, errs: self.check_credential(kind, nested, cred, errs)

    def check_document(self, doc: Doc) -> ErrTree:
        errs: ErrTree = {}
        self.check_format_version(doc.get("_format_version"), errs)
        checks: dict[str, Callable[[Doc, ErrTree], None]] = {
            "services": self.check_service,
            "routes": self.check_route,
            "consumers": self.check_consumer,
            "plugins": self.check_plugin,
            **{key: self.credential_check(key, False) for key in self.entity_keys},
            **{key: lambda item, e: None for key in UNCHECKED_ENTITIES},
        }
        for key, value in doc.items():
            if key in ("_format_version", "_ignore") or value is None:
                continue
            if key in ("_transform", "_comment"):
                if err := check_value(value, BOOL if key == "_transform" else STR):
                    errs[key] = err
            elif key in checks:
                self.each_entry(value, errs, key, checks[key])
            else:
                errs[key] = "unknown field"
        return errs

    def check_format_version(self, value: Any, errs: ErrTree) -> None:
        accepted = ["1.1", "2.1"] + (["3.0"] if self.version >= (3, 0, 0) else [])
        if value is None:
            errs["_format_version"] = "required field missing"
        elif not isinstance(value, str):
            errs["_format_version"] = "expected a string"
        elif value not in accepted:
            errs["_format_version"] = "expected one of: " + ", ".join(accepted)

    @staticmethod
    def each_entry(items: Any, errs: ErrTree, key: str, check: Callable[[Doc, ErrTree], None]) -> None:
        """Run ``check`` on every entry of an entity list, collecting "entry N" subtrees."""
        if not isinstance(items, list):
            errs[key] = "expected an array"
            return
        entries: ErrTree = {}
        for index, item in enumerate(items, 1):
            entry: ErrTree = {}
            if isinstance(item, dict):
                check(item, entry)
            else:
                entries[index] = "expected a record"
            if entry:
                entries[index] = entry
        if entries:
            errs[key] = entries

    def check_nested(self, parent: Doc, errs: ErrTree, checks: dict[str, Callable[[Doc, ErrTree], None]]) -> None:
        for key, check in checks.items():
            if parent.get(key) is not None and key not in errs:
                self.each_entry(parent[key], errs, key, check)

    def check_service(self, service: Doc, errs: ErrTree) -> None:
        fields = dict(service)
        try:
            if isinstance(service.get("url"), str):
                fields.update(url_shorthand(service["url"]))
        except ValueError:  # e.g. a non-numeric port
            errs["url"] = f"invalid url: {service['url']}"
        errs.update(check_fields(fields, SERVICE_FIELDS))
        if isinstance(fields.get("protocol"), str) and fields["protocol"] not in PROTOCOLS:
            errs["protocol"] = ONE_OF_PROTOCOLS
        if not fields.get("host") and "host" not in errs:
            errs["host"] = "required field missing"
        port = fields.get("port")
        if isinstance(port, int) and not 0 <= port <= 65535:
            errs["port"] = "value should be between 0 and 65535"
        if isinstance(fields.get("path"), str) and not fields["path"].startswith("/"):
            errs["path"] = "should start with: /"
        self.check_nested(service, errs, {"routes": self.check_route, "plugins": self.check_plugin})

    def check_route(self, route: Doc, errs: ErrTree) -> None:
        errs.update(check_fields(route, ROUTE_FIELDS))
        protocols = route.get("protocols") or ["http", "https"]
        known = [p for p in protocols if p in PROTOCOLS]
        if "protocols" not in errs:
            bad = {i: ONE_OF_PROTOCOLS for i, p in enumerate(protocols, 1) if p not in PROTOCOLS}
            if not known:  # no subschema matches: Kong fails on the subschema lookup first
                errs["protocols"] = f"unknown type: {protocols[0]}"
            elif bad:
                errs["protocols"] = bad
        if "paths" not in errs and route.get("paths"):
            bad = {i: e for i, p in enumerate(route["paths"], 1) if (e := self.path_error(p))}
            if bad:
                errs["paths"] = bad
        if route.get("path_handling") not in (None, "v0", "v1"):
            errs["path_handling"] = "expected one of: v0, v1"
        first = known[0] if known else None
        rules = ["methods", "hosts", "headers", "paths"] + (["snis"] if first == "https" else [])
        if first in ("http", "https") and not any(route.get(r) for r in rules):
            listed = ", ".join(f"'{r}'" for r in rules)
            errs["@entity"] = {1: f"must set one of {listed} when 'protocols' is '{first}'"}
        self.check_nested(route, errs, {"plugins": self.check_plugin})

    def path_error(self, path: str) -> str | None:
        if self.version >= (3, 0, 0):
            if path.startswith(("/", "~/")):
                return None
            return "should start with: / (fixed path) or ~/ (regex path)"
        return None if path.startswith("/") else "should start with: /"

    def check_consumer(self, consumer: Doc, errs: ErrTree) -> None:
        errs.update(check_fields(consumer, {**CONSUMER_FIELDS, **{key: NESTED for key in self.entity_keys}}))
        if not consumer.get("username") and not consumer.get("custom_id"):
            errs["@entity"] = {1: "at least one of these fields must be non-empty: 'custom_id', 'username'"}
        self.check_nested(
            consumer,
            errs,
            {"plugins": self.check_plugin, **{key: self.credential_check(key, True) for key in self.entity_keys}},
        )

    def check_credential(self, kind: str, nested: bool, cred: Doc, errs: ErrTree) -> None:
        spec = CREDENTIAL_FIELDS.get(kind, {key: ANY for key in cred})
        errs.update(check_fields(cred, spec))
        for name in REQUIRED_FIELDS.get(kind, ()) + (() if nested else ("consumer",)):
            if cred.get(name) is None:
                errs[name] = "required field missing"

    def check_plugin(self, plugin: Doc, errs: ErrTree) -> None:
        extra: Spec = {"instance_name": STR, "ordering": ANY} if self.version >= (3, 0, 0) else {}
        errs.update(check_fields(plugin, {**PLUGIN_FIELDS, **extra}))
        name, config = plugin.get("name"), plugin.get("config") or {}
        if name is None:
            errs["name"] = "required field missing"
        elif isinstance(name, str) and name not in self.plugins:
            errs["name"] = f"plugin '{name}' not enabled; add it to the 'plugins' configuration property"
        elif not isinstance(config, dict):
            errs["config"] = "expected a record"
        elif (spec := plugin_config_spec(name, self.version)) and (bad := check_fields(config, spec)):
            errs["config"] = bad
        elif entity_error := self.plugin_entity_check(name, config):
            errs["@entity"] = {1: entity_error}

    @staticmethod
    def plugin_entity_check(name: str, config: Doc) -> str | None:
        """The cross-field checks of the acl and request-termination schemas."""
        if name == "acl":
            fields = "'config.allow', 'config.deny'"
            given = [k for k in ("allow", "deny", "whitelist", "blacklist") if config.get(k)]
            if not given:
                return f"at least one of these fields must be non-empty: {fields}"
            if len(given) > 1:
                return f"only one of these fields must be non-empty: {fields}"
        status = config.get("status_code")
        if name == "request-termination" and isinstance(status, int) and not 100 <= status <= 599:
            return "value should be between 100 and 599"
        return None

    def check_references(self, doc: Doc) -> ErrTree:
        """Foreign keys of top-level entities, then (3.4+) uniqueness, like ``flatten``."""
        known = collect_entities(doc)
        errs: ErrTree = {}
        targets = {"service": "services", "route": "routes", "consumer": "consumers"}
        for entity in ("routes", "plugins", *sorted(self.entity_keys)):
            for index, item in enumerate(doc.get(entity) or [], 1):
                for ref_field, target in targets.items():
                    value = item.get(ref_field)
                    if value is None or ref_key(value) in known[target]:
                        continue
                    text = value if isinstance(value, str) else json.dumps(value)
                    found = errs.setdefault(entity, {}).setdefault(item.get("name") or index, {})
                    found[len(found) + 1] = f"invalid reference '{ref_field}: {text}' (no such entry in '{target}')"
        if self.version >= (3, 4, 0):
            check_uniqueness(doc, errs)
        return errs


def check_uniqueness(doc: Doc, errs: ErrTree) -> None:
    """3.4+ refuses a repeated unique key; 2.8 silently keeps the last entity."""
    keys = {"services": "name", "routes": "name", "consumers": "username", "keyauth_credentials": "key"}
    seen: dict[str, set[Any]] = {entity: set() for entity in keys}
    for entity, index, item in walk_entities(doc):
        value = item.get(keys.get(entity, ""))
        if value is None:
            continue
        if value in seen[entity]:
            errs.setdefault(entity, {})[index] = (
                f"uniqueness violation: '{entity}' entity with {keys[entity]} set to '{value}' already declared"
            )
        seen[entity].add(value)


def walk_entities(doc: Doc) -> Iterable[tuple[str, int, Doc]]:
    """Yield (entity, index in its list, item) for top-level and nested entities."""
    for entity in ("services", "routes", "consumers", "plugins", *PLUGIN_ENTITIES.values()):
        for index, item in enumerate(doc.get(entity) or [], 1):
            if isinstance(item, dict):
                yield entity, index, item
                yield from walk_entities(item)


def ref_key(value: Any) -> str:
    """A foreign key as written: a name/username/id string, or ``{id: ...}``."""
    if isinstance(value, dict):
        return str(value.get("id") or value.get("name") or value.get("username"))
    return str(value)


def collect_entities(doc: Doc) -> dict[str, set[str]]:
    """Names and ids of every service, route and consumer, nested ones included."""
    known: dict[str, set[str]] = {"services": set(), "routes": set(), "consumers": set()}
    for entity, _, item in walk_entities(doc):
        if entity in known:
            known[entity].update(str(item[k]) for k in ("id", "name", "username") if item.get(k))
    return known


def pretty_print_error(tree: ErrTree, item: str = "", indent: str = "") -> str:
    """Kong's ``pretty_print_error`` (kong/db/declarative/init.lua), in document order."""
    lines = []
    for key, value in tree.items():
        label = f"- in entry {key} of '{item}'" if isinstance(key, int) else f"in '{key}'"
        if isinstance(value, dict):
            lines.append(f"{indent}{label}:")
            lines.append(pretty_print_error(value, str(key), indent + "  "))
        else:
            lines.append(f"{indent}{label}: {value}")
    return "\n".join(lines)


def parse_declarative_file(path: str, settings: Settings) -> tuple[Doc | None, str]:
    """(document, "") when Kong would load the file, else (None, Kong's error text)."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        return None, f"{path}: {exc.strerror}"
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{mark.line + 1}:{mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        return None, f"failed parsing declarative configuration: {where}{problem}"
    if not isinstance(doc, dict):
        return None, "failed parsing declarative configuration: expected an object"
    errs = Validator(settings).validate(doc)
    return (None, pretty_print_error(errs)) if errs else (doc, "")


# ----------------------------------------------------------------------------- the model
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


@dataclass(frozen=True)
class Plugin:
    name: str
    config: Doc
    service: str | None
    route: str | None
    consumer: str | None


@dataclass
class Consumer:
    id: str
    username: str | None
    custom_id: str | None
    groups: list[str] = field(default_factory=list)


@dataclass
class Gateway:
    """The loaded configuration, indexed the way the proxy needs it."""

    routes: list[Route] = field(default_factory=list)
    plugins: list[Plugin] = field(default_factory=list)
    consumers: dict[str, Consumer] = field(default_factory=dict)  # by id and by username
    keys: dict[str, Consumer] = field(default_factory=dict)
    basic: dict[str, tuple[str, Consumer]] = field(default_factory=dict)


def build_gateway(doc: Doc, settings: Settings) -> Gateway:
    """Turn a validated document into routes, plugins and consumers (last name wins)."""
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
        gw.routes.append(make_route(route, key, parent, settings.version < (3, 0, 0)))
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


def make_route(route: Doc, key: str, service: Service | None, v2: bool) -> Route:
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
        v2,
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
        gw.plugins.append(Plugin(item["name"], item.get("config") or {}, **where))


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


# ----------------------------------------------------------------------------- requests
@dataclass
class Request:
    """One client request, as the plugins see and change it."""

    method: str
    path: str
    query: str
    version: str
    headers: Headers
    client_ip: str
    server_port: int

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)

    def remove_header(self, name: str) -> None:
        self.headers = [(k, v) for k, v in self.headers if k.lower() != name.lower()]

    def set_header(self, name: str, value: str) -> None:
        self.remove_header(name)
        self.headers.append((name, value))

    @property
    def host(self) -> str:
        """The Host header without its port (nginx's ``$host``)."""
        value = (self.header("host") or "").lower()
        if value.startswith("["):
            return value[1 : value.find("]")]
        return value.rsplit(":", 1)[0]

    @property
    def line(self) -> str:
        query = "?" + self.query if self.query else ""
        return f"{self.method} {self.path}{query} {self.version}"


@dataclass
class Reply:
    """A response Kong makes itself (plugin exits, router and balancer errors)."""

    status: int
    body: bytes
    headers: Headers = field(default_factory=list)
    content_type: str = JSON_TYPE


def message(status: int, text: str, *headers: tuple[str, str]) -> Reply:
    """``kong.response.exit(status, { message = text })``: compact JSON."""
    body = json.dumps({"message": text}, separators=(",", ":")).encode()
    return Reply(status, body, list(headers))


def error_page(status: int, text: str) -> Reply:
    """An nginx error rendered by kong/error_handlers.lua with its JSON template."""
    return Reply(status, f'{{\n  "message":"{text}"\n}}'.encode())


@dataclass
class Context:
    """Per-request state shared by the plugins (Kong's ngx.ctx)."""

    request: Request
    route: Route
    version: Version
    gateway: Gateway
    line: str  # the request line as the client sent it, before any plugin edits
    consumer: Consumer | None = None
    credential: str | None = None
    response_headers: Headers = field(default_factory=list)  # cors' header_filter


# ----------------------------------------------------------------------------- routing
def host_matches(pattern: str, host: str, host_with_port: str) -> bool:
    if ":" in pattern:
        return pattern == host_with_port
    if pattern.startswith("*."):
        return host.endswith(pattern[1:])
    if pattern.endswith(".*"):
        return host.startswith(pattern[:-1])
    return pattern == host


def path_match(route: Route, path: str) -> tuple[bool, int, str] | None:
    """The best (is_regex, weight, matched text) among a route's paths, if any matches.
    Prefix paths weigh their length; regex paths their regex_priority and come first."""
    best: tuple[bool, int, str] | None = None
    for pattern in route.paths:
        if pattern.startswith("~") or (route.implicit_regex and re.search(r"[^a-zA-Z0-9._~/%-]", pattern)):
            found = re.match(pattern.lstrip("~"), path)
            candidate = (True, route.regex_priority, found.group(0)) if found else None
        else:
            candidate = (False, len(pattern), pattern) if path.startswith(pattern) else None
        if candidate and (best is None or candidate[:2] > best[:2]):
            best = candidate
    return best


def match_route(routes: list[Route], req: Request) -> tuple[Route, str] | None:
    """Kong's traditional router: routes with more kinds of rules first, then regex
    priority, then the longest prefix. Returns the route and the matched path prefix."""
    host_with_port = (req.header("host") or "").lower()
    candidates = []
    for route in routes:
        if "http" not in route.protocols or (route.methods and req.method not in route.methods):
            continue
        if route.hosts and not any(host_matches(h, req.host, host_with_port) for h in route.hosts):
            continue
        if any((req.header(name) or "").lower() not in values for name, values in route.headers):
            continue
        matched = path_match(route, req.path) if route.paths else (False, 0, "")
        if matched is not None:
            kinds = sum(map(bool, (route.methods, route.hosts, route.headers, route.paths)))
            candidates.append(((kinds, matched[0], matched[1]), route, matched[2]))
    if not candidates:
        return None
    _, route, prefix = max(candidates, key=lambda candidate: candidate[0])
    return route, prefix


def upstream_path(route: Route, service: Service, path: str, prefix: str) -> str:
    """strip_path, then join with the service path: path_handling v0 (the default) joins
    with exactly one slash (/socket + websocket -> /socket/websocket), v1 concatenates."""
    rest = path[len(prefix) :] if route.strip_path else path
    base = service.path or ""
    if route.path_handling == "v1":
        if base.endswith("/") and rest.startswith("/"):
            rest = rest[1:]
        return base + rest or "/"
    if not rest:
        return base or "/"
    if base in ("", "/"):
        return rest if rest.startswith("/") else "/" + rest
    return base.rstrip("/") + "/" + rest.lstrip("/")


# ----------------------------------------------------------------------------- plugins
PluginHandler = Callable[[Context, Doc], Reply | None]


def cors(ctx: Context, conf: Doc) -> Reply | None:
    """Answers real preflights only; other responses just get the Allow-Origin headers."""
    req, origins, origin = ctx.request, conf.get("origins") or [], ctx.request.header("origin")
    if not origins or "*" in origins:
        allow: str | None = "*"
    else:
        allow = origin if origin and any(o == origin or re.fullmatch(o, origin) for o in origins) else None
        ctx.response_headers.append(("Vary", "Origin"))
    ctx.response_headers += [("Access-Control-Allow-Origin", allow)] if allow else []
    if conf.get("credentials"):
        ctx.response_headers.append(("Access-Control-Allow-Credentials", "true"))
    if not (req.method == "OPTIONS" and origin and req.header("access-control-request-method")):
        if conf.get("exposed_headers"):
            exposed = ",".join(conf["exposed_headers"])
            ctx.response_headers.append(("Access-Control-Expose-Headers", exposed))
        return None
    if conf.get("preflight_continue"):
        return None
    # An explicit `headers` list replaces the echo of Access-Control-Request-Headers.
    allowed = ",".join(conf["headers"]) if conf.get("headers") else req.header("access-control-request-headers")
    methods = conf.get("methods") or CORS_METHODS
    headers = [("Access-Control-Allow-Methods", ",".join(methods))]
    headers += [("Access-Control-Allow-Headers", allowed)] if allowed else []
    headers += [("Access-Control-Max-Age", str(conf["max_age"]))] if conf.get("max_age") else []
    return Reply(200, b"", headers, content_type="")


def set_consumer(ctx: Context, consumer: Consumer, credential: str | None) -> None:
    """Authenticate; the upstream learns who it is from X-Consumer-* headers."""
    ctx.consumer, ctx.credential = consumer, credential
    for name, value in (
        ("X-Consumer-ID", consumer.id),
        ("X-Consumer-Username", consumer.username),
        ("X-Consumer-Custom-ID", consumer.custom_id),
        ("X-Credential-Identifier", credential),
        ("X-Anonymous-Consumer", None if credential else "true"),
    ):
        ctx.request.remove_header(name)  # never trust the client's copy
        if value:
            ctx.request.set_header(name, value)


def unless_anonymous(ctx: Context, conf: Doc, failure: Reply) -> Reply | None:
    """``anonymous``: a missing *or invalid* credential becomes that consumer instead."""
    if not conf.get("anonymous"):
        return failure
    consumer = ctx.gateway.consumers.get(conf["anonymous"])
    if consumer is None:
        return message(500, "An unexpected error occurred")
    set_consumer(ctx, consumer, None)
    return None


def invalid_credentials(ctx: Context, realm: tuple[str, str]) -> Reply:
    text = "Invalid authentication credentials" if ctx.version < (3, 0, 0) else "Unauthorized"
    return message(401, text, realm)


def find_api_key(req: Request, conf: Doc) -> str | None:
    """The key from the first of ``key_names`` found in a header or the query string."""
    query = parse_qsl(req.query, keep_blank_values=True)
    for name in conf.get("key_names") or ["apikey"]:
        key = req.header(name) if conf.get("key_in_header") is not False else None
        if not key and conf.get("key_in_query") is not False:
            key = dict(query).get(name)
        if key:
            if conf.get("hide_credentials"):
                req.remove_header(name)
                req.query = urlencode([(k, v) for k, v in query if k != name])
            return key
    return None


def key_auth(ctx: Context, conf: Doc) -> Reply | None:
    if (conf.get("run_on_preflight") is False and ctx.request.method == "OPTIONS") or (
        conf.get("anonymous") and ctx.credential
    ):
        return None
    realm = ("WWW-Authenticate", f'Key realm="{conf.get("realm") or "kong"}"')
    key = find_api_key(ctx.request, conf)
    if not key:
        return unless_anonymous(ctx, conf, message(401, "No API key found in request", realm))
    consumer = ctx.gateway.keys.get(key)
    if consumer is None:
        return unless_anonymous(ctx, conf, invalid_credentials(ctx, realm))
    set_consumer(ctx, consumer, str(uuid.uuid5(uuid.NAMESPACE_URL, f"keyauth:{key}")))
    return None


def basic_auth(ctx: Context, conf: Doc) -> Reply | None:
    if conf.get("anonymous") and ctx.credential:
        return None
    realm = ("WWW-Authenticate", f'Basic realm="{conf.get("realm") or "kong"}"')
    header = ctx.request.header("authorization") or ctx.request.header("proxy-authorization")
    if not header or not header.lower().startswith("basic "):
        return unless_anonymous(ctx, conf, message(401, "Unauthorized", realm))
    try:
        username, _, password = base64.b64decode(header[6:].strip()).decode().partition(":")
    except ValueError:
        username, password = "", ""
    stored = ctx.gateway.basic.get(username)
    if stored is None or stored[0] != password:
        return unless_anonymous(ctx, conf, invalid_credentials(ctx, realm))
    if conf.get("hide_credentials"):
        ctx.request.remove_header("authorization")
    set_consumer(ctx, stored[1], username)
    return None


def ip_restriction(ctx: Context, conf: Doc) -> Reply | None:
    address = ipaddress.ip_address(ctx.request.client_ip)

    def listed(entries: list[str] | None) -> bool:
        try:
            return any(address in ipaddress.ip_network(e, strict=False) for e in entries or [])
        except ValueError:
            return False

    if listed(conf.get("deny")) or (conf.get("allow") and not listed(conf.get("allow"))):
        return message(conf.get("status") or 403, conf.get("message") or "Your IP address is not allowed")
    return None


def acl(ctx: Context, conf: Doc) -> Reply | None:
    if ctx.consumer is None:
        return message(401, "Unauthorized")
    groups = set(ctx.consumer.groups)
    allow = conf.get("allow") or conf.get("whitelist")
    deny = conf.get("deny") or conf.get("blacklist")
    if (allow and not groups & set(allow)) or (deny and groups & set(deny)):
        return message(403, "You cannot consume this service")
    ctx.request.remove_header("X-Consumer-Groups")
    if not conf.get("hide_groups_header") and groups:
        ctx.request.set_header("X-Consumer-Groups", ", ".join(ctx.consumer.groups))
    return None


def request_transformer(ctx: Context, conf: Doc) -> Reply | None:
    """remove, rename, replace, add, append (Kong's order) on headers and querystring.
    Values are taken literally: Kong's ``$(...)`` Lua templates are not evaluated."""
    req = ctx.request
    query = parse_qsl(req.query, keep_blank_values=True)
    query_changed = False
    if conf.get("http_method"):
        req.method = str(conf["http_method"]).upper()
    for op in ("remove", "rename", "replace", "add", "append"):
        part = conf.get(op) or {}
        for item in part.get("headers") or []:
            edit_header(req, op, *item.partition(":")[::2])
        for item in part.get("querystring") or []:
            query, query_changed = edit_query(query, op, *item.partition(":")[::2]), True
    if query_changed:
        req.query = urlencode(query)
    return None


def edit_header(req: Request, op: str, name: str, value: str) -> None:
    present = req.header(name) is not None
    if op == "remove":
        req.remove_header(name)
    elif op == "rename" and present:
        old = req.header(name) or ""
        req.remove_header(name)
        req.set_header(value, old)
    elif (op == "replace" and present) or (op == "add" and not present):
        req.set_header(name, value)
    elif op == "append":
        req.headers.append((name, value))


def edit_query(query: Headers, op: str, name: str, value: str) -> Headers:
    present = any(k == name for k, _ in query)
    if op == "remove":
        return [(k, v) for k, v in query if k != name]
    if op == "rename":
        return [(value if k == name else k, v) for k, v in query]
    if op == "replace" and present:
        return [(k, value if k == name else v) for k, v in query]
    if (op == "add" and not present) or op == "append":
        return [*query, (name, value)]
    return query


def request_termination(ctx: Context, conf: Doc) -> Reply | None:
    trigger = conf.get("trigger")
    if trigger and ctx.request.header(trigger) is None and (trigger not in dict(parse_qsl(ctx.request.query))):
        return None
    status = conf.get("status_code") or 503
    if conf.get("body"):
        return Reply(status, str(conf["body"]).encode(), content_type=conf.get("content_type") or JSON_TYPE)
    defaults = {
        401: "Unauthorized",
        404: "Not found",
        405: "Method not allowed",
        500: "An unexpected error occurred",
        502: "Bad Gateway",
    }
    return message(status, conf.get("message") or defaults.get(status, "Service unavailable"))


ACCESS_HANDLERS: dict[str, PluginHandler] = {
    "cors": cors,
    "key-auth": key_auth,
    "basic-auth": basic_auth,
    "ip-restriction": ip_restriction,
    "acl": acl,
    "request-transformer": request_transformer,
    "request-termination": request_termination,
}


def plugins_for(gw: Gateway, route: Route) -> list[Plugin]:
    """Per plugin name a route plugin beats a service plugin beats a global one, then all
    run by priority. Consumer-scoped plugins are not supported and are skipped."""
    service_key = route.service.key if route.service else None
    chosen: dict[str, tuple[int, Plugin]] = {}
    for plugin in gw.plugins:
        if (
            plugin.consumer
            or (plugin.route and plugin.route != route.key)
            or (plugin.service and plugin.service != service_key)
        ):
            continue
        level = 2 if plugin.route else 1 if plugin.service else 0
        if plugin.name not in chosen or level >= chosen[plugin.name][0]:
            chosen[plugin.name] = (level, plugin)
    return sorted((p for _, p in chosen.values()), key=lambda p: -PRIORITIES.get(p.name, 0))


def run_access_phase(ctx: Context) -> Reply | None:
    """The first plugin that answers (kong.response.exit) ends the request."""
    for plugin in plugins_for(ctx.gateway, ctx.route):
        handler = ACCESS_HANDLERS.get(plugin.name)
        reply = handler(ctx, plugin.config) if handler else None
        if reply is not None:
            return reply
    return None


# ----------------------------------------------------------------------------- logs
def log_error(level: str, text: str) -> None:
    """One nginx error-log line on stderr, where Kong's docker images send it."""
    stamp = time.strftime("%Y/%m/%d %H:%M:%S")
    print(f"{stamp} [{level}] {os.getpid()}#0: {text}", file=sys.stderr, flush=True)


def access_log(req: Request, line: str, status: int, size: int) -> None:
    """nginx's ``combined`` format on stdout. Like real Kong it logs the query string,
    apikey included."""
    stamp = time.strftime("%d/%b/%Y:%H:%M:%S %z")
    referer, agent = req.header("referer") or "-", req.header("user-agent") or "-"
    print(f'{req.client_ip} - - [{stamp}] "{line}" {status} {size} "{referer}" "{agent}"', flush=True)


# ----------------------------------------------------------------------------- the proxy
class Proxy:
    """The proxy listener: route, run the plugins, then tunnel to the upstream."""

    def __init__(self, settings: Settings, gateway: Gateway) -> None:
        self.settings = settings
        self.gateway = gateway
        self.connections = itertools.count(1)
        self.server_token = f"kong/{settings.version_text}"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One client connection, one request: every answer says ``Connection: close``."""
        conn = next(self.connections)
        try:
            await self.serve_one(conn, reader, writer)
        except OSError:  # the client went away (timeouts are OSError too)
            pass
        except Exception as exc:  # a stand-in bug must not look like a hung gateway
            log_error("error", f"*{conn} stand-in failure: {exc!r}")
        finally:
            writer.close()

    async def serve_one(self, conn: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer, sock = writer.get_extra_info("peername"), writer.get_extra_info("sockname")
        unparsed = Request("-", "", "", "", [], peer[0], sock[1])
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 60)
            req = parse_request(head, peer[0], sock[1])
        except asyncio.IncompleteReadError as exc:
            if exc.partial:  # a connection closed before sending anything is not logged
                await self.send(writer, unparsed, error_page(400, "Bad request"), "-")
            return
        except asyncio.LimitOverrunError:
            too_large = error_page(494, "Request header or cookie too large")
            await self.send(writer, unparsed, too_large, "-")
            return
        except ValueError:
            await self.send(writer, unparsed, error_page(400, "Bad request"), "-")
            return
        matched = match_route(self.gateway.routes, req)
        if matched is None:
            await self.send(writer, req, message(404, "no Route matched with those values"), req.line)
            return
        route, prefix = matched
        ctx = Context(req, route, self.settings.version, self.gateway, req.line)
        reply = run_access_phase(ctx)
        if reply is None and route.service is None:
            reply = message(503, "no Service found with those values")
        if reply is not None:
            reply.headers += ctx.response_headers
            await self.send(writer, req, reply, ctx.line)
        elif route.service is not None:
            await self.forward(conn, ctx, route.service, prefix, (reader, writer))

    def reply_bytes(self, reply: Reply) -> bytes:
        headers = [("Date", http_date()), ("Content-Length", str(len(reply.body))), ("Connection", "close")]
        headers += [("Content-Type", reply.content_type)] if reply.content_type else []
        headers += reply.headers + [("X-Kong-Response-Latency", "0"), ("Server", self.server_token)]
        return render_head(f"HTTP/1.1 {reply.status} {reason(reply.status)}", headers) + reply.body

    async def send(self, writer: asyncio.StreamWriter, req: Request, reply: Reply, line: str) -> None:
        writer.write(self.reply_bytes(reply))
        await writer.drain()
        access_log(req, line, reply.status, len(reply.body))

    async def forward(
        self,
        conn: int,
        ctx: Context,
        service: Service,
        prefix: str,
        client: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    ) -> None:
        """Resolve and connect like Kong's balancer, then send the rewritten head."""
        req, writer, line = ctx.request, client[1], ctx.line
        target = upstream_path(ctx.route, service, req.path, prefix)
        target += "?" + req.query if req.query else ""
        context = f'client: {req.client_ip}, server: kong, request: "{line}"'
        upstream = f'upstream: "{service.protocol}://{service.host}:{service.port}{target}"'
        where = f'{context}, {upstream}, host: "{req.header("host") or ""}"'
        address = await resolve(service.host, self.settings)
        if address is None:
            log_error(
                "error",
                f"*{conn} [lua] handler.lua:1540: balancer(): failed the initial "
                f"dns/balancer resolve for '{service.host}' with: dns server "
                f"error: 3 name error, {context}",
            )
            await self.send(writer, req, message(503, "name resolution failed"), line)
            return
        try:
            up_reader, up_writer = await asyncio.wait_for(
                asyncio.open_connection(address, service.port), service.connect_timeout
            )
        except TimeoutError:
            log_error(
                "error", f"*{conn} upstream timed out (110: Connection timed out) while connecting to upstream, {where}"
            )
            await self.send(writer, req, error_page(504, "The upstream server is timing out"), line)
            return
        except OSError as exc:
            code = exc.errno or 111
            log_error(
                "error", f"*{conn} connect() failed ({code}: {os.strerror(code)}) while connecting to upstream, {where}"
            )
            await self.send(
                writer, req, error_page(502, "An invalid response was received from the upstream server"), line
            )
            return
        head = render_head(f"{req.method} {target} HTTP/1.1", self.upstream_headers(ctx, prefix))
        up_writer.write(head)
        await self.tunnel(ctx, service, client, (up_reader, up_writer), f"*{conn}", where)

    def upstream_headers(self, ctx: Context, prefix: str) -> Headers:
        """Client headers minus hop-by-hop ones, plus Host and Kong's X-Forwarded-*."""
        req, route, service = ctx.request, ctx.route, ctx.route.service
        assert service is not None
        dropped = {"connection", "keep-alive", "proxy-connection", "upgrade", "host", "x-real-ip"}
        headers = [
            (k, v) for k, v in req.headers if k.lower() not in dropped and not k.lower().startswith("x-forwarded-")
        ]
        default_port = {"http": 80, "https": 443}.get(service.protocol)
        host = service.host if service.port == default_port else f"{service.host}:{service.port}"
        if route.preserve_host:
            host = req.header("host") or host
        forwarded_for = req.header("x-forwarded-for")
        headers = (
            [("Host", host)]
            + headers
            + [
                ("X-Forwarded-For", f"{forwarded_for}, {req.client_ip}" if forwarded_for else req.client_ip),
                ("X-Forwarded-Proto", "http"),
                ("X-Forwarded-Host", req.host),
                ("X-Forwarded-Port", str(req.server_port)),
                ("X-Forwarded-Path", req.path),
                ("X-Real-IP", req.client_ip),
            ]
        )
        if route.strip_path and prefix:
            headers.append(("X-Forwarded-Prefix", prefix))
        # Kong keeps upgrades alive (runloop/handler.lua); plain requests close, for simplicity.
        if (req.header("upgrade") or "").lower() == "websocket":
            return headers + [("Connection", "keep-alive, Upgrade"), ("Upgrade", "websocket")]
        return headers + [("Connection", "close")]

    async def tunnel(
        self,
        ctx: Context,
        service: Service,
        client: tuple[asyncio.StreamReader, asyncio.StreamWriter],
        upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter],
        conn: str,
        where: str,
    ) -> None:
        """Pipe bytes both ways; only the upstream's status line and headers are edited.
        The request body, chunked or not, and WebSocket frames pass untouched."""
        started = time.monotonic()
        upload = asyncio.ensure_future(pipe(client[0], upstream[1], None))
        reply: Reply | None = None
        try:
            raw = await asyncio.wait_for(upstream[0].readuntil(b"\r\n\r\n"), service.read_timeout)
            status, head = self.rewrite_response_head(raw, ctx, started)
        except TimeoutError:
            log_error(
                "error",
                f"{conn} upstream timed out (110: Connection timed out) while "
                f"reading response header from upstream, {where}",
            )
            reply = error_page(504, "The upstream server is timing out")
        except (OSError, ValueError, IndexError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            log_error(
                "error",
                f"{conn} upstream prematurely closed connection while reading response header from upstream, {where}",
            )
            reply = error_page(502, "An invalid response was received from the upstream server")
        if reply is None:
            client[1].write(head)
            sent = await pipe(upstream[0], client[1], service.read_timeout)
        else:
            client[1].write(self.reply_bytes(reply))
            status, sent = reply.status, len(reply.body)
        upload.cancel()
        upstream[1].close()
        access_log(ctx.request, ctx.line, status, sent)

    def rewrite_response_head(self, head: bytes, ctx: Context, started: float) -> tuple[int, bytes]:
        """Keep the upstream's headers; add cors' ones, Kong's latency headers and Via."""
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        replaced = {k.lower() for k, _ in ctx.response_headers}
        if status != 101:  # an upgrade keeps Connection/Upgrade; the rest close
            replaced |= {"connection", "keep-alive"}
        kept = [
            (k, v.strip()) for k, _, v in (x.partition(":") for x in lines[1:] if ":" in x) if k.lower() not in replaced
        ]
        latency = str(int((time.monotonic() - started) * 1000))
        via = self.server_token if self.settings.version < (3, 0, 0) else f"1.1 {self.server_token}"
        extra = [] if status == 101 else [("Connection", "close")]
        extra += ctx.response_headers + [
            ("X-Kong-Upstream-Latency", latency),
            ("X-Kong-Proxy-Latency", "0"),
            ("Via", via),
        ]
        return status, render_head(lines[0], kept + extra)


async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter, idle_timeout: float | None) -> int:
    """Copy until EOF, then half-close ``dst`` so the other side sees the end. Like nginx,
    an upgraded tunnel that stays idle for the read timeout is closed."""
    total = 0
    try:
        while data := await asyncio.wait_for(src.read(65536), idle_timeout):
            dst.write(data)
            total += len(data)
            await dst.drain()
        if dst.can_write_eof():
            dst.write_eof()
    except OSError:  # reset, broken pipe or idle timeout: tear the tunnel down
        dst.close()
    return total


async def resolve(host: str, settings: Settings) -> str | None:
    """Kong's resolver order, simplified: an IP literal, the hosts file, then DNS."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    try:
        with open(settings.hostsfile, encoding="utf-8") as handle:
            for entry in handle:
                fields = entry.split("#", 1)[0].split()
                if len(fields) > 1 and host.lower() in (name.lower() for name in fields[1:]):
                    return fields[0]
    except OSError:
        pass
    if settings.hosts_only:
        return None
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
        return str(infos[0][4][0])
    except OSError:  # socket.gaierror included
        return None


def parse_request(head: bytes, client_ip: str, server_port: int) -> Request:
    """The request line and headers; raises ValueError on anything malformed."""
    lines = head.decode("latin-1").split("\r\n")
    method, target, version = lines[0].split(" ")
    if not version.startswith("HTTP/1."):
        raise ValueError("unsupported protocol")
    if target.startswith(("http://", "https://")):  # absolute-form
        target = "/" + target.split("/", 3)[3] if target.count("/") >= 3 else "/"
    path, _, query = target.partition("?")
    headers = [(k.strip(), v.strip()) for k, v in (x.split(":", 1) for x in lines[1:] if x)]
    return Request(method, path, query, version, headers, client_ip, server_port)


def render_head(first_line: str, headers: Headers) -> bytes:
    lines = [first_line] + [f"{k}: {v}" for k, v in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def reason(status: int) -> str:
    if status == 494:  # nginx's own status, unknown to the http module
        return "Request Header Or Cookie Too Large"
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def http_date() -> str:
    return time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime())


# ----------------------------------------------------------------------------- commands
def parse_listen(spec: str) -> list[tuple[str, int]]:
    """Plain listeners of ``proxy_listen``; ssl ones are skipped (the stand-in has no TLS)."""
    listeners = []
    for words in (entry.split() for entry in spec.split(",") if entry.strip() not in ("", "off")):
        if "ssl" in words[1:]:
            log_error("warn", f"stand-in: skipping ssl listener {words[0]}")
            continue
        host, _, port = words[0].rpartition(":")
        listeners.append((host.strip("[]") or "0.0.0.0", int(port)))
    return listeners


def start_failure(settings: Settings, error: str) -> int:
    """What ``kong docker-start`` prints when init_by_lua refuses the declarative file."""
    print(
        f"Error: {LUA}/cmd/start.lua:37: nginx: [error] init_by_lua error: {LUA}/init.lua:553:"
        f" error parsing declarative config file {settings.declarative_config}:\n{error}\n"
        f"stack traceback:\n\t[C]: in function 'error'\n\t{LUA}/init.lua:553: in function "
        f"'init'\n\tinit_by_lua:3: in main chunk{RUN_HINT}",
        file=sys.stderr,
        flush=True,
    )
    return 1


async def serve(settings: Settings, gateway: Gateway) -> int:
    """Bind, write the pid file, log like nginx's start, serve until SIGTERM/SIGINT."""
    proxy, servers = Proxy(settings, gateway), []
    for host, port in parse_listen(settings.proxy_listen):
        try:
            servers.append(await asyncio.start_server(proxy.handle, host, port))
        except OSError as exc:
            print(
                f"nginx: [emerg] bind() to {host}:{port} failed ({exc.errno}: {exc.strerror})",
                file=sys.stderr,
                flush=True,
            )
            return 1
    os.makedirs(os.path.dirname(settings.pid_file), exist_ok=True)
    with open(settings.pid_file, "w", encoding="utf-8") as handle:
        handle.write(f"{os.getpid()}\n")
    openresty = "1.19.9.1" if settings.version < (3, 0, 0) else "1.25.3.2"
    for text in (
        'using the "epoll" event method',
        f"openresty/{openresty}",
        "start worker processes",
        f"start worker process {os.getpid()}",
    ):
        log_error("notice", text)
    if settings.declarative_config:
        log_error(
            "notice",
            f"*1 [kong] init.lua:562 declarative config loaded from "
            f"{settings.declarative_config}, context: init_worker_by_lua*",
        )
    await wait_for_stop_signal()
    for server in servers:
        server.close()
    with contextlib.suppress(OSError):
        os.unlink(settings.pid_file)
    log_error("notice", "exit")
    return 0


async def wait_for_stop_signal() -> None:
    stopping = asyncio.Event()

    def on_signal(sig: signal.Signals) -> None:
        action = "shutting down" if sig == signal.SIGQUIT else "exiting"
        log_error("notice", f"signal {int(sig)} ({sig.name}) received, {action}")
        stopping.set()

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
        loop.add_signal_handler(sig, on_signal, sig)
    await stopping.wait()


def cmd_start(settings: Settings) -> int:
    gateway = Gateway()  # no declarative file: Kong starts with an empty configuration
    if settings.declarative_config:
        doc, error = parse_declarative_file(settings.declarative_config, settings)
        if doc is None:
            return start_failure(settings, error)
        gateway = build_gateway(doc, settings)
    return asyncio.run(serve(settings, gateway))


def cmd_health(settings: Settings) -> int:
    """``kong health`` only checks that the nginx master pid is alive (kong/cmd/health.lua)."""
    try:
        with open(settings.pid_file, encoding="utf-8") as handle:
            os.kill(int(handle.read().strip()), 0)
        running = True
    except (OSError, ValueError):
        running = False
    if os.path.exists(settings.pid_file):
        print("nginx......." + ("running" if running else "not running") + "\n")
    if not running:
        print(f"Error: Kong is not running at {settings.prefix}{RUN_HINT}", file=sys.stderr)
        return 1
    print(f"Kong is healthy at {settings.prefix}")
    return 0


def cmd_config_parse(settings: Settings, path: str) -> int:
    if not os.path.exists(path):
        print(f"Error: {path}: No such file or directory{RUN_HINT}", file=sys.stderr)
        return 1
    doc, error = parse_declarative_file(path, settings)
    if doc is None:
        print(f"Error: Failed parsing:\n{error}{RUN_HINT}", file=sys.stderr)
        return 1
    print("parse successful")
    return 0


USAGE = """Usage: kong COMMAND [OPTIONS]

The available commands are:
 config
 docker-start
 health
 start
 version
"""


def main(argv: list[str]) -> int:
    env, words, args = dict(os.environ), [], iter(argv)
    for arg in args:
        if arg in ("-p", "--prefix"):
            env["KONG_PREFIX"] = next(args, env.get("KONG_PREFIX", ""))
        elif arg in ("-c", "--conf"):
            next(args, None)  # the stand-in reads no kong.conf, only KONG_* variables
        elif not arg.startswith("-"):
            words.append(arg)
    settings = load_settings(env)
    command = words[0] if words else ""
    if command in ("docker-start", "start"):
        return cmd_start(settings)
    if command == "health":
        return cmd_health(settings)
    if command == "config" and len(words) == 3 and words[1] == "parse":
        return cmd_config_parse(settings, words[2])
    if command == "version":
        print(f"Kong {settings.version_text}")
        return 0
    print(USAGE, file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
