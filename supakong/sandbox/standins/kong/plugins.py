"""The access phase of the plugins self-hosted Supabase uses."""

from __future__ import annotations

import base64
import ipaddress
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode

from .http import JSON_TYPE, Headers, Reply, Request, exit_message
from .model import Consumer, Doc, Gateway, Plugin, Route
from .settings import Settings

# The access phase runs plugins by descending priority (kong/plugins/*/handler.lua, 2.8.1).
PRIORITIES = {
    "cors": 2000,
    "key-auth": 1003,
    "basic-auth": 1001,
    "ip-restriction": 990,
    "acl": 950,
    "request-transformer": 801,
    "request-termination": 2,
}
CORS_METHODS = ("GET", "HEAD", "PUT", "PATCH", "POST", "DELETE", "OPTIONS", "TRACE", "CONNECT")


@dataclass
class Context:
    """Per-request state shared by the plugins (Kong's ngx.ctx)."""

    request: Request
    route: Route
    settings: Settings
    gateway: Gateway
    line: str  # the request line as the client sent it, before any plugin edits
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    consumer: Consumer | None = None
    credential: str | None = None
    response_headers: Headers = field(default_factory=list)  # cors' header_filter


PluginHandler = Callable[[Context, Doc], Reply | None]


def cors(ctx: Context, conf: Doc) -> Reply | None:
    """Answers real preflights only; other responses just get the Allow-Origin headers."""
    req, origins, origin = ctx.request, conf.get("origins") or [], ctx.request.header("origin")
    if not origins or "*" in origins:
        allow: str | None = "*"
    else:
        allow = origin if origin and any(o == origin or re.fullmatch(o, origin) for o in origins) else None
        ctx.response_headers.append(("Vary", "Origin"))
    ctx.response_headers += [("Access-Control-Allow-Origin", allow)] if allow else []
    if conf.get("credentials"):
        ctx.response_headers.append(("Access-Control-Allow-Credentials", "true"))
    if not (req.method == "OPTIONS" and origin and req.header("access-control-request-method")):
        if conf.get("exposed_headers"):
            exposed = ",".join(conf["exposed_headers"])
            ctx.response_headers.append(("Access-Control-Expose-Headers", exposed))
        return None
    if conf.get("preflight_continue"):
        return None
    # An explicit `headers` list replaces the echo of Access-Control-Request-Headers.
    allowed = ",".join(conf["headers"]) if conf.get("headers") else req.header("access-control-request-headers")
    methods = conf.get("methods") or CORS_METHODS
    headers = [("Access-Control-Allow-Methods", ",".join(methods))]
    headers += [("Access-Control-Allow-Headers", allowed)] if allowed else []
    headers += [("Access-Control-Max-Age", str(conf["max_age"]))] if conf.get("max_age") else []
    return Reply(200, b"", headers, content_type="")


def set_consumer(ctx: Context, consumer: Consumer, credential: str | None) -> None:
    """Authenticate; the upstream learns who it is from X-Consumer-* headers."""
    ctx.consumer, ctx.credential = consumer, credential
    for name, value in (
        ("X-Consumer-ID", consumer.id),
        ("X-Consumer-Username", consumer.username),
        ("X-Consumer-Custom-ID", consumer.custom_id),
        ("X-Credential-Identifier", credential),
        ("X-Anonymous-Consumer", None if credential else "true"),
    ):
        ctx.request.remove_header(name)  # never trust the client's copy
        if value:
            ctx.request.set_header(name, value)


def unless_anonymous(ctx: Context, conf: Doc, failure: Reply) -> Reply | None:
    """``anonymous``: a missing *or invalid* credential becomes that consumer instead."""
    if not conf.get("anonymous"):
        return failure
    consumer = ctx.gateway.consumers.get(conf["anonymous"])
    if consumer is None:
        return exit_message(500, "An unexpected error occurred")
    set_consumer(ctx, consumer, None)
    return None


def invalid_credentials(ctx: Context, realm: tuple[str, str]) -> Reply:
    text = "Invalid authentication credentials" if not ctx.settings.v3 else "Unauthorized"
    return exit_message(401, text, realm)


def find_api_key(req: Request, conf: Doc) -> str | None:
    """The key from the first of ``key_names`` found in a header or the query string."""
    query = parse_qsl(req.query, keep_blank_values=True)
    for name in conf.get("key_names") or ["apikey"]:
        key = req.header(name) if conf.get("key_in_header") is not False else None
        if not key and conf.get("key_in_query") is not False:
            key = dict(query).get(name)
        if key:
            if conf.get("hide_credentials"):
                req.remove_header(name)
                req.query = urlencode([(k, v) for k, v in query if k != name])
            return key
    return None


def key_auth(ctx: Context, conf: Doc) -> Reply | None:
    if (conf.get("run_on_preflight") is False and ctx.request.method == "OPTIONS") or (
        conf.get("anonymous") and ctx.credential
    ):
        return None
    realm = ("WWW-Authenticate", f'Key realm="{conf.get("realm") or "kong"}"')
    key = find_api_key(ctx.request, conf)
    if not key:
        return unless_anonymous(ctx, conf, exit_message(401, "No API key found in request", realm))
    consumer = ctx.gateway.keys.get(key)
    if consumer is None:
        return unless_anonymous(ctx, conf, invalid_credentials(ctx, realm))
    set_consumer(ctx, consumer, str(uuid.uuid5(uuid.NAMESPACE_URL, f"keyauth:{key}")))
    return None


