"""The custom validators of Kong's typedefs and plugin schemas, as Kong words their errors."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import Any

from .model import Doc
from .schema_rules import Version

Validate = Callable[[str, Version], "str | None"]


def _normalize_ip(address: str) -> tuple[str, int | None] | str:
    """kong.tools.ip.normalize_ip (Kong/kong@3.9.3:kong/tools/ip.lua:121-276): (host, port)
    or the error text."""
    if address.count(":") > 1:  # ipv6, optionally [addr]:port
        match = re.match(r"^\[([^\]]+)\](?::(\d+))?$", address)
        host, port = (match.group(1), match.group(2)) if match else (address, None)
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            return f"invalid ipv6 address: {address}"
        return host, int(port) if port else None
    if re.fullmatch(r"[\d.:]+", address.replace(":", "", 1)) and re.match(r"^[\d.]+(:\d+)?$", address):
        match = re.match(r"^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?::(\d+))?$", address)
        if not match or any(int(part) > 255 for part in match.groups()[:4]):
            return f"invalid ipv4 address: {address}"
        return address.split(":")[0], int(match.group(5)) if match.group(5) else None
    name, port = address, None
    if found := re.search(r":(\d+)$", address):
        name, port = address[: found.start()], int(found.group(1))
        if port > 65535:
            return "invalid port number"
    if not re.fullmatch(r"[0-9A-Za-z._-]+", name):
        return f"invalid hostname: {address}"
    segments = name.split(".")
    for index, segment in enumerate(segments, 1):
        if segment.endswith("-") or (segment == "" and index != len(segments)):
            return f"invalid hostname: {address}"
    return name, port


def v_host(value: str, version: Version) -> str | None:
    """typedefs.host (3.9.3 typedefs.lua:24-35)."""
    result = _normalize_ip(value)
    if isinstance(result, str):
        return "must not have a port" if result == "invalid port number" else f"invalid value: {value}"
    return "must not have a port" if result[1] is not None else None


def v_host_with_wildcards(value: str, version: Version) -> str | None:
    """typedefs.hosts elements: `*` as `abc`, then host_with_optional_port (:495-498)."""
    result = _normalize_ip(value.replace("*", "abc"))
    return result if isinstance(result, str) else None


def _sni(value: str) -> str | None:
    result = _normalize_ip(value)
    if isinstance(result, str) and result != "invalid port number":
        return f"invalid value: {value}"
    if not isinstance(result, str) and (value.count(":") > 1 or re.fullmatch(r"[\d.]+(:\d+)?", value)):
        return "must not be an IP"
    if result == "invalid port number" or (not isinstance(result, str) and result[1] is not None):
        return "must not have a port"
    return None


def v_sni(value: str, version: Version) -> str | None:
    """typedefs.sni (validate_sni, 3.9.3 typedefs.lua:154-169)."""
    return _sni(value)


def v_wildcard_host(value: str, version: Version) -> str | None:
    """typedefs.wildcard_host (validate_wildcard_host, :172-202)."""
    if "*" in value:
        if value.find("*") not in (0, len(value) - 1):
            return "wildcard must be leftmost or rightmost character"
        if value.count("*") > 1:
            return "only one wildcard must be specified"
        value = value.replace("*", "wildcard")
    return _sni(value)


_RFC3986_PATH = re.compile(r"^/[\w.\-~/%:@!$&'()*+,;=]*$", re.ASCII)


def _path_problem(path: str) -> tuple[str, str] | None:
    """validate_path (:71-93): (error, code) with code rfc3986 or percent."""
    if not _RFC3986_PATH.match(path):
        return f"invalid path: '{path}' (characters outside of the reserved list of RFC 3986 found)", "rfc3986"
    raw = re.sub(r"%[0-9A-Fa-f]{2}", "___", path)
    if "%" in raw:
        index = raw.index("%")
        return f"invalid url-encoded value: '{raw[index : index + 3]}'", "percent"
    return None


def v_path(value: str, version: Version) -> str | None:
    problem = _path_problem(value)
    return problem[0] if problem else None


def _regex_error(pattern: str) -> str | None:
    try:
        re.compile(re.sub(r"\(\?<(?=[A-Za-z_])", "(?P<", pattern))
        return None
    except re.error as exc:
        return str(exc)


def v_path_2_8(value: str, version: Version) -> str | None:
    """2.8 validate_path_with_regexes (Kong/kong@2.8.1:kong/db/schema/typedefs.lua:441-468)."""
    problem = _path_problem(value)
    if problem and problem[1] == "percent":
        return problem[0]
    if re.fullmatch(r"[a-zA-Z0-9.\-_~/%]*", value):
        return None
    error = _regex_error(value)
    return None if error is None else f"invalid regex: '{value}' (PCRE returned: {error})"


_RESERVED = frozenset("!*'();:@&=+$,/?%#[]")


def normalize_path(path: str) -> str:
    """kong.tools.uri.normalize(path, true) (Kong/kong@3.9.3:kong/tools/uri.lua:78-140):
    decode every %XX except reserved characters (those are upper-cased), merge slashes,
    remove dot segments."""
    if path in ("", "/"):
        return path

    def fix(match: re.Match[str]) -> str:
        char = chr(int(match.group(1), 16))
        return "%" + match.group(1).upper() if char in _RESERVED else char

    decoded = re.sub(r"%([0-9A-Fa-f]{2})", fix, path)
    if "." not in decoded and "//" not in decoded:
        return decoded
    output: list[str] = []
    segments = re.sub(r"/{2,}", "/", decoded).split("/")
    for segment in segments[1:]:
        if segment == "..":
            if output:
                output.pop()
        elif segment != ".":
            output.append(segment)
    result = "/" + "/".join(output)
    return result + "/" if segments[-1] in (".", "..") and not result.endswith("/") else result


def migrate_paths(doc: Doc) -> Doc:
    """Kong 3.x loading a 1.1/2.1 file: a route path with characters outside
    [a-zA-Z0-9.-_~/%] becomes a ``~`` regex, the others are normalized
    (Kong/kong@3.9.3:kong/db/declarative/migrations/route_path.lua,
    kong/db/migrations/migrate_path_280_300.lua)."""

    def migrate(route: Any) -> Any:
        if not isinstance(route, dict) or not isinstance(route.get("paths"), list):
            return route
        paths = [
            (normalize_path(p) if re.fullmatch(r"[a-zA-Z0-9.\-_~/%]*", p) else "~" + p) if isinstance(p, str) else p
            for p in route["paths"]
        ]
        return {**route, "paths": paths}

    def routes(items: Any) -> Any:
        return [migrate(r) for r in items] if isinstance(items, list) else items

    migrated = {**doc, "routes": routes(doc.get("routes"))} if "routes" in doc else dict(doc)
    if isinstance(doc.get("services"), list):
        migrated["services"] = [
            {**s, "routes": routes(s.get("routes"))} if isinstance(s, dict) and "routes" in s else s
            for s in doc["services"]
        ]
    return migrated


def v_router_path(value: str, version: Version) -> str | None:
    """3.x validate_path_with_regexes (Kong/kong@3.9.3:kong/db/schema/typedefs.lua:500-530)."""
    problem = _path_problem(value)
    if problem and problem[1] == "percent":
        return problem[0]
    if not value.startswith("~"):
        normalized = normalize_path(value)
        return None if normalized == value else f"non-normalized path, consider use '{normalized}' instead"
    error = _regex_error(value[1:])
    return None if error is None else f"invalid regex: '{value[1:]}' (PCRE returned: {error})"


def v_utf8_name(value: str, version: Version) -> str | None:
    if re.fullmatch(r"[\w.\-~]+", value, re.ASCII) or all(
        ord(c) > 127 or re.match(r"[\w.\-~]", c, re.ASCII) for c in value
    ):
        return None
    return f"invalid value '{value}': the only accepted ascii characters are alphanumerics or ., -, _, and ~"


def v_tag(value: str, version: Version) -> str | None:
    if all(ord(c) > 127 or (32 < ord(c) < 127 and c not in ",/") or c == " " for c in value):
        return None
    return f"invalid tag '{value}': expected printable ascii (except `,` and `/`) or valid utf-8 sequences"


def v_header_name(value: str, version: Version) -> str | None:
    """kong.tools.http.validate_header_name (Kong/kong@3.9.3:kong/tools/http.lua:271-282)."""
    if re.fullmatch(r"[a-zA-Z0-9_-]+", value):
        return None
    return f"bad header name '{value}', allowed characters are A-Z, a-z, 0-9, '_', and '-'"


def v_ip_or_cidr(value: str, version: Version) -> str | None:
    try:
        ipaddress.ip_network(value, strict=False)
        return None
    except ValueError:
        return f"invalid ip or cidr range: '{value}'"


def v_regex(value: str, version: Version) -> str | None:
    return None if _regex_error(value) is None else f"not a valid regex: {value}"


def v_asterisk_or_regex(value: str, version: Version) -> str | None:
    """cors origins (Kong/kong@3.9.3:kong/plugins/cors/schema.lua:18-23)."""
    return None if value == "*" or _regex_error(value) is None else f"'{value}' is not a valid regex"


def _rt_split(entry: str) -> tuple[str, str]:
    match = re.match(r"^([^:]+):*(.*)$", entry, re.DOTALL)
    return (match.group(1), match.group(2)) if match else ("", entry)


def v_rt_header(value: str, version: Version) -> str | None:
    """request-transformer validate_headers (…/request-transformer/schema.lua:29-41)."""
    name, _ = _rt_split(value)
    return None if name and v_header_name(name, version) is None else f"'{name}' is not a valid header"


def v_rt_rename_header(value: str, version: Version) -> str | None:
    name, new = _rt_split(value)
    if not name or v_header_name(name, version) is not None:
        return f"'{name}' is not a valid header"
    return None if new and v_header_name(new, version) is None else f"'{new}' is not a valid header"


def v_rt_colon_value(value: str, version: Version) -> str | None:
    """request-transformer check_for_value (…/schema.lua:12-26): a value, and a template
    that compiles."""
    from .lua import template_error  # Lua is loaded only for files that need it

    name, rest = _rt_split(value)
    if not name or rest == "":
        return f"key '{name}' has no value"
    error = template_error(rest)
    return None if error is None else f"value '{rest}' is not in supported format, error:{error}"


def lua_function(plugin: str) -> Validate:
    """pre-/post-function validate_function (…/pre-function/_schema.lua:10-17)."""

    def check(value: str, version: Version) -> str | None:
        from .lua import syntax_error  # Lua is loaded only for files that need it

        error = syntax_error(value, value)
        return None if error is None else f"error parsing {plugin}: {error}"

    return check


CUSTOM: dict[str, Validate] = {
    "host": v_host,
    "host_with_wildcards": v_host_with_wildcards,
    "sni": v_sni,
    "wildcard_host": v_wildcard_host,
    "path": v_path,
    "path_2_8": v_path_2_8,
    "router_path": v_router_path,
    "utf8_name": v_utf8_name,
    "tag": v_tag,
    "header_name": v_header_name,
    "ip_or_cidr": v_ip_or_cidr,
    "regex": v_regex,
    "asterisk_or_regex": v_asterisk_or_regex,
    "rt_header": v_rt_header,
    "rt_rename_header": v_rt_rename_header,
    "rt_colon_value": v_rt_colon_value,
    "pre-function_code": lua_function("pre-function"),
    "post-function_code": lua_function("post-function"),
}
