"""Which route a request takes, and the path the upstream sees."""

from __future__ import annotations

import re

from .http import Request
from .model import Route, Service


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
