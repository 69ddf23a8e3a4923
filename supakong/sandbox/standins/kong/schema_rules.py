"""Kong's entity and plugin schemas as data, for 2.8.1 and 3.9.x.

Transcribed (not copied) from Kong's own schema files; each table cites its source as
``Kong/kong@<tag>:<path>:<line>``. The engine that applies them is ``validation``. Lua
patterns are written as the equivalent Python regular expressions.

A field exists from ``since`` and before ``until``; ``flavors`` limits it to some values
of ``router_flavor`` (3.x). Versions are (major, minor, patch).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

Version = tuple[int, int, int]
V28: Version = (2, 8, 0)
V30: Version = (3, 0, 0)
ALL_FLAVORS = frozenset({"traditional", "traditional_compatible", "expressions"})
EXPRESSIONS = frozenset({"expressions"})

# constants.PROTOCOLS, sorted as `one_of` prints them (Kong/kong@2.8.1:kong/constants.lua,
# same list at 3.9.3).
PROTOCOLS = ("grpc", "grpcs", "http", "https", "tcp", "tls", "tls_passthrough", "udp")
HTTP_PROTOCOLS = ("grpc", "grpcs", "http", "https")  # typedefs.protocols_http
MAX_TIMEOUT = 2**31 - 2


@dataclass(frozen=True)
class Check:
    """An entity check (Kong/kong@3.9.3:kong/db/schema/init.lua:570-830): ``kind`` is
    at_least_one_of, only_one_of or mutually_exclusive_sets (``fields`` against
    ``then_fields``). The route checks (snis, expressions) are code in ``validation``."""

    kind: str
    fields: tuple[str, ...] = ()
    then_fields: tuple[str, ...] = ()
    then_err: str = ""
    else_fields: tuple[str, ...] = ()
    else_err: str = ""
    since: Version = V28
    until: Version | None = None


@dataclass(frozen=True)
class Field:
    """One field of a Kong schema and the validators Kong runs on it, in Kong's order
    (``Schema.validators_order``, Kong/kong@3.9.3:kong/db/schema/init.lua:388-420)."""

    type: str
    required: bool = False  # and no default: "required field missing"
    eq_null: str = ""  # typedefs.no_*: the field must stay unset (its error text)
    one_of: tuple[object, ...] = ()
    uuid: bool = False
    between: tuple[int, int] | None = None
    len_min: int | None = None  # strings default to 1 (init.lua:986-993)
    starts_with: str = ""
    match_none: tuple[tuple[str, str], ...] = ()
    match: str = ""
    match_all: tuple[tuple[str, str], ...] = ()
    match_any: tuple[tuple[str, ...], str] | None = None
    custom: str = ""  # a named validator of ``validation.CUSTOM``
    subsets: tuple[tuple[str, ...], ...] = ()  # mutually_exclusive_subsets
    elements: Field | None = None
    keys: Field | None = None
    values: Field | None = None
    fields: tuple[tuple[str, Field], ...] = ()
    checks: tuple[Check, ...] = ()
    since: Version = V28
    until: Version | None = None
    flavors: frozenset[str] = ALL_FLAVORS


def exists(spec: Field | Check, version: Version, flavor: str) -> bool:
    """True when the field (or check) is part of the schema of that Kong."""
    if version < spec.since or (spec.until is not None and version >= spec.until):
        return False
    return not isinstance(spec, Field) or flavor in spec.flavors


# ------------------------------------------------------------------ typedefs
# Kong/kong@2.8.1:kong/db/schema/typedefs.lua, Kong/kong@3.9.3:kong/db/schema/typedefs.lua
UUID = Field("string", uuid=True)  # typedefs.uuid (3.9.3:359)
TIMESTAMP = Field("integer")  # typedefs.auto_timestamp_s (3.9.3:367)
TAGS = Field("set", elements=Field("string", required=True, custom="tag"))  # 3.9.3:448-459
UTF8_NAME = Field("string", custom="utf8_name")  # 3.9.3:415 (validate_utf8_name, :137)
HTTP_METHOD = Field("string", match=r"^[A-Z]+$")  # 3.9.3:247-251, match = "^%u+$"
PROTOCOL = Field("string", one_of=PROTOCOLS)  # 3.9.3:254-259
HOST = Field("string", custom="host")  # 3.9.3:262-266 (validate_host, :24)
PORT = Field("integer", between=(0, 65535))  # 3.9.3:311-315
HEADER_NAME = Field("string", custom="header_name")  # 3.9.3:345-349, kong/tools/http.lua:271
IP_OR_CIDR = Field("string", custom="ip_or_cidr")  # 3.9.3:295-299
# typedefs.path (3.9.3:318-328): starts with /, no //, RFC 3986 characters (validate_path, :71)
PATH = Field("string", starts_with="/", match_none=(("//", "must not have empty segments"),), custom="path")
# typedefs.hosts (3.9.3:575-592)
HOSTS = Field(
    "array",
    elements=Field(
        "string",
        match_all=((r"^[^*]*\*?[^*]*$", "invalid wildcard: must have at most one wildcard"),),
        match_any=((r"^\*\.", r"\.\*$", r"^[^*]*$"), "invalid wildcard: must be placed at leftmost or rightmost label"),
        custom="host_with_wildcards",
    ),
)
# 2.8: typedefs.paths (Kong/kong@2.8.1:kong/db/schema/typedefs.lua:530-541): a path whose
# characters leave [a-zA-Z0-9.-_~/%] is a regex and must compile (validate_path_with_regexes, :441).
PATHS_2_8 = Field(
    "array",
    elements=Field("string", starts_with="/", match_none=(("//", "must not have empty segments"),), custom="path_2_8"),
    until=V30,
)
# 3.x: typedefs.router_paths (3.9.3:596-615): / (prefix, normalized) or ~/ (regex).
ROUTER_PATHS = Field(
    "array",
    elements=Field(
        "string",
        match_any=((r"^/", r"^~/"), "should start with: / (fixed path) or ~/ (regex path)"),
        match_none=(("//", "must not have empty segments"),),
        custom="router_path",
    ),
    since=V30,
)
# typedefs.headers (3.9.3:619-629); routes add the "no host" rule (routes.lua:191-199).
ROUTE_HEADERS = Field(
    "map",
    keys=Field(
        "string",
        custom="header_name",
        match_none=(
            (
                r"^[Hh][Oo][Ss][Tt]$",
                "cannot contain 'host' header, which must be specified in the 'hosts' attribute",
            ),
        ),
    ),
    values=Field("array", elements=Field("string")),
)
ENDPOINTS = Field(  # typedefs.sources / destinations (3.9.3:533-563)
    "set",
    elements=Field(
        "record",
        fields=(("ip", IP_OR_CIDR), ("port", PORT)),
        checks=(Check("at_least_one_of", ("ip", "port")),),
    ),
)
TIMEOUT = Field("integer", between=(1, MAX_TIMEOUT))  # services.lua nonzero_timeout (3.9.3:11-14)

# ------------------------------------------------------------------ services
# Kong/kong@2.8.1:kong/db/schema/entities/services.lua:28-47 = Kong/kong@3.9.3:…:29-48
SERVICE_FIELDS: tuple[tuple[str, Field], ...] = (
    ("id", UUID),
    ("created_at", TIMESTAMP),
    ("updated_at", TIMESTAMP),
    ("name", UTF8_NAME),
    ("retries", Field("integer", between=(0, 32767))),
    ("protocol", PROTOCOL),
    ("host", replace(HOST, required=True)),
    ("port", PORT),
    ("path", PATH),
    ("connect_timeout", TIMEOUT),
    ("write_timeout", TIMEOUT),
    ("read_timeout", TIMEOUT),
    ("tags", TAGS),
    ("client_certificate", Field("foreign")),
    ("tls_verify", Field("boolean")),
    ("tls_verify_depth", Field("integer", between=(0, 64))),
    ("ca_certificates", Field("array", elements=Field("string", uuid=True))),
    ("enabled", Field("boolean")),
)
# entity_checks (3.9.3:51-72): no path for stream and grpc services
SERVICE_NO_PATH_PROTOCOLS = ("tcp", "tls", "udp", "grpc", "grpcs")

# ------------------------------------------------------------------ routes
# Kong/kong@2.8.1:kong/db/schema/entities/routes.lua:12-59, Kong/kong@3.9.3:…:149-213
ROUTE_FIELDS: tuple[tuple[str, Field], ...] = (
    ("id", UUID),
    ("created_at", TIMESTAMP),
    ("updated_at", TIMESTAMP),
    ("name", UTF8_NAME),
    (
        "protocols",
        Field(
            "set",
            len_min=1,
            elements=PROTOCOL,
            subsets=(("http", "https"), ("tcp", "tls", "udp"), ("tls_passthrough",), ("grpc", "grpcs")),
        ),
    ),
    ("methods", Field("set", elements=HTTP_METHOD)),  # typedefs.methods (3.9.3:567-571)
    ("hosts", HOSTS),
    ("paths", PATHS_2_8),
    ("paths", ROUTER_PATHS),
    ("headers", ROUTE_HEADERS),
    ("https_redirect_status_code", Field("integer", one_of=(426, 301, 302, 307, 308))),
    ("regex_priority", Field("integer")),
    ("strip_path", Field("boolean")),
    ("path_handling", Field("string", one_of=("v0", "v1"))),
    ("preserve_host", Field("boolean")),
    ("request_buffering", Field("boolean")),
    ("response_buffering", Field("boolean")),
    # snis: typedefs.sni on 2.8 and with router_flavor traditional, else wildcard_host
    # (3.9.3:35-39, 180-182)
    ("snis", Field("set", elements=Field("string", custom="sni"), until=V30)),
    ("snis", Field("set", elements=Field("string", custom="sni"), since=V30, flavors=frozenset({"traditional"}))),
    (
        "snis",
        Field(
            "set",
            elements=Field("string", custom="wildcard_host"),
            since=V30,
            flavors=frozenset({"traditional_compatible", "expressions"}),
        ),
    ),
    ("sources", ENDPOINTS),
    ("destinations", ENDPOINTS),
    ("tags", TAGS),
    ("service", Field("foreign")),
    # expressions flavor only (3.9.3:206-216)
    ("expression", Field("string", since=V30, flavors=EXPRESSIONS)),
    ("priority", Field("integer", between=(0, 2**46 - 1), since=V30, flavors=EXPRESSIONS)),
)
_HTTP_ERR = "must set one of %s when 'protocols' is '%s'"
_NOT_HTTP = "cannot set '{}' when 'protocols' is 'http' or 'https'"
_NOT_STREAM = "cannot set '{}' when 'protocols' is 'tcp', 'tls', 'tls_passthrough' or 'udp'"
_NOT_GRPC = "cannot set '{}' when 'protocols' is 'grpc' or 'grpcs'"


@dataclass(frozen=True)
class RouteSubschema:
    """One of routes_subschemas.lua's subschemas: fields that must stay unset, and which
    fields must be set (Kong/kong@3.9.3:kong/db/schema/entities/routes_subschemas.lua)."""

    name: str
    unset: tuple[tuple[str, str], ...]  # (field, error) for typedefs.no_* fields
    need: tuple[tuple[str, tuple[str, ...]], ...]  # (protocol it contains, fields), first wins
    grpc_strip_path: bool = False
    sources_allowed_with_expressions: bool = False
    expression_counts: bool = True  # the expressions flavor adds `expression` to `need`
    need_err: str = _HTTP_ERR
    stream_err: str = ""


ROUTE_SUBSCHEMAS: dict[str, RouteSubschema] = {}
_HTTP = RouteSubschema(
    "http",
    unset=(("sources", _NOT_HTTP.format("sources")), ("destinations", _NOT_HTTP.format("destinations"))),
    need=(
        ("https", ("methods", "hosts", "headers", "paths", "snis")),
        ("http", ("methods", "hosts", "headers", "paths")),
    ),
    sources_allowed_with_expressions=True,
)
_STREAM = RouteSubschema(
    "tcp",
    unset=tuple((name, _NOT_STREAM.format(name)) for name in ("methods", "hosts", "paths", "headers")),
    need=(),
)
_GRPC = RouteSubschema(
    "grpc",
    unset=(
        ("methods", _NOT_GRPC.format("methods")),
        ("sources", _NOT_GRPC.format("sources")),
        ("destinations", _NOT_GRPC.format("destinations")),
    ),
    need=(("grpcs", ("hosts", "headers", "paths", "snis")), ("grpc", ("hosts", "headers", "paths"))),
    grpc_strip_path=True,
    sources_allowed_with_expressions=True,
)
ROUTE_SUBSCHEMAS.update(
    http=_HTTP, https=_HTTP, tcp=_STREAM, tls=_STREAM, udp=_STREAM, tls_passthrough=_STREAM, grpc=_GRPC, grpcs=_GRPC
)
STREAM_NEED = (
    # routes_subschemas.lua:34-45
    (
        ("tcp", "tls", "udp"),
        ("sources", "destinations", "snis"),
        "must set one of %s when 'protocols' is 'tcp', 'tls' or 'udp'",
    ),
    (("tls_passthrough",), ("snis",), "must set snis when 'protocols' is 'tls_passthrough'"),
)

# ------------------------------------------------------------------ consumers
# Kong/kong@2.8.1:kong/db/schema/entities/consumers.lua:9-19, Kong/kong@3.9.3:…:9-34
CONSUMER_FIELDS: tuple[tuple[str, Field], ...] = (
    ("id", UUID),
    ("created_at", TIMESTAMP),
    ("updated_at", replace(TIMESTAMP, since=V30)),
    ("username", Field("string")),
    ("custom_id", Field("string")),
    ("tags", TAGS),
)
CONSUMER_CHECKS = (Check("at_least_one_of", ("custom_id", "username")),)

# ------------------------------------------------------------------ plugin-owned entities
# kong/plugins/{key-auth,acl,basic-auth}/daos.lua (identical at 2.8.1 and 3.9.3)
_CREDENTIAL = (("id", UUID), ("created_at", TIMESTAMP), ("consumer", Field("foreign", required=True)), ("tags", TAGS))
CREDENTIAL_FIELDS: dict[str, tuple[tuple[str, Field], ...]] = {
    "keyauth_credentials": (*_CREDENTIAL, ("key", Field("string")), ("ttl", Field("number"))),  # key: auto
    "acls": (*_CREDENTIAL, ("group", Field("string", required=True))),
    "basicauth_credentials": (
        *_CREDENTIAL,
        ("username", Field("string", required=True)),
        ("password", Field("string", required=True)),
    ),
}

# ------------------------------------------------------------------ plugins (the entity)
# Kong/kong@2.8.1:kong/db/schema/entities/plugins.lua:16-25, Kong/kong@3.9.3:…:17-28
PLUGIN_FIELDS: tuple[tuple[str, Field], ...] = (
    ("id", UUID),
    ("name", Field("string", required=True)),
    ("instance_name", replace(UTF8_NAME, since=(3, 2, 0))),  # CHANGELOG 3.2.0
    ("created_at", TIMESTAMP),
    ("updated_at", replace(TIMESTAMP, since=(3, 3, 0))),  # CHANGELOG 3.3.0
    ("route", Field("foreign")),
    ("service", Field("foreign")),
    ("consumer", Field("foreign")),
    ("protocols", Field("set", elements=PROTOCOL)),
    ("enabled", Field("boolean")),
    ("tags", TAGS),
)


@dataclass(frozen=True)
class PluginRules:
    """A plugin's schema.lua: its config record, protocols and entity checks."""

    config: tuple[tuple[str, Field], ...]
    checks: tuple[Check, ...] = ()
    no_consumer: bool = True  # typedefs.no_consumer
    protocols: tuple[str, ...] = PROTOCOLS
    config_check: str = ""  # the config record's custom_validator


