"""Route rules that depend on the protocols and on the Kong version
(Kong/kong@2.8.1 and @3.9.3:kong/db/schema/entities/routes.lua, routes_subschemas.lua, typedefs.lua).

- protocols: mutually exclusive groups; which matching fields each group needs or forbids;
- paths: 2.8 (`typedefs.paths`, regex by heuristic) versus 3.x (`typedefs.router_path`:
  `/` plain or `~/` regex, plain paths normalized; 1.1/2.1 files migrated on load).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from .findings import Finding, error, info, warning
from .protocols import GROUP_MEMBERS, PROTOCOL_GROUPS
from .target import KongTarget
from .value_checks import compiles_as_regex, header_name
from .yamlpath import child, item

DEFAULT_ROUTE_PROTOCOLS = ("http", "https")
HTTP_MATCH_FIELDS = ("methods", "hosts", "headers", "paths")
STREAM_MATCH_FIELDS = ("sources", "destinations", "snis")
SNI_PROTOCOLS = frozenset({"https", "grpcs", "tls", "tls_passthrough", "wss"})
# Kong 2.8 treats a path with any character outside this set as a regex
# (Kong/kong@2.8.1:kong/db/schema/typedefs.lua:441-468).
_REGEX_HINT_RE = re.compile(r"[^A-Za-z0-9._~/%-]")
_PERCENT_RE = re.compile(r"%([0-9A-Fa-f]{2})")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def check_route_rules(
    route: Mapping[object, object], path: str, target: KongTarget, format_version: str
) -> list[Finding]:
    """All protocol- and version-dependent checks of one route."""
    protocols = route_protocols(route)
    findings = _check_groups(protocols, path, target)
    groups = {PROTOCOL_GROUPS[p] for p in protocols}
    if len(groups) == 1:
        findings.extend(_check_matching(route, protocols, groups.pop(), path, target))
    findings.extend(_check_snis(route, protocols, path))
    findings.extend(_check_header_keys(route.get("headers"), child(path, "headers"), target))
    findings.extend(check_paths(route.get("paths"), child(path, "paths"), target, format_version))
    findings.extend(_check_path_handling(route.get("path_handling"), path, target))
    return findings


def route_protocols(route: Mapping[object, object]) -> list[str]:
    """The route's known protocols (Kong's default `[http, https]` when unset)."""
    value = route.get("protocols")
    if value is None:
        return list(DEFAULT_ROUTE_PROTOCOLS)
    if not isinstance(value, list):
        return []
    return [p for p in value if isinstance(p, str) and p in PROTOCOL_GROUPS]


def _check_groups(protocols: list[str], path: str, target: KongTarget) -> list[Finding]:
    groups = list(dict.fromkeys(PROTOCOL_GROUPS[p] for p in protocols))
    if len(groups) <= 1:
        return []
    where = child(path, "protocols")
    if set(groups) == {"http", "ws"}:
        if not target.is_enterprise:
            return []  # each ws/wss element already has its own error
        return [
            warning(
                where,
                "mixing ws/wss with http/https in one route is not documented for Kong "
                "Enterprise; Kong may refuse it as mutually exclusive protocols",
                "use plain http/https (they already carry WebSockets) or a separate ws/wss route",
            )
        ]
    shown = " and ".join(GROUP_MEMBERS[g] for g in groups)
    return [
        error(
            where,
            f"protocols mix {shown}: these sets are mutually exclusive",
            "split them into separate routes",
        )
    ]


def _non_empty(route: Mapping[object, object], key: str) -> bool:
    value = route.get(key)
    return isinstance(value, list | Mapping | str) and len(value) > 0


def _check_matching(
    route: Mapping[object, object], protocols: list[str], group: str, path: str, target: KongTarget
) -> list[Finding]:
    expressions = ["expression"] if target.expressions_router else []
    if group in ("http", "ws"):
        wanted = [*HTTP_MATCH_FIELDS, *(("snis",) if SNI_PROTOCOLS & set(protocols) else ()), *expressions]
        findings = _at_least_one(route, wanted, path, "add paths: [/your/prefix/]")
        if not expressions:  # routes_subschemas.lua:8-9; the expressions router allows them
            findings.extend(_forbidden(route, STREAM_MATCH_FIELDS[:2], path, "'http' or 'https'"))
        return findings
    if group == "grpc":
        findings = _at_least_one(route, ["hosts", "headers", "paths"], path, "add paths")
        findings.extend(_forbidden(route, ("methods",), path, "'grpc' or 'grpcs'"))
        if route.get("strip_path") is True:
            findings.append(
                error(
                    child(path, "strip_path"),
                    "cannot set 'strip_path' when 'protocols' is 'grpc' or 'grpcs'",
                )
            )
        return findings
    wanted = ["snis"] if group == "tls_passthrough" else list(STREAM_MATCH_FIELDS)
    findings = _at_least_one(route, wanted, path, "add sources, destinations or snis")
    findings.extend(_forbidden(route, HTTP_MATCH_FIELDS, path, ", ".join(protocols)))
    return findings


def _at_least_one(route: Mapping[object, object], fields: list[str], path: str, hint: str) -> list[Finding]:
    if any(_non_empty(route, key) for key in fields):
        return []
    return [
        error(
            path,
            f"must set at least one of {', '.join(fields)} for these protocols "
            "(Kong: 'at least one of these fields must be non-empty')",
            hint,
        )
    ]


def _forbidden(route: Mapping[object, object], fields: tuple[str, ...], path: str, protocols: str) -> list[Finding]:
    return [
        error(child(path, key), f"cannot set {key!r} when 'protocols' is {protocols}")
        for key in fields
        if _non_empty(route, key)
    ]


def _check_snis(route: Mapping[object, object], protocols: list[str], path: str) -> list[Finding]:
    if not _non_empty(route, "snis") or SNI_PROTOCOLS & set(protocols):
        return []
    return [
        error(
            child(path, "snis"),
            "'snis' can only be set when 'protocols' is 'grpcs', 'https', 'tls' or 'tls_passthrough'",
        )
    ]


def _check_header_keys(headers: object, path: str, target: KongTarget) -> list[Finding]:
    """Route header names: Kong's header_name rule, and never `host` (routes.lua:191-199)."""
    if not isinstance(headers, Mapping):
        return []
    findings = []
    for key in headers:
        if isinstance(key, str) and key.lower() == "host":
            findings.append(
                error(
                    child(path, key),
                    "cannot contain 'host' header, which must be specified in the 'hosts' attribute",
                    "move it to hosts: [...]",
                )
            )
        elif (problem := header_name(key, target)) is not None:
            findings.append(error(child(path, key), problem.message, problem.hint))
    return findings


