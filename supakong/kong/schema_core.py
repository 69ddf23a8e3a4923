"""Schema checks for the document header, services, routes, consumers and credentials.

Field tables follow kong/db/schema/entities/{services,routes,consumers}.lua and the plugin
DAOs at Kong/kong@2.8.1 and @3.9.3. Plugin entities are checked in `schema_plugins`.
"""

from __future__ import annotations

from collections.abc import Mapping

from . import value_checks as vc
from .entities import (
    CONSUMER_CHILD_KEYS,
    PLUGIN_ENTITY_KEYS,
    TOP_LEVEL_ENTITY_KEYS,
    Entities,
    Entity,
    is_nested_under,
    parse_url,
)
from .expressions import expression_problem
from .findings import Finding, error, info, warning
from .protocols import protocol_check
from .route_rules import check_route_rules
from .schema_plugins import check_plugin
from .schema_types import Field, check_fields, string_array, yaml_type
from .target import KongTarget
from .yamlpath import child

MAX_TIMEOUT = 2**31 - 2
_TIMEOUT = Field("integer", between=(1, MAX_TIMEOUT))  # services.lua nonzero_timeout
_EXTRAS = ("_comment", "_ignore")  # allowed in any entity (declarative_config.lua)

SERVICE_FIELDS: dict[str, Field] = {
    "id": Field("string", check=vc.uuid),
    "created_at": Field("integer"),
    "updated_at": Field("integer"),
    "name": Field("string", check=vc.utf8_name),
    "retries": Field("integer", between=(0, 32767)),
    "protocol": Field("string", check=protocol_check),
    "host": Field("string", check=vc.hostname),
    "port": Field("integer", between=(0, 65535)),
    "path": Field("string", check=vc.service_path),
    "connect_timeout": _TIMEOUT,
    "write_timeout": _TIMEOUT,
    "read_timeout": _TIMEOUT,
    "tags": string_array(),
    "client_certificate": Field("foreign"),
    "tls_verify": Field("boolean"),
    "tls_verify_depth": Field("integer", between=(0, 64)),
    "ca_certificates": Field("array", elements=Field("string", check=vc.uuid)),
    "enabled": Field("boolean"),
    "url": Field("string"),
}

_ENDPOINT = Field("record", fields={
    "ip": Field("string", check=vc.ip_or_cidr),
    "port": Field("integer", between=(0, 65535)),
})  # fmt: skip

ROUTE_FIELDS: dict[str, Field] = {
    "id": Field("string", check=vc.uuid),
    "created_at": Field("integer"),
    "updated_at": Field("integer"),
    "name": Field("string", check=vc.utf8_name),
    "protocols": Field("set", elements=Field("string", check=protocol_check), min_items=1),
    "methods": Field("set", elements=Field("string", check=vc.route_method)),
    "hosts": Field("array", elements=Field("string", check=vc.route_host)),
    "paths": Field("array", elements=Field("string")),  # per-version rules in route_rules
    "headers": Field("map", elements=string_array()),
    "https_redirect_status_code": Field("integer", one_of=(426, 301, 302, 307, 308)),
    "regex_priority": Field("integer"),
    "strip_path": Field("boolean"),
    "path_handling": Field("string", one_of=("v0", "v1")),
    "preserve_host": Field("boolean"),
    "request_buffering": Field("boolean"),
    "response_buffering": Field("boolean"),
    "snis": Field("set", elements=Field("string")),
    "sources": Field("set", elements=_ENDPOINT),
    "destinations": Field("set", elements=_ENDPOINT),
    "tags": string_array(),
    "service": Field("foreign"),
}

CONSUMER_FIELDS: dict[str, Field] = {
    "id": Field("string", check=vc.uuid),
    "created_at": Field("integer"),
    "updated_at": Field("integer", since=(3, 3)),
    "username": Field("string"),
    "custom_id": Field("string"),
    "tags": string_array(),
}

_CREDENTIAL_BASE: dict[str, Field] = {
    "id": Field("string", check=vc.uuid),
    "created_at": Field("integer"),
    "consumer": Field("foreign"),
    "tags": string_array(),
}
CREDENTIAL_FIELDS: dict[str, dict[str, Field]] = {
    "keyauth_credentials": {**_CREDENTIAL_BASE, "key": Field("string"), "ttl": Field("integer")},
    "acls": {**_CREDENTIAL_BASE, "group": Field("string", required=True)},
    "basicauth_credentials": {
        **_CREDENTIAL_BASE,
        "username": Field("string", required=True),
        "password": Field("string", required=True),
    },
}

