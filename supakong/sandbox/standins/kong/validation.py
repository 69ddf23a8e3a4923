"""Kong's validation of a declarative file: entities, references, uniqueness, error text.

Entity by entity with the rules of ``schema_rules`` applied by ``schema``; errors form
Kong's ``err_t`` tree, printed by :func:`pretty_print_error` like
Kong/kong@3.9.3:kong/db/declarative/init.lua:54-73.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

import yaml

from . import atc
from . import schema_rules as rules
from .model import PLUGIN_ENTITIES, Doc, ref_key
from .schema import ErrTree, Node, nonempty, quoted, validate_field, validate_record
from .settings import Settings
from .validators import migrate_paths


def url_shorthand(url: str) -> Doc:
    """services.lua's ``url`` shorthand (Kong/kong@3.9.3:kong/db/schema/entities/services.lua:75-103):
    its parts replace protocol, host, port and path."""
    parts = urlsplit(url)
    try:
        port: object = parts.port
    except ValueError:
        port = parts.netloc.rpartition(":")[2]  # Kong keeps the text: "expected an integer"
    protocol = parts.scheme or ("https" if port == 443 else "http")
    default = 443 if protocol == "https" else 80
    return {"protocol": protocol, "host": parts.hostname, "port": port or default, "path": parts.path or None}


class Validator:
    """Builds Kong's error tree for a declarative document: schemas, then references."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.node = Node(settings.version, settings.router_flavor)
        self.entity_keys = {e for p, e in PLUGIN_ENTITIES.items() if p in settings.plugins}

    def migrate(self, doc: Doc) -> Doc:
        """The document as Kong validates and loads it (3.x migrates 1.1/2.1 paths)."""
        if self.settings.v3 and doc.get("_format_version") in ("1.1", "2.1"):
            return migrate_paths(doc)
        return doc

    def validate(self, doc: Doc) -> ErrTree:
        """All errors of a (migrated) document; an empty tree means Kong would load it."""
        return self.check_document(doc) or self.check_references(doc)

    def check_document(self, doc: Doc) -> ErrTree:
        errs: ErrTree = {}
        self.check_format_version(doc.get("_format_version"), errs)
        checks: dict[str, Callable[[Doc, bool], ErrTree]] = {
            "services": self.check_service,
            "routes": self.check_route,
            "consumers": self.check_consumer,
            "plugins": self.check_plugin,
            **{key: self.credential_check(key) for key in self.entity_keys},
            **{key: (lambda item, nested: {}) for key in rules.UNCHECKED_ENTITIES},
        }
        for key, value in doc.items():
            if key in ("_format_version", "_ignore") or value is None:
                continue
            if key in ("_transform", "_comment"):
                if (
                    err := validate_field(rules.Field("boolean" if key == "_transform" else "string"), value, self.node)
                ) is not None:
                    errs[key] = err
            elif key in checks:
                self.each_entry(value, errs, key, checks[key], nested=False)
            else:
                errs[key] = "unknown field"
        return errs

    def check_format_version(self, value: Any, errs: ErrTree) -> None:
        accepted = rules.FORMAT_VERSIONS_3 if self.settings.v3 else rules.FORMAT_VERSIONS_2_8
        spec = rules.Field("string", required=True, one_of=accepted)
        err = "required field missing" if value is None else validate_field(spec, value, self.node)
        if err is not None:
            errs["_format_version"] = err

    @staticmethod
    def each_entry(items: Any, errs: ErrTree, key: str, check: Callable[[Doc, bool], ErrTree], nested: bool) -> None:
        """Run ``check`` on every entry of an entity list, collecting "entry N" subtrees."""
        if not isinstance(items, list):
            errs[key] = "expected an array"
            return
        entries: ErrTree = {}
        for index, item in enumerate(items, 1):
            entry = check(item, nested) if isinstance(item, dict) else "expected a record"
            if entry:
                entries[index] = entry
        if entries:
            errs[key] = entries

    def check_nested(self, parent: Doc, errs: ErrTree, checks: Mapping[str, Callable[[Doc, bool], ErrTree]]) -> None:
        for key, check in checks.items():
            if parent.get(key) is not None and key not in errs:
                self.each_entry(parent[key], errs, key, check, nested=True)

    def credential_check(self, kind: str) -> Callable[[Doc, bool], ErrTree]:
        return lambda cred, nested: self.check_credential(kind, nested, cred)

    # services ----------------------------------------------------------------
    def check_service(self, service: Doc, nested: bool = False) -> ErrTree:
        fields = dict(service)
        if isinstance(service.get("url"), str):
            fields.update(url_shorthand(service["url"]))
        spec = self.node.fields(rules.SERVICE_FIELDS)
        errs = validate_record(spec, (), fields, self.node, skip=("url", "routes", "plugins", "_comment", "_ignore"))
        protocol = fields.get("protocol")
        if protocol in rules.SERVICE_NO_PATH_PROTOCOLS and fields.get("path") is not None and "path" not in errs:
            errs["path"] = "value must be null"
            errs.setdefault("@entity", []).append("failed conditional validation given value of field 'protocol'")
        self.check_nested(service, errs, {"routes": self.check_route, "plugins": self.check_plugin})
        return errs

    # routes ------------------------------------------------------------------
    def check_route(self, route: Doc, nested: bool = False) -> ErrTree:
        protocols = route.get("protocols")
        protocols = ["http", "https"] if protocols is None else protocols
        if isinstance(protocols, list) and protocols:
            subschema = next((rules.ROUTE_SUBSCHEMAS[p] for p in protocols if p in rules.ROUTE_SUBSCHEMAS), None)
            if subschema is None:
                return {"protocols": f"unknown type: {protocols[0]}"}
        else:
            subschema = None
        fields = self.node.fields(rules.ROUTE_FIELDS)
        expressions = self.node.flavor == "expressions"
        if subschema is not None:
            for name, error in subschema.unset:
                if not (
                    expressions and subschema.sources_allowed_with_expressions and name in ("sources", "destinations")
                ):
                    fields[name] = rules.Field("any", eq_null=error)
        errs = validate_record(fields, (), route, self.node, skip=("plugins", "_comment", "_ignore"))
        if subschema is not None and isinstance(protocols, list):
            self.route_subschema_checks(route, protocols, subschema, errs)
        self.route_entity_checks(route, protocols if isinstance(protocols, list) else [], errs)
        self.check_nested(route, errs, {"plugins": self.check_plugin})
        return errs

    def route_subschema_checks(
        self, route: Doc, protocols: list[Any], sub: rules.RouteSubschema, errs: ErrTree
    ) -> None:
        if sub.grpc_strip_path and route.get("strip_path") is True:
            errs["strip_path"] = "cannot set 'strip_path' when 'protocols' is 'grpc' or 'grpcs'"
        extra = ("expression",) if self.node.flavor == "expressions" else ()
        message = None
        for protocol, need in sub.need:
            if protocol in protocols:
                wanted = (*need, *extra)
                if not any(nonempty(route.get(f)) for f in wanted):
                    message = rules._HTTP_ERR % (quoted(wanted), protocol)
                break
        if sub.name == "tcp":
            for group, need, error in rules.STREAM_NEED:
                wanted = (*need, *extra)
                if all(p in group for p in protocols) and not any(nonempty(route.get(f)) for f in wanted):
                    message = error.replace("%s", quoted(wanted)) if "%s" in error else error
        if message:
            errs.setdefault("@entity", []).append(message)

    def route_entity_checks(self, route: Doc, protocols: list[Any], errs: ErrTree) -> None:
        tls = {"grpcs", "https", "tls", "tls_passthrough"}
        if nonempty(route.get("snis")) and not tls & set(protocols) and "snis" not in errs:
            errs["snis"] = "length must be 0"
            errs.setdefault("@entity", []).append(
                "'snis' can only be set when 'protocols' is 'grpcs', 'https', 'tls' or 'tls_passthrough'"
            )
        if self.node.flavor == "expressions" and not errs:
            if (message := self.expression_check(route)) is not None:
                errs.setdefault("@entity", []).append(message)

    @staticmethod
    def expression_check(route: Doc) -> str | None:
        """validate_route (Kong/kong@3.9.3:kong/db/schema/entities/routes.lua:61-121)."""
        others = ("snis", "sources", "destinations", "methods", "hosts", "paths", "headers")
        has_expression = route.get("expression") is not None
        has_others = any(nonempty(route.get(name)) for name in others)
        prefix = "Router Expression failed validation: "
        if has_expression and has_others:
            return prefix + (
                "cannot set 'expression' with 'methods', 'hosts', 'paths', 'headers', 'snis', 'sources' or "
                "'destinations' simultaneously"
            )
        if has_expression and route.get("regex_priority") not in (None, 0):
            return prefix + "cannot set 'regex_priority' with 'expression' simultaneously"
        if has_others and route.get("priority") not in (None, 0):
            return prefix + (
                "cannot set 'priority' with 'methods', 'hosts', 'paths', 'headers', 'snis', 'sources' or "
                "'destinations' simultaneously"
            )
        if has_expression:
            try:
                atc.parse(str(route["expression"]))
            except atc.ExpressionError as exc:
                return prefix + str(exc)
        return None

    # consumers and credentials ------------------------------------------------
    def check_consumer(self, consumer: Doc, nested: bool = False) -> ErrTree:
        fields = self.node.fields(rules.CONSUMER_FIELDS)
        skip = ("plugins", "_comment", "_ignore", *self.entity_keys)
        errs = validate_record(fields, rules.CONSUMER_CHECKS, consumer, self.node, skip=skip)
        self.check_nested(
            consumer,
            errs,
            {"plugins": self.check_consumer_plugin, **{key: self.credential_check(key) for key in self.entity_keys}},
        )
        return errs

    def check_credential(self, kind: str, nested: bool, cred: Doc) -> ErrTree:
        table = rules.CREDENTIAL_FIELDS.get(kind)
        if table is None:
            return {}  # other plugin DAOs are not checked
        fields = self.node.fields(table)
        if nested:
            fields["consumer"] = rules.Field("foreign")  # set from the enclosing consumer
        return validate_record(fields, (), cred, self.node, skip=("_comment", "_ignore"))

    # plugins -----------------------------------------------------------------
    def check_consumer_plugin(self, plugin: Doc, nested: bool = True) -> ErrTree:
        return self.check_plugin(plugin, nested, on_consumer=True)

    def check_plugin(self, plugin: Doc, nested: bool = False, on_consumer: bool = False) -> ErrTree:
        name = plugin.get("name")
        if name is None:
            return {"name": "required field missing"}
        if not isinstance(name, str) or name not in self.settings.plugins:
            return {"name": f"plugin '{name}' not enabled; add it to the 'plugins' configuration property"}
        fields = self.node.fields(rules.PLUGIN_FIELDS)
        plugin_rules = rules.PLUGINS.get(name)
        if plugin_rules is None:  # a plugin this stand-in does not know: its config is not checked
            fields["config"] = rules.Field("record" if isinstance(plugin.get("config"), dict) else "any")
            return validate_record(fields, (), {k: v for k, v in plugin.items() if k != "config"}, self.node)
        fields["config"] = rules.Field("record", fields=plugin_rules.config)
        fields["protocols"] = rules.Field("set", elements=rules.Field("string", one_of=plugin_rules.protocols))
        if plugin_rules.no_consumer:
            fields["consumer"] = rules.Field("any", eq_null="value must be null")
        record = {**plugin, "consumer": plugin.get("consumer") or ("(consumer)" if on_consumer else None)}
        config = plugin.get("config")
        if isinstance(config, dict) and any(config.get(old) is not None for old in rules.SHORTHANDS):
            # 2.8's whitelist/blacklist fill allow/deny before the checks run (shorthand_fields)
            record["config"] = {
                **config,
                **{rules.SHORTHANDS[k]: v for k, v in config.items() if k in rules.SHORTHANDS},
            }
        errs = validate_record(fields, plugin_rules.checks, record, self.node, skip=("_comment", "_ignore"))
        if "config" not in errs and plugin_rules.config_check == "termination":
            if (message := termination_check(plugin.get("config") or {})) is not None:
                errs["config"] = message
        return errs

    # references and uniqueness ------------------------------------------------
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
        if self.settings.version >= (3, 4, 0):
            check_uniqueness(doc, errs)
        return errs