def _check_path_handling(value: object, path: str, target: KongTarget) -> list[Finding]:
    if value != "v1" or not target.at_least((3, 0)):
        return []
    return [
        warning(
            child(path, "path_handling"),
            "path_handling 'v1' is deprecated in Kong 3.x and only supported with "
            "router_flavor = traditional (CHANGELOG 3.0.0)",
            "remove it (v0 is the default)",
        )
    ]


def looks_like_regex(path: str) -> bool:
    """Kong 2.8's heuristic: anything outside [A-Za-z0-9._~/%-] makes a path a regex."""
    return bool(_REGEX_HINT_RE.search(path))


def _is_placeholder(value: str, target: KongTarget) -> bool:
    """A whole value the entrypoint fills in (`$WELL_KNOWN_OAUTH_PATH`): checked by Kong
    after the substitution, not here."""
    match = re.fullmatch(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", value)
    return match is not None and target.substitutes(match.group(1))


def check_paths(paths: object, path: str, target: KongTarget, format_version: str) -> list[Finding]:
    """Per-version rules for each route path (types are checked by the field table)."""
    if not isinstance(paths, list):
        return []
    findings: list[Finding] = []
    for index, value in enumerate(paths):
        if isinstance(value, str) and value and not _is_placeholder(value, target):
            findings.extend(check_route_path(value, item(path, index), target, format_version))
    return findings


def check_route_path(value: str, path: str, target: KongTarget, format_version: str) -> list[Finding]:
    """One route path under the target's rules."""
    if not target.at_least((3, 0)):
        return _legacy_path_rules(value, path)
    if format_version != "3.0":
        migrated, notes = _migrate_legacy_path(value, path, format_version)
        return [*notes, *_router_path_rules(migrated, path)]
    return _router_path_rules(value, path)


def _migrate_legacy_path(value: str, path: str, format_version: str) -> tuple[str, list[Finding]]:
    """Kong 3.x loading a 1.1/2.1 file: regex-looking paths get the `~` prefix, plain paths
    are normalized (Kong/kong@3.9.3:kong/db/declarative/migrations/route_path.lua)."""
    if not value.startswith("/"):
        return value, []
    if looks_like_regex(value):
        return "~" + value, [
            info(
                path,
                f"Kong 3.x loads {value!r} from a {format_version} file as the regex "
                f"'~{value}' (automatic migration of regex-looking paths)",
                "write '~' explicitly with _format_version '3.0' if a regex is meant",
            )
        ]
    normalized = normalize_path(value)
    if normalized == value:
        return value, []
    return normalized, [
        info(
            path,
            f"Kong 3.x normalizes {value!r} to {normalized!r} when loading a {format_version} file",
            f"write {normalized!r}",
        )
    ]


def _legacy_path_rules(value: str, path: str) -> list[Finding]:
    if not value.startswith("/"):
        hint = (
            "the '~' regex prefix is Kong 3.x syntax; on 2.8 write the regex without it"
            if value.startswith("~")
            else "start the path with '/'"
        )
        return [error(path, f"path {value!r} should start with: /", hint)]
    if "//" in value:
        return [error(path, f"path {value!r} must not have empty segments (//)")]
    if looks_like_regex(value):
        return _regex_compiles(value, path)
    if re.search(r"%(?![0-9A-Fa-f]{2})", value):
        return [error(path, f"path {value!r} has an invalid url-encoded value")]
    return []


def _router_path_rules(value: str, path: str) -> list[Finding]:
    if value.startswith("~/"):
        return _regex_compiles(value[1:], path)
    if not value.startswith("/"):
        return [error(path, f"path {value!r} should start with: / (fixed path) or ~/ (regex path)")]
    normalized = normalize_path(value)
    if normalized != value:
        return [error(path, f"non-normalized path {value!r}, consider use {normalized!r} instead")]
    if looks_like_regex(value):
        return [
            info(
                path,
                f"{value!r} is matched as a literal prefix on Kong 3.x",
                "prefix it with '~' if a regex is meant",
            )
        ]
    return []


def _regex_compiles(pattern: str, path: str) -> list[Finding]:
    """Kong dry-runs a regex path and refuses one that does not compile
    (Kong/kong@3.9.3:kong/db/schema/typedefs.lua:518-527). Checked with Python's re, which
    agrees with PCRE on the syntax Supabase paths use."""
    if compiles_as_regex(pattern):
        return []
    return [
        error(
            path,
            f"regex path {pattern!r} does not compile: Kong refuses the file ('invalid regex')",
            "fix the regex or escape its special characters",
        )
    ]


def normalize_path(path: str) -> str:
    """kong.tools.uri.normalize: decode unreserved %XX, upper-case the rest, merge slashes,
    remove dot segments."""

    def fix(match: re.Match[str]) -> str:
        char = chr(int(match.group(1), 16))
        return char if char in _UNRESERVED else "%" + match.group(1).upper()

    decoded = _PERCENT_RE.sub(fix, path)
    return _remove_dot_segments(re.sub(r"/{2,}", "/", decoded))


def _remove_dot_segments(path: str) -> str:
    segments = path.split("/")
    output: list[str] = []
    for segment in segments[1:]:
        if segment == "..":
            if output:
                output.pop()
        elif segment != ".":
            output.append(segment)
    result = "/" + "/".join(output)
    if segments[-1] in (".", "..") and not result.endswith("/"):
        result += "/"
    return result