# Core entities this validator accepts but does not look into.
_OTHER_CORE_KEYS: dict[str, tuple[tuple[int, int], tuple[int, int] | None]] = {
    "certificates": ((2, 8), None),
    "snis": ((2, 8), None),
    "upstreams": ((2, 8), None),
    "targets": ((2, 8), None),
    "ca_certificates": ((2, 8), None),
    "parameters": ((2, 8), None),
    "workspaces": ((2, 8), None),
    "clustering_data_planes": ((2, 8), None),
    "vaults_beta": ((2, 8), (3, 0)),
    "vaults": ((3, 0), None),
    "keys": ((3, 1), None),  # CHANGELOG 3.1.0
    "key_sets": ((3, 1), None),
    "filter_chains": ((3, 4), None),
}


def format_versions(target: KongTarget) -> tuple[str, ...]:
    """Accepted `_format_version` values (kong/db/schema/others/declarative_config.lua)."""
    return ("1.1", "2.1", "3.0") if target.at_least((3, 0)) else ("1.1", "2.1")


def check_header(doc: Mapping[object, object], target: KongTarget) -> list[Finding]:
    """Top-level keys: `_format_version`, `_transform`, entity lists, unknown keys."""
    findings = _check_format_version(doc.get("_format_version"), target)
    transform = doc.get("_transform")
    if transform is not None and not isinstance(transform, bool):
        findings.append(error("_transform", f"expected a boolean, got {yaml_type(transform)}"))
    for key in doc:
        findings.extend(_check_top_level_key(key, doc[key], target))
    return findings


def _check_format_version(value: object, target: KongTarget) -> list[Finding]:
    accepted = format_versions(target)
    shown = ", ".join(accepted)
    if value is None:
        return [
            error(
                "_format_version",
                "required field '_format_version' is missing",
                "add _format_version: '2.1' (valid on Kong 2.8 and 3.x)",
            )
        ]
    if not isinstance(value, str):
        return [
            error(
                "_format_version",
                f"expected a string, got {yaml_type(value)} {value!r}",
                f"quote it: _format_version: '{value}'",
            )
        ]
    if value not in accepted:
        return [
            error(
                "_format_version",
                f"{value!r} is not accepted by {target.label}: expected one of: {shown}",
                "use '2.1': it loads on both Kong 2.8 and 3.x",
            )
        ]
    return []


def _check_top_level_key(key: object, value: object, target: KongTarget) -> list[Finding]:
    if key in ("_format_version", "_transform", *_EXTRAS):
        return []
    if key in PLUGIN_ENTITY_KEYS:
        return _check_plugin_entity_key(str(key), str(key), target)
    if key in TOP_LEVEL_ENTITY_KEYS:
        return []
    if key in _OTHER_CORE_KEYS:
        return _check_other_core_key(str(key), value, target)
    if isinstance(key, str) and key.startswith("_"):
        return [
            warning(
                str(key),
                f"{key!r} is not a declarative config header Kong knows",
                "Kong may refuse it as 'unknown field'; remove it",
            )
        ]
    return [
        error(
            child("", key),
            f"unknown top-level field {key!r}: Kong refuses the file",
            "top-level keys are _format_version, _transform, entity lists such as "
            "services, routes, consumers, plugins, and plugin entities such as acls",
        )
    ]


def _check_plugin_entity_key(key: str, path: str, target: KongTarget) -> list[Finding]:
    plugin = PLUGIN_ENTITY_KEYS[key]
    if plugin in target.enabled_plugins and key not in CREDENTIAL_FIELDS:
        return [
            info(
                path,
                f"{key!r} entries are not validated offline",
                "run `kong config parse` in the Kong image to check them",
            )
        ]
    if plugin in target.enabled_plugins:
        return []
    return [
        error(
            path,
            f"unknown field {key!r}: the {plugin} plugin is not in KONG_PLUGINS, "
            f"so {target.label} has no {key!r} entity and refuses the file",
            f"add {plugin!r} to KONG_PLUGINS or remove {key!r}",
        )
    ]