def _strings() -> Field:
    return Field("array", elements=Field("string"))


CORS_METHODS = ("GET", "HEAD", "PUT", "PATCH", "POST", "DELETE", "OPTIONS", "TRACE", "CONNECT")
# request-transformer (Kong/kong@3.9.3:kong/plugins/request-transformer/schema.lua:49-121)
_RT_STRINGS = Field("array", elements=Field("string"))
_RT_HEADERS = Field("array", elements=Field("string", custom="rt_header"))
_RT_COLON = Field("array", elements=Field("string", custom="rt_colon_value"))
_RT_COLON_HEADERS = Field("array", elements=Field("string", match=r"^[^:]+:.*$", custom="rt_header"))
_RT_RENAME_HEADERS = Field("array", elements=Field("string", match=r"^[^:]+:.*$", custom="rt_rename_header"))


def _rt_record(body: Field, headers: Field, querystring: Field, uri: bool = False) -> Field:
    fields = (("body", body), ("headers", headers), ("querystring", querystring))
    return Field("record", fields=fields + ((("uri", Field("string")),) if uri else ()))


# pre-/post-function (Kong/kong@3.9.3:kong/plugins/pre-function/_schema.lua:20-61; 2.8.1
# also has the deprecated `functions` array, mutually exclusive with `access`)
_PHASES = ("certificate", "rewrite", "access", "header_filter", "body_filter", "log")


