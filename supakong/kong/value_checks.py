"""Field-level value checks shared by core entities and plugin configs.

Each check mirrors a Kong typedef (Kong/kong@3.9.3:kong/db/schema/typedefs.lua, same rules
at 2.8.1) closely enough to catch what Kong would refuse; each returns None or a Problem.
"""

from __future__ import annotations

import ipaddress
import re

from .findings import WARNING
from .schema_types import Problem
from .target import KongTarget

_UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_NAME_ASCII_RE = re.compile(r"^[A-Za-z0-9._~-]$")
_LABEL_RE = re.compile(r"^[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?$")
_HEADER_NAME_RE = re.compile(r"^[A-Za-z0-9_-]+$")
_URI_PATH_RE = re.compile(r"^[A-Za-z0-9\-._~!$&'()*+,;=:@/%]*$")
_BAD_PERCENT_RE = re.compile(r"%(?![0-9A-Fa-f]{2})")
STANDARD_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"})


def utf8_name(value: object, target: KongTarget) -> Problem | None:
    """typedefs.utf8_name: ASCII characters limited to alphanumerics and . - _ ~."""
    assert isinstance(value, str)
    bad = sorted({ch for ch in value if ord(ch) < 128 and not _NAME_ASCII_RE.match(ch)})
    if not bad:
        return None
    return Problem(
        f"invalid name {value!r}: the only accepted ascii characters are alphanumerics or "
        f"., -, _, and ~ (found {''.join(bad)!r})",
        "rename it, e.g. replace spaces and slashes with '-'",
    )


def uuid(value: object, target: KongTarget) -> Problem | None:
    """typedefs.uuid."""
    if isinstance(value, str) and _UUID_RE.match(value):
        return None
    return Problem(f"expected a UUID, got {value!r}")


def _hostname_problem(host: str) -> str | None:
    if not host:
        return "empty host"
    candidate = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        ipaddress.ip_address(candidate)
        return None
    except ValueError:
        pass
    labels = host.rstrip(".").split(".")
    if all(_LABEL_RE.match(label) for label in labels):
        return None
    return f"invalid hostname {host!r}"


def hostname(value: object, target: KongTarget) -> Problem | None:
    """typedefs.host: an IP address or a DNS name."""
    assert isinstance(value, str)
    problem = _hostname_problem(value)
    return Problem(problem, "use a DNS name or IP address without scheme or path") if problem else None


def route_host(value: object, target: KongTarget) -> Problem | None:
    """typedefs.host_with_wildcards plus an optional `:port`."""
    assert isinstance(value, str)
    host = re.sub(r":\d+$", "", value) if value.count(":") == 1 else value
    if host.count("*") > 1:
        return Problem(f"invalid wildcard in {value!r}: must have at most one wildcard")
    if "*" in host:
        if not (host.startswith("*.") or host.endswith(".*")):
            return Problem(f"invalid wildcard in {value!r}: must be placed at leftmost or rightmost label")
        host = host.replace("*", "wildcard")
    problem = _hostname_problem(host)
    return Problem(problem) if problem else None


def service_path(value: object, target: KongTarget) -> Problem | None:
    """typedefs.path: starts with /, no empty segments, RFC 3986 characters."""
    assert isinstance(value, str)
    if not value.startswith("/"):
        return Problem(f"path {value!r} should start with: /")
    if "//" in value:
        return Problem(f"path {value!r} must not have empty segments (//)")
    if not _URI_PATH_RE.match(value):
        return Problem(f"path {value!r} has characters that are not allowed in a URI path")
    if _BAD_PERCENT_RE.search(value):
        return Problem(f"path {value!r} has an invalid url-encoded value ('%' must be followed by two hex digits)")
    return None


def header_name(value: object, target: KongTarget) -> Problem | None:
    """typedefs.header_name: letters, digits, '_' and '-' only, stricter than HTTP allows
    (Kong/kong@3.9.3:kong/tools/http.lua:271-282)."""
    if isinstance(value, str) and _HEADER_NAME_RE.match(value):
        return None
    return Problem(
        f"{value!r} is not a valid header name for Kong: only A-Z, a-z, 0-9, '_' and '-' are allowed",
        "rename the header, e.g. replace '.' with '-'",
    )


def ip_or_cidr(value: object, target: KongTarget) -> Problem | None:
    """typedefs.ip_or_cidr."""
    try:
        ipaddress.ip_network(str(value), strict=False)
        return None
    except ValueError:
        return Problem(f"invalid ip or cidr range: {value!r}")


def route_method(value: object, target: KongTarget) -> Problem | None:
    """typedefs.http_method (`^%u+$`); a non-standard method is only a warning."""
    assert isinstance(value, str)
    if not re.fullmatch(r"[A-Z]+", value):
        return Problem(
            f"invalid method {value!r}: methods must be upper-case letters only",
            f"write it as {value.upper()!r}" if value.isalpha() else "",
        )
    if value not in STANDARD_METHODS:
        return Problem(
            f"{value!r} is not a standard HTTP method; the route will only match clients that send exactly this method",
            severity=WARNING,
        )
    return None


def upper_case_method(value: object, target: KongTarget) -> Problem | None:
    """typedefs.http_method for plugin configs."""
    assert isinstance(value, str)
    if re.fullmatch(r"[A-Z]+", value):
        return None
    return Problem(f"invalid method {value!r}: must be upper-case letters only")


def colon_pair(value: object, target: KongTarget) -> Problem | None:
    """request-transformer body/querystring entries: `name:value` with a value
    (check_for_value, Kong/kong@3.9.3:kong/plugins/request-transformer/schema.lua:12-26)."""
    match = re.match(r"^([^:]+):*(.*)$", value, re.DOTALL) if isinstance(value, str) else None
    if match and match.group(2) != "":
        return None
    name = match.group(1) if match else value
    return Problem(f"key {name!r} has no value: expected 'name:value'")


def colon_header_pair(value: object, target: KongTarget) -> Problem | None:
    """request-transformer header entries: `Header-Name:value`, the value may be empty
    (match `^[^:]+:.*$`, schema.lua:83-88)."""
    if not isinstance(value, str) or not re.match(r"^[^:]+:", value):
        return Problem(f"{value!r} has no ':': expected 'Header-Name:value'")
    return header_name(value.split(":", 1)[0], target)


def rename_header_pair(value: object, target: KongTarget) -> Problem | None:
    """request-transformer `rename.headers`: `Old-Name:New-Name`, both valid header names."""
    problem = colon_pair(value, target)
    if problem or not isinstance(value, str):
        return problem
    old, new = value.split(":", 1)
    return header_name(old, target) or header_name(new, target)


def compiles_as_regex(pattern: str) -> bool:
    """Dry-run compile a PCRE pattern with Python's `re` (close enough for a warning)."""
    translated = re.sub(r"\(\?<(?=[A-Za-z_])", "(?P<", pattern)
    try:
        re.compile(translated)
        return True
    except re.error:
        return False


def cors_origin(value: object, target: KongTarget) -> Problem | None:
    """cors `origins`: `*` or a regex that compiles (Kong/kong@3.9.3:kong/plugins/cors/schema.lua:18-23)."""
    assert isinstance(value, str)
    if value == "*" or compiles_as_regex(value):
        return None
    return Problem(
        f"origin {value!r} is not a valid regex: Kong refuses it (origins are regexes, or *)",
        "escape the special characters, or use * for any origin",
    )