def termination_check(config: Doc) -> str | None:
    """request-termination's config custom_validator
    (Kong/kong@3.9.3:kong/plugins/request-termination/schema.lua:27-43)."""

    def present(name: str) -> bool:
        return isinstance(config.get(name), str) and config[name] != ""

    if present("message") and (present("content_type") or present("body")):
        return "message cannot be used with content_type or body"
    if present("content_type") and not present("body"):
        return "content_type requires a body"
    if config.get("echo") and (present("content_type") or present("body")):
        return "echo cannot be used with content_type and body"
    return None


def check_uniqueness(doc: Doc, errs: ErrTree) -> None:
    """3.4+ refuses a repeated unique key; 2.8 silently keeps the last entity."""
    seen: dict[tuple[str, str], set[Any]] = {}
    counters: dict[str, int] = {}
    for entity, item in walk_entities(doc):
        counters[entity] = counters.get(entity, 0) + 1
        for key in rules.UNIQUE_KEYS.get(entity, ()):
            value = item.get(key)
            if value is None:
                continue
            bucket = seen.setdefault((entity, key), set())
            if value in bucket:
                errs.setdefault(entity, {})[counters[entity]] = (
                    f"uniqueness violation: '{entity}' entity with {key} set to '{value}' already declared"
                )
            bucket.add(value)