def _function_plugin(name: str) -> PluginRules:
    phase = Field("array", elements=Field("string", custom=f"{name}_code"))
    return PluginRules(
        config=(*((p, phase) for p in _PHASES), ("functions", replace(phase, until=V30))),
        checks=(
            Check("mutually_exclusive_sets", ("config.functions",), ("config.access",), until=V30),
            Check("at_least_one_of", tuple(f"config.{p}" for p in _PHASES) + ("config.functions",), until=V30),
            Check("at_least_one_of", tuple(f"config.{p}" for p in _PHASES), since=V30),
        ),
    )


_ACL_LISTS = ("config.allow", "config.deny")
# 2.8's deprecated shorthands (acl and ip-restriction schema.lua shorthand_fields, gone in 3.0)
SHORTHANDS = {"whitelist": "allow", "blacklist": "deny"}

PLUGINS: dict[str, PluginRules] = {
    # Kong/kong@3.9.3:kong/plugins/cors/schema.lua:26-53 (2.8.1:26-54); private_network
    # is absent at 2.8.1 and present at 3.9.3 (first in 3.5.0, CHANGELOG)
    "cors": PluginRules(
        config=(
            ("origins", Field("array", elements=Field("string", custom="asterisk_or_regex"))),
            ("headers", _strings()),
            ("exposed_headers", _strings()),
            ("methods", Field("array", elements=Field("string", one_of=CORS_METHODS))),
            ("max_age", Field("number")),
            ("credentials", Field("boolean")),
            ("private_network", Field("boolean", since=(3, 5, 0))),
            ("preflight_continue", Field("boolean")),
        ),
        protocols=HTTP_PROTOCOLS,
    ),
    # Kong/kong@3.9.3:kong/plugins/key-auth/schema.lua:4-27 (2.8.1 has no realm; 3.7.0)
    "key-auth": PluginRules(
        config=(
            ("key_names", Field("array", elements=HEADER_NAME)),
            ("hide_credentials", Field("boolean")),
            ("anonymous", Field("string")),
            ("key_in_header", Field("boolean")),
            ("key_in_query", Field("boolean")),
            ("key_in_body", Field("boolean")),
            ("run_on_preflight", Field("boolean")),
            ("realm", Field("string", since=(3, 7, 0))),
        ),
        protocols=HTTP_PROTOCOLS,
    ),
    # Kong/kong@3.9.3:kong/plugins/acl/schema.lua:4-28; 2.8.1:4-40 has the whitelist /
    # blacklist shorthands (regexes), gone in 3.0; always_use_authenticated_groups 3.8.0
    "acl": PluginRules(
        config=(
            ("allow", _strings()),
            ("deny", _strings()),
            ("hide_groups_header", Field("boolean")),
            ("always_use_authenticated_groups", Field("boolean", since=(3, 8, 0))),
            ("whitelist", Field("array", elements=Field("string", custom="regex"), until=V30)),
            ("blacklist", Field("array", elements=Field("string", custom="regex"), until=V30)),
        ),
        checks=(Check("only_one_of", _ACL_LISTS), Check("at_least_one_of", _ACL_LISTS)),
        protocols=HTTP_PROTOCOLS,
    ),
    # Kong/kong@3.9.3:kong/plugins/basic-auth/schema.lua:4-17 (realm from 3.6.0)
    "basic-auth": PluginRules(
        config=(
            ("anonymous", Field("string")),
            ("hide_credentials", Field("boolean")),
            ("realm", Field("string", since=(3, 6, 0))),
        ),
        protocols=HTTP_PROTOCOLS,
    ),
    # Kong/kong@3.9.3:kong/plugins/request-termination/schema.lua:9-47
    "request-termination": PluginRules(
        config=(
            ("status_code", Field("integer", between=(100, 599))),
            ("message", Field("string")),
            ("content_type", Field("string")),
            ("body", Field("string")),
            ("echo", Field("boolean")),
            ("trigger", HEADER_NAME),
        ),
        no_consumer=False,
        protocols=HTTP_PROTOCOLS,
        config_check="termination",
    ),
    # Kong/kong@3.9.3:kong/plugins/ip-restriction/schema.lua:4-22 (2.8.1:4-40: http only,
    # whitelist/blacklist shorthands)
    "ip-restriction": PluginRules(
        config=(
            ("allow", Field("array", elements=IP_OR_CIDR)),
            ("deny", Field("array", elements=IP_OR_CIDR)),
            ("status", Field("number")),
            ("message", Field("string")),
            ("whitelist", Field("array", elements=Field("string", custom="regex"), until=V30)),
            ("blacklist", Field("array", elements=Field("string", custom="regex"), until=V30)),
        ),
        checks=(Check("at_least_one_of", _ACL_LISTS),),
        no_consumer=False,
    ),
    "request-transformer": PluginRules(
        config=(
            ("http_method", HTTP_METHOD),
            ("remove", _rt_record(_RT_STRINGS, _RT_HEADERS, _RT_STRINGS)),
            ("rename", _rt_record(_RT_COLON, _RT_RENAME_HEADERS, _RT_COLON)),
            ("replace", _rt_record(_RT_COLON, _RT_COLON_HEADERS, _RT_COLON, uri=True)),
            ("add", _rt_record(_RT_COLON, _RT_COLON_HEADERS, _RT_COLON)),
            ("append", _rt_record(_RT_COLON, _RT_COLON_HEADERS, _RT_COLON)),
        ),
        no_consumer=False,
    ),
    "pre-function": _function_plugin("pre-function"),
    "post-function": _function_plugin("post-function"),
}

# Top-level keys of a declarative file (Kong/kong@3.9.3:kong/db/schema/others/declarative_config.lua:254-259;
# 2.8.1 accepts only 1.1 and 2.1).
FORMAT_VERSIONS_2_8 = ("1.1", "2.1")
FORMAT_VERSIONS_3 = ("1.1", "2.1", "3.0")
# Core entities this stand-in accepts without looking into them (constants.lua CORE_ENTITIES).
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
# Unique fields, refused when repeated from 3.4.0 (declarative_config.lua:360, #11199).
UNIQUE_KEYS = {
    "services": ("name",),
    "routes": ("name",),
    "consumers": ("username", "custom_id"),
    "keyauth_credentials": ("key",),
    "basicauth_credentials": ("username",),
}
