"""Supabase-specific pitfalls: valid for Kong, broken for Supabase Realtime or REST clients.

Each finding says why, with a public source, and how to fix it, naming the file's own
values (its Realtime upstream, its routes). The `ws`/`wss` route protocols on OSS are
reported by the schema check itself (see `protocols`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from .entities import Entities, Entity, effective_upstream, parent_of, plugins_applying_to
from .findings import Finding, error, warning
from .target import KongTarget
from .yamlpath import child

# Phoenix heartbeat of realtime-js (HEARTBEAT_INTERVAL 25000, supabase/supabase-js:
# packages/core/realtime-js/src/lib/constants.ts) and realtime-py (hb_interval 25).
REALTIME_HEARTBEAT_MS = 25_000
# Headers supabase-js asks for in REST/auth preflights (supabase-js sends apikey,
# authorization, x-client-info and, with a body, content-type).
REST_PREFLIGHT_HEADERS = ("apikey", "authorization", "x-client-info", "content-type")
_REALTIME_NAME_RE = re.compile(r"^realtime-v\d+-ws", re.IGNORECASE)
_REALTIME_ROUTE_PATH = "/realtime/v1"
_REALTIME_SOCKET_PATH = "/socket"


def check_pitfalls(entities: Entities, target: KongTarget) -> list[Finding]:
    """All Supabase pitfalls for the document."""
    realtime = realtime_routes(entities)
    findings: list[Finding] = []
    if not realtime:
        findings.append(_no_realtime_route(entities, target))
    for route in realtime:
        findings.extend(_preserve_host(route, entities))
        service = parent_of(route, "services", entities)
        if service is not None:
            findings.extend(_tenant_mismatch(service, target))
            findings.extend(_short_timeouts(service))
    findings.extend(_cors_header_lists(entities, realtime))
    findings.extend(_anonymous_consumers(entities))
    return findings


def realtime_routes(entities: Entities) -> list[Entity]:
    """The Realtime websocket route(s): named like `realtime-v1-ws`, path `/realtime/v1/`,
    or pointing at a service whose url path is `/socket` (Supabase's
    docker/volumes/api/kong.yml realtime-v1-ws service)."""
    return [route for route in entities.of_kind("routes") if _is_realtime(route, entities)]


def _is_realtime(route: Entity, entities: Entities) -> bool:
    service = parent_of(route, "services", entities)
    names = [route.get("name"), service.get("name") if service else None]
    if any(isinstance(name, str) and _REALTIME_NAME_RE.match(name) for name in names):
        return True
    paths = route.get("paths")
    if isinstance(paths, list) and any(isinstance(p, str) and p.rstrip("/") == _REALTIME_ROUTE_PATH for p in paths):
        return True
    upstream_path = effective_upstream(service.data).path if service else None
    return (upstream_path or "").rstrip("/") == _REALTIME_SOCKET_PATH


_TENANT_SOURCE = "supabase/realtime: lib/realtime/database.ex, get_external_id"


def _no_realtime_route(entities: Entities, target: KongTarget) -> Finding:
    upstream = _realtime_upstream_hint(entities, target)
    return warning(
        "services",
        "no Realtime websocket route: clients connecting to /realtime/v1/websocket get Kong's 404 "
        "'no Route matched with those values'",
        f"add a realtime-v1-ws service like Supabase's docker/volumes/api/kong.yml: url http://{upstream}/socket "
        "with a route paths: [/realtime/v1/], strip_path: true",
    )


def _realtime_upstream_hint(entities: Entities, target: KongTarget) -> str:
    """The file's own Realtime upstream (host:port) if a service points at one, else
    Supabase's default container name for the target's tenant."""
    for service in entities.of_kind("services"):
        upstream = effective_upstream(service.data)
        name = service.get("name")
        if upstream.host and ("realtime" in upstream.host or (isinstance(name, str) and "realtime" in name)):
            return f"{upstream.host}:{upstream.port or 4000}"
    return f"{target.realtime_tenant}.supabase-realtime:4000"


def _preserve_host(route: Entity, entities: Entities) -> list[Finding]:
    if route.get("preserve_host") is not True:
        return []
    service = parent_of(route, "services", entities)
    host = effective_upstream(service.data).host if service is not None else None
    sends = f"the service host {host}" if host else "the service host"
    return [
        error(
            child(route.path, "preserve_host"),
            "preserve_host: true on the Realtime route forwards the client's Host header; Realtime "
            "takes its tenant id from the first label of Host (e.g. 'api' for api.example.com), "
            "so the handshake fails with 'Tenant not found' (403, or 404 on Realtime >= 2.116; "
            f"{_TENANT_SOURCE})",
            f"remove preserve_host (default false) so Kong sends {sends}, whose first label is the tenant",
        )
    ]


def _tenant_mismatch(service: Entity, target: KongTarget) -> list[Finding]:
    host = effective_upstream(service.data).host
    if not host:
        return []
    tenant = host.split(".", 1)[0].lower()
    if tenant == target.realtime_tenant.lower():
        return []
    where = child(service.path, "url" if service.get("url") is not None else "host")
    renamed = f"{target.realtime_tenant}.{host.split('.', 1)[1]}" if "." in host else f"{target.realtime_tenant}.{host}"
    hint = (
        f"reach Realtime as {renamed} (a container name or network alias starting with "
        f"{target.realtime_tenant}.), or set SELF_HOST_TENANT_NAME and the inventory's "
        f"realtime tenant to {tenant!r}"
    )
    if "." not in host:
        # A bare compose service name: Dokploy's Supabase template routes realtime-v1-ws to
        # http://realtime:4000/socket (Dokploy/templates blueprints/supabase/template.toml).
        port = effective_upstream(service.data).port or 4000
        hint = (
            f"{host!r} is the compose service name, as Dokploy's Supabase template writes it"
            f" (http://realtime:4000/socket): add a network alias {target.realtime_tenant}.supabase-realtime to"
            f" that service in the compose file (Dokploy: the service's General tab, then Deploy) and set this"
            f" url to http://{target.realtime_tenant}.supabase-realtime:{port}/socket, as Supabase's own"
            f" docker/volumes/api/kong.yml does; or {hint}"
        )
    return [
        error(
            where,
            f"upstream host {host!r} makes Realtime look up tenant {tenant!r}, but the tenant is "
            f"{target.realtime_tenant!r}: Realtime takes the tenant id from the first label of "
            f"the Host Kong sends, so every handshake fails with 'Tenant not found' ({_TENANT_SOURCE})",
            hint,
        )
    ]


def _short_timeouts(service: Entity) -> list[Finding]:
    findings = []
    for key in ("read_timeout", "write_timeout"):
        value = service.get(key)
        # 0 and negatives are range errors already (schema_core); only warn on valid values.
        if isinstance(value, int) and not isinstance(value, bool) and 0 < value < REALTIME_HEARTBEAT_MS:
            findings.append(
                warning(
                    child(service.path, key),
                    f"{key} {value} ms is shorter than the Realtime heartbeat (25 s): Kong applies "
                    "it to the WebSocket tunnel, which nginx closes when idle that long "
                    "(https://nginx.org/en/docs/http/websocket.html), so clients drop and reconnect in a loop",
                    "remove it (default 60000 ms) or set it to at least 60000",
                )
            )
    return findings


def _cors_header_lists(entities: Entities, realtime: list[Entity]) -> list[Finding]:
    findings: list[Finding] = []
    for plugin in entities.of_kind("plugins"):
        headers = _cors_headers(plugin)
        if headers is None:
            continue
        routes = [r for r in entities.of_kind("routes") if any(p is plugin for p in plugins_applying_to(r, entities))]
        rest = [r for r in routes if not any(r is rt for rt in realtime)]
        where = child(child(plugin.path, "config"), "headers")
        findings.extend(_websocket_headers(headers, where))
        if rest:
            findings.extend(_blocked_preflights(headers, rest, where))
    return findings


def _cors_headers(plugin: Entity) -> list[str] | None:
    config = plugin.get("config")
    if plugin.get("name") != "cors" or not isinstance(config, Mapping):
        return None
    headers = config.get("headers")
    if not isinstance(headers, list) or not headers:
        return None
    return [h for h in headers if isinstance(h, str)]


def _websocket_headers(headers: list[str], where: str) -> list[Finding]:
    useless = [h for h in headers if h.lower().startswith("sec-websocket-")]
    if not useless:
        return []
    return [
        warning(
            where,
            f"{', '.join(useless)} in cors headers does nothing for WebSockets: browsers never "
            "send a CORS preflight for a WebSocket handshake, and Sec-* are forbidden request "
            "headers that page scripts cannot set (https://developer.mozilla.org/docs/Glossary/Forbidden_header_name)",
            "remove config.headers; Supabase uses cors without config, which echoes the requested headers",
        )
    ]


def _blocked_preflights(headers: list[str], routes: list[Entity], where: str) -> list[Finding]:
    allowed = {h.lower() for h in headers}
    missing = [h for h in REST_PREFLIGHT_HEADERS if h not in allowed]
    if not missing:
        return []
    names = ", ".join(str(r.get("name") or r.path) for r in routes[:3])
    more = f" and {len(routes) - 3} more" if len(routes) > 3 else ""
    return [
        warning(
            where,
            f"an explicit cors headers list replaces the echo of Access-Control-Request-Headers: "
            f"preflights on {names}{more} asking for {', '.join(missing)} are refused, so "
            "supabase-js requests fail with a CORS error in browsers (Kong's cors plugin sends "
            "the list instead of echoing Access-Control-Request-Headers)",
            "remove config.headers, or list apikey, authorization, x-client-info and content-type",
        )
    ]


def _anonymous_consumers(entities: Entities) -> list[Finding]:
    findings: list[Finding] = []
    for plugin in entities.of_kind("plugins"):
        config = plugin.get("config")
        if plugin.get("name") not in ("key-auth", "basic-auth") or not isinstance(config, Mapping):
            continue
        anonymous = config.get("anonymous")
        if isinstance(anonymous, str) and anonymous:
            where = child(child(plugin.path, "config"), "anonymous")
            findings.append(_anonymous_finding(str(plugin.get("name")), anonymous, where, entities))
    return findings


def _anonymous_finding(plugin: str, anonymous: str, where: str, entities: Entities) -> Finding:
    credential = "apikey" if plugin == "key-auth" else "username/password"
    if entities.find("consumers", anonymous) is None:
        return error(
            where,
            f"{plugin} anonymous consumer {anonymous!r} is not declared: Kong cannot load it "
            f"and answers 500 to requests without a valid {credential}",
            f"declare a consumer with username {anonymous!r}, or remove anonymous",
        )
    return warning(
        where,
        f"anonymous: {anonymous!r} lets requests with a missing OR invalid {credential} through "
        f"as consumer {anonymous!r} (a logical OR: https://docs.konghq.com/hub/kong-inc/{plugin}/): "
        "the check is effectively off, and a "
        "real key mismatch (stale keys after rotation) is hidden instead of answered with 401",
        "remove anonymous; if clients get 401, make their apikey equal a keyauth_credentials "
        "key (restart kong so the entrypoint substitutes the current keys)",
    )
