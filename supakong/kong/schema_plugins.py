"""Plugin entity and plugin `config` schemas, as data tables per Kong version.

Sources: Kong/kong@2.8.1 and @3.9.3:kong/plugins/<name>/schema.lua, CHANGELOG.md 3.0–3.9
(field additions: cors `private_network` 3.5, basic-auth `realm` 3.6, key-auth `realm` 3.7,
acl `always_use_authenticated_groups` 3.8, plugin `instance_name` 3.2; acl / ip-restriction
`whitelist`/`blacklist` and pre-/post-function `functions` removed in 3.0).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from . import value_checks as vc
from .findings import Finding, error, info, warning
from .lua_code import expression_error, lua_syntax_error, split_template, unknown_names
from .protocols import HTTP_FAMILY, OSS_PROTOCOLS, protocol_problem
from .schema_types import Field, Problem, available, check_fields, check_value, string_array
from .target import KongTarget
from .yamlpath import child

ConfigCheck = Callable[[Mapping[object, object], str, KongTarget], list[Finding]]

CORS_METHODS = ("GET", "HEAD", "PUT", "PATCH", "POST", "DELETE", "OPTIONS", "TRACE", "CONNECT")


@dataclass(frozen=True)
class PluginSchema:
    """The config table of one plugin plus its cross-field checks."""

    fields: Mapping[str, Field]
    protocols: tuple[str, ...] = HTTP_FAMILY
    protocols_since_3_4: tuple[str, ...] | None = None
    consumer_allowed: bool = True
    checks: tuple[ConfigCheck, ...] = ()

    def protocol_family(self, target: KongTarget) -> tuple[str, ...]:
        """Plugin-level `protocols` the plugin accepts on this target."""
        if self.protocols_since_3_4 is not None and target.at_least((3, 4)):
            return self.protocols_since_3_4
        return self.protocols


def _exactly_one_of(first: str, second: str, aliases: Mapping[str, str]) -> ConfigCheck:
    """acl: `allow` xor `deny` (deprecated shorthands count as their replacement)."""

    def check(config: Mapping[object, object], path: str, target: KongTarget) -> list[Finding]:
        present = {aliases.get(str(k), str(k)) for k, v in config.items() if v is not None}
        chosen = present & {first, second}
        if len(chosen) == 1:
            return []
        what = "both are" if chosen else "neither is"
        return [
            error(
                child(path, first),
                f"exactly one of config.{first} and config.{second} must be set ({what})",
                f"set config.{first}: [group, ...]",
            )
        ]

    return check


def _at_least_one_of(first: str, second: str, aliases: Mapping[str, str]) -> ConfigCheck:
    """ip-restriction: `allow` or `deny` (or both)."""

    def check(config: Mapping[object, object], path: str, target: KongTarget) -> list[Finding]:
        present = {aliases.get(str(k), str(k)) for k, v in config.items() if v is not None}
        if present & {first, second}:
            return []
        return [error(path, f"at least one of config.{first} and config.{second} must be set")]

    return check


def _termination_consistency(config: Mapping[object, object], path: str, target: KongTarget) -> list[Finding]:
    """request-termination custom_validator (kong/plugins/request-termination/schema.lua)."""

    def present(name: str) -> bool:
        value = config.get(name)
        return isinstance(value, str) and value != ""

    if present("message") and (present("content_type") or present("body")):
        return [error(child(path, "message"), "message cannot be used with content_type or body")]
    if present("content_type") and not present("body"):
        return [error(child(path, "content_type"), "content_type requires a body")]
    if config.get("echo") is True and (present("content_type") or present("body")):
        return [error(child(path, "echo"), "echo cannot be used with content_type and body")]
    return []


def _key_names_not_empty(config: Mapping[object, object], path: str, target: KongTarget) -> list[Finding]:
    """An empty key_names list leaves key-auth nowhere to look for the apikey."""
    if config.get("key_names") != []:
        return []
    return [
        warning(
            child(path, "key_names"),
            "key_names is empty: key-auth finds no key in any request and answers 401",
            "remove key_names (default: [apikey])",
        )
    ]


_LISTS_REMOVED = "use config.allow / config.deny (whitelist/blacklist were removed in 3.0)"
_SHORTHANDS = {"whitelist": "allow", "blacklist": "deny"}


def _deprecated_list(replacement: str, element: Field) -> Field:
    return Field(
        "array",
        elements=element,
        removed_in=(3, 0),
        deprecated=f"use config.{replacement} instead ({_LISTS_REMOVED})",
    )


_IP = Field("string", check=vc.ip_or_cidr)
_COLON = Field("string", check=vc.colon_pair)
_COLON_HEADER = Field("string", check=vc.colon_header_pair)


def _transform_record(headers: Field, body: Field, *, uri: bool = False) -> Field:
    fields = {
        "body": Field("array", elements=body),
        "headers": Field("array", elements=headers),
        "querystring": Field("array", elements=body),
    }
    if uri:
        fields["uri"] = Field("string")
    return Field("record", fields=fields)


def _lua_function(value: object, target: KongTarget) -> Problem | None:
    """pre-/post-function code must compile (Kong/kong@3.9.3:kong/plugins/pre-function/_schema.lua:10-17)."""
    error = lua_syntax_error(str(value))
    if error is None:
        return None
    return Problem(
        f"the Lua code does not compile: {error}; {target.label} refuses the file",
        "fix the Lua syntax: Kong compiles this code with LuaJIT when it loads the file",
    )


_PHASES = ("certificate", "rewrite", "access", "header_filter", "body_filter", "log")
_LUA_PHASE = Field("array", elements=Field("string", check=_lua_function))


def _at_least_one_phase(config: Mapping[object, object], path: str, target: KongTarget) -> list[Finding]:
    """pre-/post-function need code for a phase (…/pre-function/_schema.lua:52-61)."""
    phases = (*_PHASES, *(() if target.at_least((3, 0)) else ("functions",)))
    if any(config.get(phase) for phase in phases):
        return []
    return [error(path, f"set Lua code for one of the phases: {', '.join(phases)}", "e.g. access: [ ... ]")]


def _function_plugin() -> PluginSchema:
    fields = {phase: _LUA_PHASE for phase in _PHASES}
    fields["functions"] = Field(
        "array",
        elements=Field("string", check=_lua_function),
        removed_in=(3, 0),
        deprecated="use config.access (config.functions was removed in 3.0)",
    )
    return PluginSchema(fields=fields, protocols=OSS_PROTOCOLS, consumer_allowed=False, checks=(_at_least_one_phase,))


_TEMPLATE_PARTS = ("headers", "querystring", "body")


def _request_transformer_templates(config: Mapping[object, object], path: str, target: KongTarget) -> list[Finding]:
    """The ``$(...)`` Lua templates of request-transformer values (see ``lua_code``)."""
    findings: list[Finding] = []
    for op in ("rename", "replace", "add", "append"):
        part = config.get(op)
        if not isinstance(part, Mapping):
            continue
        for kind in _TEMPLATE_PARTS:
            entries = part.get(kind)
            for index, entry in enumerate(entries if isinstance(entries, list) else []):
                if isinstance(entry, str):
                    where = f"{child(child(path, op), kind)}[{index}]"
                    findings.extend(_template_findings(entry.partition(":")[2].lstrip(":"), kind, where, target))
        if op == "replace" and isinstance(part.get("uri"), str):
            findings.extend(_template_findings(str(part["uri"]), "uri", child(child(path, op), "uri"), target))
    return findings


def _template_findings(value: str, kind: str, where: str, target: KongTarget) -> list[Finding]:
    if target.substitutes_any(value):
        return []  # the entrypoint puts its own expression there ($LUA_AUTH_EXPR, ...)
    template = split_template(value)
    findings = []
    if template.unbalanced:
        findings.append(
            warning(
                where,
                "'$(' without its closing ')' is not a template: Kong sends this text as it is",
                "balance the parentheses of the Lua expression",
            )
        )
    for expression in template.expressions:
        problem = expression_error(expression)
        if problem is not None:
            outcome = (
                f"{target.label} refuses the file"
                if kind in ("querystring", "body")
                else "Kong answers 500 to every request on this route"
            )
            findings.append(error(where, f"the Lua expression $({expression}) does not compile: {problem}; {outcome}"))
        elif names := unknown_names(expression):
            findings.append(
                warning(
                    where,
                    f"$({expression}) reads {', '.join(names)}, which request-transformer templates do not have: "
                    "they evaluate to nil",
                    "templates can read headers, query_params, uri_captures and shared",
                )
            )
    return findings


PLUGIN_SCHEMAS: dict[str, PluginSchema] = {
    # Kong/kong@3.9.3:kong/plugins/cors/schema.lua; private_network from 3.5.0 (absent in 3.4.0)
    "cors": PluginSchema(
        fields={
            "origins": string_array(check=vc.cors_origin),
            "headers": string_array(),
            "exposed_headers": string_array(),
            "methods": Field("array", elements=Field("string", one_of=CORS_METHODS)),
            "max_age": Field("number"),
            "credentials": Field("boolean"),
            "preflight_continue": Field("boolean"),
            "private_network": Field("boolean", since=(3, 5)),
        },
        consumer_allowed=False,
    ),
    # Kong/kong@3.9.3:kong/plugins/key-auth/schema.lua; realm from 3.7 (CHANGELOG 3.8.0 "realm ... before 3.7")
    "key-auth": PluginSchema(
        fields={
            "key_names": Field("array", elements=Field("string", check=vc.header_name)),
            "hide_credentials": Field("boolean"),
            "anonymous": Field("string"),
            "key_in_header": Field("boolean"),
            "key_in_query": Field("boolean"),
            "key_in_body": Field("boolean"),
            "run_on_preflight": Field("boolean"),
            "realm": Field("string", since=(3, 7)),
        },
        consumer_allowed=False,
        checks=(_key_names_not_empty,),
    ),
    # Kong/kong@3.9.3:kong/plugins/acl/schema.lua; always_use_authenticated_groups from 3.8 (CHANGELOG 3.8.0, #13184)
    "acl": PluginSchema(
        fields={
            "allow": string_array(),
            "deny": string_array(),
            "hide_groups_header": Field("boolean"),
            "always_use_authenticated_groups": Field("boolean", since=(3, 8)),
            "include_consumer_groups": Field("boolean", enterprise_only=True),
            "whitelist": _deprecated_list("allow", Field("string")),
            "blacklist": _deprecated_list("deny", Field("string")),
        },
        consumer_allowed=False,
        checks=(_exactly_one_of("allow", "deny", _SHORTHANDS),),
    ),
    # realm from 3.6 (CHANGELOG 3.8.0 "realm ... before 3.6")
    "basic-auth": PluginSchema(
        fields={
            "anonymous": Field("string"),
            "hide_credentials": Field("boolean"),
            "realm": Field("string", since=(3, 6)),
        },
        consumer_allowed=False,
    ),
    "request-transformer": PluginSchema(
        fields={
            "http_method": Field("string", check=vc.upper_case_method),
            "remove": _transform_record(Field("string"), Field("string")),
            "rename": _transform_record(Field("string", check=vc.rename_header_pair), _COLON),
            "replace": _transform_record(_COLON_HEADER, _COLON, uri=True),
            "add": _transform_record(_COLON_HEADER, _COLON),
            "append": _transform_record(_COLON_HEADER, _COLON),
        },
        protocols=OSS_PROTOCOLS,
        checks=(_request_transformer_templates,),
    ),
    "pre-function": _function_plugin(),
    "post-function": _function_plugin(),
    "request-termination": PluginSchema(
        fields={
            "status_code": Field("integer", between=(100, 599)),
            "message": Field("string"),
            "content_type": Field("string"),
            "body": Field("string"),
            "echo": Field("boolean"),
            "trigger": Field("string", check=vc.header_name),
        },
        checks=(_termination_consistency,),
    ),
    # status/message exist since 2.6 (#7728); TCP support from 3.4 (CHANGELOG 3.4.0)
    "ip-restriction": PluginSchema(
        fields={
            "allow": Field("array", elements=_IP),
            "deny": Field("array", elements=_IP),
            "status": Field("number"),
            "message": Field("string"),
            "whitelist": _deprecated_list("allow", _IP),
            "blacklist": _deprecated_list("deny", _IP),
        },
        protocols_since_3_4=OSS_PROTOCOLS,
        checks=(_at_least_one_of("allow", "deny", _SHORTHANDS),),
    ),
}


def plugin_fields(name: str, target: KongTarget) -> dict[str, Field]:
    """The config fields plugin `name` accepts on the target (empty if unknown)."""
    schema = PLUGIN_SCHEMAS.get(name)
    if schema is None:
        return {}
    return {key: spec for key, spec in schema.fields.items() if available(spec, target)}


def _plugin_protocol_check(
    family: tuple[str, ...],
) -> Callable[[object, KongTarget], Problem | None]:
    def check(value: object, target: KongTarget) -> Problem | None:
        return protocol_problem(value, target, family)

    return check


PLUGIN_ENTITY_FIELDS: dict[str, Field] = {
    "id": Field("string", check=vc.uuid),
    "name": Field("string", required=True),
    "instance_name": Field("string", check=vc.utf8_name, since=(3, 2)),  # CHANGELOG 3.2.0
    "created_at": Field("integer"),
    "updated_at": Field("integer", since=(3, 3)),  # CHANGELOG 3.3.0
    "route": Field("foreign"),
    "service": Field("foreign"),
    "consumer": Field("foreign"),
    "enabled": Field("boolean"),
    "tags": string_array(),
    "ordering": Field("any", enterprise_only=True),
    "consumer_group": Field("foreign", enterprise_only=True),
}
_ENTITY_EXTRAS = ("config", "protocols", "_comment", "_ignore")


def check_plugin(plugin: Mapping[object, object], path: str, target: KongTarget, *, on_consumer: bool) -> list[Finding]:
    """Check one plugin entity: enabled in KONG_PLUGINS, entity fields, config, protocols.

    `on_consumer` is True when the plugin is nested under a consumer or names one.
    """
    findings = check_fields(plugin, PLUGIN_ENTITY_FIELDS, path, target, skip=_ENTITY_EXTRAS)
    name = plugin.get("name")
    if not isinstance(name, str) or not name:
        return findings
    enabled = _enabled_problem(name, path, target)
    if enabled is not None:
        return [*findings, enabled]
    schema = PLUGIN_SCHEMAS.get(name)
    if schema is None:
        return [*findings, *_unknown_plugin_config(name, plugin, path)]
    if on_consumer and not schema.consumer_allowed:
        findings.append(
            error(
                child(path, "consumer"),
                f"plugin {name!r} cannot be applied to a consumer",
                "attach it to a service or route instead",
            )
        )
    findings.extend(_check_config(schema, plugin.get("config"), child(path, "config"), target))
    findings.extend(_check_plugin_protocols(schema, plugin.get("protocols"), path, target))
    return findings


def _enabled_problem(name: str, path: str, target: KongTarget) -> Finding | None:
    if name in target.enabled_plugins:
        return None
    where = child(path, "name")
    if target.is_enterprise and target.bundled_enabled:
        return warning(
            where,
            f"plugin {name!r} is not a bundled OSS plugin known to this validator",
            "if it is an Enterprise plugin this is fine; otherwise add it to KONG_PLUGINS",
        )
    enabled = ",".join(target.plugins) or "(none)"
    return error(
        where,
        f"plugin {name!r} not enabled; add it to the 'plugins' configuration property: {target.label} refuses the file",
        f"add {name!r} to KONG_PLUGINS (now: {enabled}) or remove the plugin",
    )


def _unknown_plugin_config(name: str, plugin: Mapping[object, object], path: str) -> list[Finding]:
    config = plugin.get("config")
    if config is not None and not isinstance(config, Mapping):
        return [error(child(path, "config"), "expected a record (YAML mapping)")]
    return [
        info(
            child(path, "config"),
            f"config of plugin {name!r} is not validated offline",
            "run `kong config parse` in the Kong image to check it",
        )
    ]


def _check_config(schema: PluginSchema, config: object, path: str, target: KongTarget) -> list[Finding]:
    if config is not None and not isinstance(config, Mapping):
        return [error(path, "expected a record (YAML mapping)")]
    values: Mapping[object, object] = config if isinstance(config, Mapping) else {}
    findings = check_fields(values, schema.fields, path, target, lenient_unknown=target.is_enterprise)
    for check in schema.checks:
        findings.extend(check(values, path, target))
    return findings


def _check_plugin_protocols(schema: PluginSchema, protocols: object, path: str, target: KongTarget) -> list[Finding]:
    family = schema.protocol_family(target)
    spec = Field("set", elements=Field("string", check=_plugin_protocol_check(family)))
    return check_value(protocols, spec, child(path, "protocols"), target)