def _check_other_core_key(key: str, value: object, target: KongTarget) -> list[Finding]:
    since, removed = _OTHER_CORE_KEYS[key]
    if not target.at_least(since) or (removed is not None and target.at_least(removed)):
        return [error(key, f"{target.label} has no {key!r} entity ('unknown field')")]
    if value:
        return [
            info(
                key,
                f"{key!r} entries are not validated offline",
                "run `kong config parse` in the Kong image to check them",
            )
        ]
    return []


def check_entities(entities: Entities, target: KongTarget, format_version: str) -> list[Finding]:
    """Schema-check every entity of the document."""
    findings: list[Finding] = list(entities.shape_findings)
    for entity in entities.items:
        findings.extend(_check_entity(entity, target, format_version))
    return findings


def _check_entity(entity: Entity, target: KongTarget, format_version: str) -> list[Finding]:
    if entity.kind == "services":
        return check_service(entity, target)
    if entity.kind == "routes":
        return check_route(entity, target, format_version)
    if entity.kind == "consumers":
        return check_consumer(entity, target)
    if entity.kind == "plugins":
        on_consumer = is_nested_under(entity, "consumers") or entity.get("consumer") is not None
        return check_plugin(entity.data, entity.path, target, on_consumer=on_consumer)
    return check_credential(entity, target)


def check_service(service: Entity, target: KongTarget) -> list[Finding]:
    """Service fields, the `url` shorthand and host/path consistency."""
    has_url = service.get("url") is not None
    # With `url`, Kong overwrites protocol/host/port/path before validating them
    # (Kong/kong@3.9.3:kong/db/schema/entities/services.lua:72-103).
    skip = (
        "routes",
        "plugins",
        *_EXTRAS,
        *(("protocol", "host", "port", "path") if has_url else ()),
    )
    findings = check_fields(service.data, SERVICE_FIELDS, service.path, target, skip=skip)
    if has_url:
        findings.extend(_check_url(service, target))
    elif service.get("host") is None:
        findings.append(
            error(
                child(service.path, "host"),
                "required field 'host' is missing",
                "set url: http://<host>:<port>/<path> or host:",
            )
        )
    findings.extend(_check_path_allowed(service))
    return findings


def _check_url(service: Entity, target: KongTarget) -> list[Finding]:
    url = service.get("url")
    where = child(service.path, "url")
    if not isinstance(url, str):
        return []  # the field table already reported the type
    upstream = parse_url(url)
    if upstream is None:
        return [error(where, f"invalid url {url!r}: expected scheme://host[:port][/path]")]
    problem = protocol_check(upstream.protocol, target)
    if problem is not None:
        return [error(where, f"url scheme: {problem.message}", problem.hint)]
    return _shorthand_overrides(service, upstream.protocol or "", where)


def _shorthand_overrides(service: Entity, scheme: str, where: str) -> list[Finding]:
    findings = []
    protocol = service.get("protocol")
    if protocol is not None and protocol != scheme:
        findings.append(
            info(
                child(service.path, "protocol"),
                f"protocol {protocol!r} is ignored: the url shorthand sets protocol to {scheme!r} "
                "(Supabase's own docker/volumes/api/kong.yml does this for realtime-v1-ws)",
                f"drop the protocol line or make it {scheme!r} to avoid confusion",
            )
        )
    for key in ("host", "port", "path"):
        if service.get(key) is not None:
            findings.append(
                info(
                    child(service.path, key),
                    f"{key!r} is ignored: the url shorthand overwrites it",
                    f"remove {key!r} or the url",
                )
            )
    return findings


def _check_path_allowed(service: Entity) -> list[Finding]:
    upstream_protocol = service.get("protocol")
    if service.get("url") is not None or service.get("path") is None:
        return []
    if upstream_protocol in ("tcp", "tls", "udp", "grpc", "grpcs"):
        return [
            error(
                child(service.path, "path"),
                f"path must not be set when protocol is {upstream_protocol!r}",
            )
        ]
    return []


def check_route(route: Entity, target: KongTarget, format_version: str) -> list[Finding]:
    """Route fields plus the protocol-dependent rules in `route_rules`."""
    findings = check_fields(
        route.data,
        ROUTE_FIELDS,
        route.path,
        target,
        skip=("plugins", *_EXTRAS, "expression", "priority"),
    )
    findings.extend(_check_expression_fields(route, target))
    findings.extend(check_route_rules(route.data, route.path, target, format_version))
    return findings


_ROUTER_DOCS = "https://docs.konghq.com/gateway/3.10.x/reference/expressions-language"
_MATCHERS = ("methods", "hosts", "paths", "headers", "snis", "sources", "destinations")