def basic_auth(ctx: Context, conf: Doc) -> Reply | None:
    if conf.get("anonymous") and ctx.credential:
        return None
    realm = ("WWW-Authenticate", f'Basic realm="{conf.get("realm") or "kong"}"')
    header = ctx.request.header("authorization") or ctx.request.header("proxy-authorization")
    if not header or not header.lower().startswith("basic "):
        return unless_anonymous(ctx, conf, exit_message(401, "Unauthorized", realm))
    try:
        username, _, password = base64.b64decode(header[6:].strip()).decode().partition(":")
    except ValueError:
        username, password = "", ""
    stored = ctx.gateway.basic.get(username)
    if stored is None or stored[0] != password:
        return unless_anonymous(ctx, conf, invalid_credentials(ctx, realm))
    if conf.get("hide_credentials"):
        ctx.request.remove_header("authorization")
    set_consumer(ctx, stored[1], username)
    return None


def ip_restriction(ctx: Context, conf: Doc) -> Reply | None:
    address = ipaddress.ip_address(ctx.request.client_ip)

    def listed(entries: list[str] | None) -> bool:
        try:
            return any(address in ipaddress.ip_network(e, strict=False) for e in entries or [])
        except ValueError:
            return False

    if listed(conf.get("deny")) or (conf.get("allow") and not listed(conf.get("allow"))):
        return exit_message(conf.get("status") or 403, conf.get("message") or "Your IP address is not allowed")
    return None


def acl(ctx: Context, conf: Doc) -> Reply | None:
    if ctx.consumer is None:
        return exit_message(401, "Unauthorized")
    groups = set(ctx.consumer.groups)
    allow = conf.get("allow") or conf.get("whitelist")
    deny = conf.get("deny") or conf.get("blacklist")
    if (allow and not groups & set(allow)) or (deny and groups & set(deny)):
        return exit_message(403, "You cannot consume this service")
    ctx.request.remove_header("X-Consumer-Groups")
    if not conf.get("hide_groups_header") and groups:
        ctx.request.set_header("X-Consumer-Groups", ", ".join(ctx.consumer.groups))
    return None


def request_transformer(ctx: Context, conf: Doc) -> Reply | None:
    """remove, rename, replace, add, append (Kong's order) on headers and querystring.
    Values are taken literally: Kong's ``$(...)`` Lua templates are not evaluated."""
    req = ctx.request
    query = parse_qsl(req.query, keep_blank_values=True)
    query_changed = False
    if conf.get("http_method"):
        req.method = str(conf["http_method"]).upper()
    for op in ("remove", "rename", "replace", "add", "append"):
        part = conf.get(op) or {}
        for item in part.get("headers") or []:
            edit_header(req, op, *item.partition(":")[::2])
        for item in part.get("querystring") or []:
            query, query_changed = edit_query(query, op, *item.partition(":")[::2]), True
    if query_changed:
        req.query = urlencode(query)
    return None


def edit_header(req: Request, op: str, name: str, value: str) -> None:
    present = req.header(name) is not None
    if op == "remove":
        req.remove_header(name)
    elif op == "rename" and present:
        old = req.header(name) or ""
        req.remove_header(name)
        req.set_header(value, old)
    elif (op == "replace" and present) or (op == "add" and not present):
        req.set_header(name, value)
    elif op == "append":
        req.headers.append((name, value))


def edit_query(query: Headers, op: str, name: str, value: str) -> Headers:
    present = any(k == name for k, _ in query)
    if op == "remove":
        return [(k, v) for k, v in query if k != name]
    if op == "rename":
        return [(value if k == name else k, v) for k, v in query]
    if op == "replace" and present:
        return [(k, value if k == name else v) for k, v in query]
    if (op == "add" and not present) or op == "append":
        return [*query, (name, value)]
    return query


def request_termination(ctx: Context, conf: Doc) -> Reply | None:
    trigger = conf.get("trigger")
    if trigger and ctx.request.header(trigger) is None and (trigger not in dict(parse_qsl(ctx.request.query))):
        return None
    status = conf.get("status_code") or 503
    if conf.get("body"):
        return Reply(status, str(conf["body"]).encode(), content_type=conf.get("content_type") or JSON_TYPE)
    defaults = {
        401: "Unauthorized",
        404: "Not found",
        405: "Method not allowed",
        500: "An unexpected error occurred",
        502: "Bad Gateway",
    }
    return exit_message(status, conf.get("message") or defaults.get(status, "Service unavailable"))


ACCESS_HANDLERS: dict[str, PluginHandler] = {
    "cors": cors,
    "key-auth": key_auth,
    "basic-auth": basic_auth,
    "ip-restriction": ip_restriction,
    "acl": acl,
    "request-transformer": request_transformer,
    "request-termination": request_termination,
}


def plugins_for(gw: Gateway, route: Route) -> list[Plugin]:
    """Per plugin name a route plugin beats a service plugin beats a global one, then all
    run by priority. Consumer-scoped plugins are not supported and are skipped."""
    service_key = route.service.key if route.service else None
    chosen: dict[str, tuple[int, Plugin]] = {}
    for plugin in gw.plugins:
        if (
            plugin.consumer
            or (plugin.route and plugin.route != route.key)
            or (plugin.service and plugin.service != service_key)
        ):
            continue
        level = 2 if plugin.route else 1 if plugin.service else 0
        if plugin.name not in chosen or level >= chosen[plugin.name][0]:
            chosen[plugin.name] = (level, plugin)
    return sorted((p for _, p in chosen.values()), key=lambda p: -PRIORITIES.get(p.name, 0))


def run_access_phase(ctx: Context) -> Reply | None:
    """The first plugin that answers (kong.response.exit) ends the request."""
    for plugin in plugins_for(ctx.gateway, ctx.route):
        handler = ACCESS_HANDLERS.get(plugin.name)
        reply = handler(ctx, plugin.config) if handler else None
        if reply is not None:
            return reply
    return None
