"""Kong's validation of a declarative file: the error tree and its pretty print."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any, Union

import yaml

from .model import PLUGIN_ENTITIES, Doc, ref_key, url_shorthand
from .settings import Settings

ErrTree = dict[Any, Any]  # Kong's err_t: field names (str) or 1-based entries (int)
Version = tuple[int, int, int]
PROTOCOLS = ("grpc", "grpcs", "http", "https", "tcp", "tls", "tls_passthrough", "udp")
ONE_OF_PROTOCOLS = "expected one of: " + ", ".join(PROTOCOLS)


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