def _check_expression_fields(route: Entity, target: KongTarget) -> list[Finding]:
    """`expression` and `priority` exist only with router_flavor = expressions
    (Kong/kong@3.9.3:kong/db/schema/entities/routes.lua:206-216); there they must parse and
    must not be mixed with the other matchers (routes.lua:61-121)."""
    present = [key for key in ("expression", "priority") if route.get(key) is not None]
    if not present:
        return []
    if not target.expressions_router:
        return [_expression_field_unknown(route, key, target) for key in present]
    findings = check_fields(
        route.data,
        {"expression": Field("string"), "priority": Field("integer", between=(0, 2**46 - 1))},
        route.path,
        target,
        skip=[str(key) for key in route.data if key not in ("expression", "priority")],
    )
    return findings or _expression_conflicts(route)


def _expression_field_unknown(route: Entity, key: str, target: KongTarget) -> Finding:
    if not target.at_least((3, 0)):
        message = f"{target.label} has no {key!r} on routes ('unknown field'): expression routes need Kong 3.x"
        hint = "use paths/hosts/methods/headers, or target Kong 3.x with KONG_ROUTER_FLAVOR=expressions"
    else:
        message = (
            f"{key!r} exists only with KONG_ROUTER_FLAVOR=expressions; with router flavor "
            f"{target.router_flavor} {target.label} refuses the file ('unknown field')"
        )
        hint = (
            "set KONG_ROUTER_FLAVOR: expressions on the kong container (Supabase's docker-compose.kong.yml "
            "does) and check with --router-flavor expressions, or use paths/hosts/methods/headers"
        )
    return error(child(route.path, key), message, hint)


def _expression_conflicts(route: Entity) -> list[Finding]:
    matchers = [key for key in _MATCHERS if route.get(key)]
    expression = route.get("expression")
    if expression is not None and matchers:
        return [
            error(
                child(route.path, "expression"),
                f"an expression route cannot also set {', '.join(matchers)}: Kong refuses it "
                "('Router Expression failed validation')",
                "move the conditions into the expression, or drop the expression",
            )
        ]
    if expression is not None and route.get("regex_priority") not in (None, 0):
        return [error(child(route.path, "regex_priority"), "regex_priority cannot be set with an expression")]
    if expression is None and matchers and route.get("priority") not in (None, 0):
        return [
            error(
                child(route.path, "priority"),
                "priority only orders expression routes: Kong refuses it beside "
                f"{', '.join(matchers)} ('Router Expression failed validation')",
                "remove priority, or write the route as an expression",
            )
        ]
    problem = expression_problem(expression) if isinstance(expression, str) else None
    if problem is None:
        return []
    return [
        error(
            child(route.path, "expression"),
            f"Kong's router refuses the expression {expression!r}: {problem}",
            f"see the expressions language at {_ROUTER_DOCS}",
        )
    ]


def check_consumer(consumer: Entity, target: KongTarget) -> list[Finding]:
    """Consumer fields; at least one of username/custom_id (kong/db/schema/entities/consumers.lua)."""
    findings = check_fields(
        consumer.data, CONSUMER_FIELDS, consumer.path, target, skip=(*CONSUMER_CHILD_KEYS, *_EXTRAS)
    )
    for key in PLUGIN_ENTITY_KEYS:
        if key in consumer.data:
            findings.extend(_check_plugin_entity_key(key, child(consumer.path, key), target))
    if consumer.get("username") is None and consumer.get("custom_id") is None:
        findings.append(error(consumer.path, "at least one of 'username' or 'custom_id' must be set"))
    return findings


def check_credential(credential: Entity, target: KongTarget) -> list[Finding]:
    """keyauth_credentials, acls, basicauth_credentials (other plugin DAOs: not validated)."""
    fields = CREDENTIAL_FIELDS.get(credential.kind)
    if fields is None or PLUGIN_ENTITY_KEYS[credential.kind] not in target.enabled_plugins:
        return []  # other DAOs are not validated; a disabled plugin's key is reported once
    findings = check_fields(credential.data, fields, credential.path, target, skip=_EXTRAS)
    nested = is_nested_under(credential, "consumers")
    if not nested and credential.get("consumer") is None:
        findings.append(
            error(
                child(credential.path, "consumer"),
                "required field 'consumer' is missing",
                "name the consumer (its username) or nest this under it",
            )
        )
    return findings