def walk_entities(doc: Doc) -> Iterable[tuple[str, Doc]]:
    """Yield (entity, item) for top-level and nested entities, nested ones after their parent."""
    for entity in ("services", "routes", "consumers", "plugins", *PLUGIN_ENTITIES.values()):
        for item in doc.get(entity) or []:
            if isinstance(item, dict):
                yield entity, item
                yield from walk_entities(item)


def collect_entities(doc: Doc) -> dict[str, set[str]]:
    """Names and ids of every service, route and consumer, nested ones included."""
    known: dict[str, set[str]] = {"services": set(), "routes": set(), "consumers": set()}
    for entity, item in walk_entities(doc):
        if entity in known:
            known[entity].update(str(item[k]) for k in ("id", "name", "username") if item.get(k))
    return known


def pretty_print_error(tree: ErrTree, item: str = "", indent: str = "") -> str:
    """Kong's ``pretty_print_error`` (kong/db/declarative/init.lua), in document order."""
    lines = []
    entries: Iterable[tuple[Any, Any]] = enumerate(tree, 1) if isinstance(tree, list) else tree.items()
    for key, value in entries:
        label = f"- in entry {key} of '{item}'" if isinstance(key, int) else f"in '{key}'"
        if isinstance(value, dict | list):
            lines.append(f"{indent}{label}:")
            lines.append(pretty_print_error(value, str(key), indent + "  "))  # type: ignore[arg-type]
        else:
            lines.append(f"{indent}{label}: {value}")
    return "\n".join(lines)


