"""The access phase of the plugins self-hosted Supabase uses.

Authentication failures answer like ``kong.response.error`` (Kong's JSON error template,
with a ``request_id`` on 3.x); request-termination answers like ``kong.response.exit``
(compact JSON). Messages, realms and priorities follow each plugin's handler at 2.8.1 and
3.9.3 (Kong/kong@<tag>:kong/plugins/<name>/handler.lua).
"""

from __future__ import annotations

import base64
import ipaddress
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode

from . import functions, transformer
from .http import JSON_TYPE, Headers, Reply, Request, error_message, exit_message
from .logs import log_error
from .model import Consumer, Doc, Gateway, Plugin, Route
from .settings import Settings

# The access phase runs plugins by descending PRIORITY (kong/plugins/*/handler.lua).
PRIORITIES_2_8 = {
    "pre-function": 10**9,  # math.huge
    "cors": 2000,
    "key-auth": 1003,
    "basic-auth": 1001,
    "ip-restriction": 990,
    "acl": 950,
    "request-transformer": 801,
    "request-termination": 2,
    "post-function": -1000,
}
PRIORITIES_3 = {**PRIORITIES_2_8, "pre-function": 1000000, "key-auth": 1250, "basic-auth": 1100}
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
    captures: list[tuple[str, str]] = field(default_factory=list)  # a regex route's captures
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


def fail(ctx: Context, status: int, text: str, *headers: tuple[str, str]) -> Reply:
    """``kong.response.error(status, text, headers)``."""
    return error_message(ctx.settings, status, text, ctx.request_id, *headers)


def unless_anonymous(ctx: Context, conf: Doc, failure: Reply) -> Reply | None:
    """``anonymous``: a missing *or invalid* credential becomes that consumer instead."""
    if not conf.get("anonymous"):
        return failure
    consumer = ctx.gateway.consumers.get(conf["anonymous"])
    if consumer is None:
        return fail(ctx, 500, "An unexpected error occurred")
    set_consumer(ctx, consumer, None)
    return None


def invalid_credentials(ctx: Context, realm: tuple[str, str]) -> Reply:
    """2.8.1 "Invalid authentication credentials", 3.9.3 "Unauthorized"
    (key-auth/handler.lua:31, basic-auth/access.lua)."""
    text = "Invalid authentication credentials" if not ctx.settings.v3 else "Unauthorized"
    return fail(ctx, 401, text, realm)


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
    # 2.8.1: Key realm="kong" (handler.lua:18); 3.9.3: Key, or the configured realm (:114)
    if ctx.settings.v3:
        realm = ("WWW-Authenticate", f'Key realm="{conf["realm"]}"' if conf.get("realm") else "Key")
    else:
        realm = ("WWW-Authenticate", 'Key realm="kong"')
    key = find_api_key(ctx.request, conf)
    if not key:
        return unless_anonymous(ctx, conf, fail(ctx, 401, "No API key found in request", realm))
    consumer = ctx.gateway.keys.get(key)
    if consumer is None:
        return unless_anonymous(ctx, conf, invalid_credentials(ctx, realm))
    set_consumer(ctx, consumer, str(uuid.uuid5(uuid.NAMESPACE_URL, f"keyauth:{key}")))
    return None


def basic_auth(ctx: Context, conf: Doc) -> Reply | None:
    if conf.get("anonymous") and ctx.credential:
        return None
    # 2.8.1: Basic realm="kong"; 3.9.3: the realm setting, default "service"
    realm_name = (conf.get("realm") or "service") if ctx.settings.v3 else "kong"
    realm = ("WWW-Authenticate", f'Basic realm="{realm_name}"')
    header = ctx.request.header("authorization") or ctx.request.header("proxy-authorization")
    if not header or not header.lower().startswith("basic "):
        return unless_anonymous(ctx, conf, fail(ctx, 401, "Unauthorized", realm))
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
        # 2.8.1 "Your IP address is not allowed"; 3.9.3 "IP address not allowed: <addr>"
        default = f"IP address not allowed: {address}" if ctx.settings.v3 else "Your IP address is not allowed"
        return fail(ctx, int(conf.get("status") or 403), conf.get("message") or default)
    return None


def acl(ctx: Context, conf: Doc) -> Reply | None:
    if ctx.consumer is None:
        return fail(ctx, 401, "Unauthorized")
    groups = set(ctx.consumer.groups)
    allow = conf.get("allow") or conf.get("whitelist")
    deny = conf.get("deny") or conf.get("blacklist")
    if (allow and not groups & set(allow)) or (deny and groups & set(deny)):
        return fail(ctx, 403, "You cannot consume this service")
    ctx.request.remove_header("X-Consumer-Groups")
    if not conf.get("hide_groups_header") and groups:
        ctx.request.set_header("X-Consumer-Groups", ", ".join(ctx.consumer.groups))
    return None


def request_transformer(ctx: Context, conf: Doc) -> Reply | None:
    """See ``transformer``: the ``$(...)`` templates run as Lua."""
    transformer.transform(ctx.request, conf, ctx.captures)
    return None


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


def function_plugin(name: str) -> Callable[[Context, Plugin], Reply | None]:
    def run(ctx: Context, plugin: Plugin) -> Reply | None:
        return functions.run_access(ctx, name, plugin.config, plugin.runtime)

    return run


ACCESS_HANDLERS: dict[str, PluginHandler] = {
    "cors": cors,
    "key-auth": key_auth,
    "basic-auth": basic_auth,
    "ip-restriction": ip_restriction,
    "acl": acl,
    "request-transformer": request_transformer,
    "request-termination": request_termination,
}


PLUGIN_HANDLERS = {"pre-function": function_plugin("pre-function"), "post-function": function_plugin("post-function")}


def plugins_for(gw: Gateway, route: Route, settings: Settings) -> list[Plugin]:
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
    priorities = PRIORITIES_3 if settings.v3 else PRIORITIES_2_8
    return sorted((p for _, p in chosen.values()), key=lambda p: -priorities.get(p.name, 0))


def run_access_phase(ctx: Context) -> Reply | None:
    """The first plugin that answers (kong.response.exit) ends the request. A plugin whose
    Lua fails is logged and the request answered 500, like Kong's runloop."""
    for plugin in plugins_for(ctx.gateway, ctx.route, ctx.settings):
        try:
            if plugin.name in PLUGIN_HANDLERS:
                reply = PLUGIN_HANDLERS[plugin.name](ctx, plugin)
            else:
                handler = ACCESS_HANDLERS.get(plugin.name)
                reply = handler(ctx, plugin.config) if handler else None
        except (transformer.TemplateFailure, functions.FunctionFailure) as exc:
            log_error("error", f'[kong] {exc}, client: {ctx.request.client_ip}, request: "{ctx.line}"')
            return fail(ctx, 500, "An unexpected error occurred")
        if reply is not None:
            return reply
    return None
