"""Which route a request takes, and the path the upstream sees.

Kong 2.8 and the 3.x ``traditional``/``traditional_compatible`` flavors match routes on
methods, hosts, headers and paths. With ``router_flavor = expressions`` a route may carry an
``expression`` instead (``atc``); such routes are tried first, higher ``priority`` first,
before every route written with paths (Kong/kong@3.9.3:kong/router/transform.lua:540-562,
EXPRESSION_ONLY_BIT), and the ``http.path`` an expression matched is what ``strip_path``
strips.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field

from . import atc
from .http import Request
from .model import Route, Service


@dataclass(frozen=True)
class Match:
    """The route a request takes, the path prefix to strip, and a regex path's captures."""

    route: Route
    prefix: str
    captures: list[tuple[str, str]] = field(default_factory=list)


def host_matches(pattern: str, host: str, host_with_port: str) -> bool:
    if ":" in pattern:
        return pattern == host_with_port
    if pattern.startswith("*."):
        return host.endswith(pattern[1:])
    if pattern.endswith(".*"):
        return host.startswith(pattern[:-1])
    return pattern == host


def path_match(route: Route, path: str) -> tuple[bool, int, str, list[tuple[str, str]]] | None:
    """The best (is_regex, weight, matched text, captures) among a route's paths, if any
    matches. Prefix paths weigh their length; regex paths their regex_priority and come first."""
    best: tuple[bool, int, str, list[tuple[str, str]]] | None = None
    for pattern in route.paths:
        if pattern.startswith("~") or (route.implicit_regex and re.search(r"[^a-zA-Z0-9._~/%-]", pattern)):
            found = re.match(pattern.lstrip("~"), path)
            captures = _captures(found) if found else []
            candidate = (True, route.regex_priority, found.group(0), captures) if found else None
        else:
            candidate = (False, len(pattern), pattern, []) if path.startswith(pattern) else None
        if candidate and (best is None or candidate[:2] > best[:2]):
            best = candidate
    return best


def _captures(found: re.Match[str]) -> list[tuple[str, str]]:
    """uri_captures: numbered groups from 0, then named ones."""
    numbered = [(str(i), value or "") for i, value in enumerate([found.group(0), *found.groups()])]
    return numbered + [(name, value or "") for name, value in found.groupdict().items()]


@functools.lru_cache(maxsize=256)
def compiled(expression: str) -> atc.Node:
    return atc.parse(expression)


def request_fields(req: Request) -> atc.Values:
    """The ATC fields of a request (Kong/kong@3.9.3:kong/router/fields.lua)."""

    def values(name: str) -> list[object] | None:
        if name == "http.path":
            return [req.path]
        if name == "http.method":
            return [req.method]
        if name == "http.host":
            return [req.host]
        if name == "net.protocol":
            return ["http"]
        if name in ("net.dst.port", "net.port"):
            return [req.server_port]
        if name == "net.src.ip":
            return [req.client_ip]
        if name.startswith("http.headers."):
            found = req.header_values(name[len("http.headers.") :].replace("_", "-"))
            return list(found) or None
        if name.startswith("http.queries."):
            wanted = name[len("http.queries.") :]
            found = [v for k, _, v in (p.partition("=") for p in req.query.split("&")) if k == wanted]
            return list(found) or None
        return None

    return values


def match_expression_route(routes: list[Route], req: Request) -> Match | None:
    """The expression route of highest priority whose expression the request satisfies."""
    fields = request_fields(req)
    for route in sorted((r for r in routes if r.expression), key=lambda r: -r.priority):
        matches: dict[str, str] = {}
        if atc.evaluate(compiled(str(route.expression)), fields, matches):
            return Match(route, matches.get("http.path", ""))
    return None


def match_route(routes: list[Route], req: Request) -> Match | None:
    """Expression routes first, then Kong's traditional matching: routes with more kinds of
    rules first, then regex priority, then the longest prefix."""
    if (found := match_expression_route(routes, req)) is not None:
        return found
    host_with_port = (req.header("host") or "").lower()
    candidates = []
    for route in routes:
        if route.expression or "http" not in route.protocols or (route.methods and req.method not in route.methods):
            continue
        if route.hosts and not any(host_matches(h, req.host, host_with_port) for h in route.hosts):
            continue
        if any((req.header(name) or "").lower() not in values for name, values in route.headers):
            continue
        matched = path_match(route, req.path) if route.paths else (False, 0, "", [])
        if matched is not None:
            kinds = sum(map(bool, (route.methods, route.hosts, route.headers, route.paths)))
            candidates.append(((kinds, matched[0], matched[1]), Match(route, matched[2], matched[3])))
    if not candidates:
        return None
    return max(candidates, key=lambda candidate: candidate[0])[1]


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