def check_declarative_text(text: str, settings: Settings) -> tuple[Doc | None, ErrTree | str]:
    """(document, {}) when Kong would load the text; else (None, the error tree), or (None,
    the parse error's text) when the text is no YAML/JSON object at all."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{mark.line + 1}:{mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        return None, f"failed parsing declarative configuration: {where}{problem}"
    if not isinstance(doc, dict):
        return None, "failed parsing declarative configuration: expected an object"
    return check_declarative_doc(doc, settings)


def check_declarative_doc(doc: Doc, settings: Settings) -> tuple[Doc | None, ErrTree | str]:
    """(migrated document, {}) when Kong would load it, else (None, the error tree)."""
    validator = Validator(settings)
    doc = validator.migrate(doc)
    errs = validator.validate(doc)
    return (None, errs) if errs else (doc, {})


def parse_declarative_text(text: str, settings: Settings) -> tuple[Doc | None, str]:
    """(document, "") when Kong would load the text, else (None, Kong's error text)."""
    doc, errs = check_declarative_text(text, settings)
    if doc is not None:
        return doc, ""
    return None, errs if isinstance(errs, str) else pretty_print_error(errs)


def parse_declarative_file(path: str, settings: Settings) -> tuple[Doc | None, str]:
    """Read and validate a file like ``kong config parse`` and ``kong start``."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        return None, f"{path}: {exc.strerror}"
    return parse_declarative_text(text, settings)
