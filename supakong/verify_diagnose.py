"""Pure tables that name the cause of a failed Realtime probe.

Three kinds of answers are diagnosed:

* a refused WebSocket handshake (HTTP status, body, headers), answered by Kong
  (`{"message": …}`, `Server: kong/x`) or by Realtime behind it (`{"error": …}`,
  `Via: kong/x`, or the empty-body 403 of Realtime < v2.116);
* an error `phx_reply` to the channel join (`"<Code>: <message>"`);
* an error `system` message of the postgres_changes extension.

Sources: supabase/realtime@v2.129.8 `lib/realtime_web/channels/user_socket.ex`
(`handle_error/2`, the tenant from the Host's first label via
`lib/realtime/database.ex` `get_external_id`) and `realtime_channel.ex` (`join/3`);
Kong/kong@2.8.1 `kong/plugins/key-auth/handler.lua`, `kong/plugins/acl/handler.lua`.
Nothing here does I/O; the probe (`supakong.verify_probe`) feeds these functions, and
:func:`for_host` then names a host's own values (its upstream, its containers) in the fix.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass

from supakong.verify_model import Diagnosis

KONG = "kong"
REALTIME = "realtime"
UNKNOWN = "unknown"

BODY_LIMIT = 300

# Causes and fixes shared by several tables.
TENANT_CAUSE = (
    "Realtime found no tenant for the Host it received: the Host's first label is not the "
    "tenant id (`preserve_host: true` on the realtime route, or a renamed upstream host)"
)
#: Where the tenant rule is written down (public): Realtime's source and the README.
TENANT_SOURCE = (
    "see supabase/realtime lib/realtime/database.ex (get_external_id) and the README section"
    " 'Why the realtime route looks like this'"
)
TENANT_FIX = (
    "keep preserve_host false on the realtime route and a service url host whose first label is"
    " Realtime's tenant (SELF_HOST_TENANT_NAME, realtime-dev by default), or set SELF_HOST_TENANT_NAME"
    " to that host's first label; " + TENANT_SOURCE
)
RESOLVE_FIX = (
    "put the realtime container on a Docker network it shares with kong, reachable under the host"
    " name of the realtime service url; keep KONG_DNS_ORDER=LAST,A,CNAME"
)
JWT_SECRET_CAUSE = (
    "the anon key is not signed with Realtime's API_JWT_SECRET (JWT_SECRET and ANON_KEY out "
    "of sync, or the tenant still holds an old secret)"
)
JWT_SECRET_FIX = (
    "regenerate ANON_KEY from the current JWT_SECRET, redeploy kong.yml and restart realtime "
    "(its seed rewrites the tenant's secret on boot)"
)
STALE_KEY_CAUSE = (
    "the apikey is not one of kong.yml's keyauth_credentials (stale key after a rotation, "
    "or the new kong.yml was never loaded by the running Kong)"
)
STALE_KEY_FIX = (
    "render kong.yml with the current ANON_KEY and restart the kong container "
    "(`fab deploy-kong`); a file replaced by rename needs a restart to be seen"
)
EXPIRED_CAUSE = "the apikey JWT has expired (its `exp` is in the past)"
EXPIRED_FIX = "issue a new anon key with a later `exp` from JWT_SECRET and redeploy"
NOT_JWT_CAUSE = (
    "the token Realtime received is not a JWT (Kong's request-transformer rewrote it, or an "
    "opaque sb_ key reached Realtime untranslated)"
)
NOT_JWT_FIX = "check the request-transformer of the realtime route and the key you pass"
ANONYMOUS_CAUSE = "Kong accepted an invalid apikey: key-auth `anonymous` fallback is masking bad keys"
ANONYMOUS_FIX = "remove `anonymous:` from the key-auth plugin on the realtime route"
DB_CAUSE = "Realtime cannot use the project database (unreachable, out of connections, or still starting)"
DB_FIX = "check realtime's DB_* settings and that Postgres is up; retry if it was initializing"
UPGRADE_LOST_FIX = (
    "forward `Upgrade` and `Connection` in any proxy in front of Kong (nginx: "
    'proxy_http_version 1.1; proxy_set_header Upgrade $http_upgrade; Connection "upgrade")'
)


# --------------------------------------------------------------------------- handshake


@dataclass(frozen=True)
class _HandshakeRule:
    """One row: statuses (None = any), sources, a needle in the message (None = any)."""

    statuses: frozenset[int] | None
    sources: frozenset[str]
    needle: str | None
    cause: str
    fix: str
    empty_body: bool = False

    def matches(self, status: int, source: str, message: str, body: str) -> bool:
        if self.statuses is not None and status not in self.statuses:
            return False
        if source not in self.sources:
            return False
        if self.empty_body and body.strip():
            return False
        return self.needle is None or self.needle in message.lower()


_ANY = frozenset({KONG, REALTIME, UNKNOWN})
_K = frozenset({KONG})
_R = frozenset({REALTIME})
_NOT_KONG = frozenset({REALTIME, UNKNOWN})


def _rule(
    statuses: int | tuple[int, ...] | None,
    sources: frozenset[str],
    needle: str | None,
    cause: str,
    fix: str,
    *,
    empty_body: bool = False,
) -> _HandshakeRule:
    wanted = None if statuses is None else frozenset((statuses,) if isinstance(statuses, int) else statuses)
    return _HandshakeRule(wanted, sources, needle, cause, fix, empty_body)


# First match wins: specific Kong rows, then Realtime rows, then broad rows.
HANDSHAKE_RULES: tuple[_HandshakeRule, ...] = (
    _rule(
        401,
        _K,
        "no api key found",
        "Kong's key-auth found no apikey in the request",
        "pass the anon key as ?apikey= (supabase-js does) and keep key-auth key_names [apikey] with key_in_query true",
    ),
    _rule(401, _K, "invalid authentication credentials", STALE_KEY_CAUSE, STALE_KEY_FIX),
    _rule(401, _K, "unauthorized", STALE_KEY_CAUSE, STALE_KEY_FIX),
    _rule(
        401,
        _K,
        "duplicate api key",
        "the request carries the apikey twice with different values (header and query)",
        "send the key once, as ?apikey= on the WebSocket URL",
    ),
    _rule(
        401,
        _K,
        None,
        "Kong refused the request with 401 (key-auth or acl on the realtime route)",
        "check the key-auth and acl plugins of the realtime route and the anon consumer",
    ),
    _rule(
        403,
        _K,
        "cannot consume this service",
        "Kong's acl refused the consumer: its group is not allowed on the realtime route",
        "allow the consumer's group (anon, admin) in the realtime route's acl plugin and keep "
        "the consumer's `acls:` entry",
    ),
    _rule(
        403,
        _K,
        "access is forbidden",
        "a request-termination plugin answers this path instead of Realtime",
        "remove request-termination from the realtime-v1-ws route",
    ),
    _rule(
        404,
        _K,
        "no route matched",
        "Kong has no route for /realtime/v1/ (route missing, or the new kong.yml was not loaded)",
        "add the realtime-v1-ws route (paths [/realtime/v1/], strip_path true), check "
        "`kong config parse` and restart kong",
    ),
    _rule(
        426,
        _K,
        "https",
        "the realtime route only accepts https (route protocols) but the URL is http",
        "use the https:// public URL, or keep the route's default protocols [http, https]",
    ),
    _rule(
        503,
        _K,
        "name resolution failed",
        "Kong cannot resolve the realtime upstream host (container renamed, or not on Kong's Docker network)",
        RESOLVE_FIX,
    ),
    _rule(
        503,
        _K,
        "failure to get a peer",
        "Kong's upstream for realtime has no healthy target",
        "check the upstream's targets and the realtime container's health",
    ),
    _rule(404, _R, "tenant not found", TENANT_CAUSE, TENANT_FIX),
    _rule(
        403,
        _NOT_KONG,
        None,
        "Realtime refused the connection with an empty 403 (Realtime < v2.116 answers this for "
        "any connect error; most often the tenant is not found from the Host's first label)",
        TENANT_FIX + "; otherwise look for JwtSignatureError in the realtime logs",
        empty_body=True,
    ),
    _rule(401, _R, "signature", JWT_SECRET_CAUSE, JWT_SECRET_FIX),
    _rule(
        401,
        _R,
        "signer",
        "Realtime cannot build a JWT signer: its JWT secret or JWKS configuration is wrong",
        "check realtime's API_JWT_SECRET (and JWKS) and restart it",
    ),
    _rule(401, _R, "expired", EXPIRED_CAUSE, EXPIRED_FIX),
    _rule(
        401,
        _R,
        "`role` and `exp`",
        "the apikey JWT lacks the `role` or `exp` claim Realtime requires",
        "use a Supabase anon key (claims role and exp) signed with JWT_SECRET",
    ),
    _rule(401, _R, "not a valid jwt", NOT_JWT_CAUSE, NOT_JWT_FIX),
    _rule(
        401,
        _R,
        "api key is missing",
        "Realtime got no apikey: Kong is not forwarding it (request-transformer removes or "
        "replaces the apikey query / x-api-key header, or key-auth hide_credentials: true)",
        "keep key-auth hide_credentials false and the upstream request-transformer settings",
    ),
    _rule(
        403,
        _R,
        "disabled",
        "Realtime is disabled (suspended) for this tenant",
        "re-enable the tenant (suspend = false) in Realtime's _realtime.tenants",
    ),
    _rule(
        429,
        _R,
        None,
        "Realtime's per-tenant limit is reached (too many connected users or joins)",
        "raise the tenant's max_concurrent_users / joins limits or close idle clients",
    ),
    _rule(
        500,
        _R,
        None,
        "Realtime failed while accepting the connection (`Error connecting to Realtime`)",
        "read `docker logs` of the realtime container around this request",
    ),
    _rule(
        502,
        _ANY,
        None,
        "Kong got no valid answer from Realtime (container stopped, crashing, or wrong port)",
        "start realtime and check the port of the realtime service url in kong.yml (4000)",
    ),
    _rule(
        504,
        _ANY,
        None,
        "Realtime did not answer Kong in time (upstream timeout)",
        "check the realtime container's health and logs",
    ),
    _rule(
        (400, 426),
        _NOT_KONG,
        None,
        "the upgrade headers were lost on the way: the server saw a plain HTTP request (a proxy "
        "in front of Kong not forwarding Upgrade/Connection)",
        UPGRADE_LOST_FIX,
    ),
    _rule(
        200,
        _ANY,
        None,
        "the server answered 200 instead of 101 Switching Protocols: a proxy or CDN in front "
        "of Kong does not forward the upgrade, or the URL is not the WebSocket endpoint",
        UPGRADE_LOST_FIX,
    ),
)

_REDIRECTS = frozenset({300, 301, 302, 303, 307, 308})


def _lower_keys(headers: Mapping[str, str]) -> dict[str, str]:
    return {str(key).lower(): str(value) for key, value in headers.items()}


def trim_body(body: str, limit: int = BODY_LIMIT) -> str:
    """The body on one line, cut to about `limit` characters."""
    flat = " ".join(body.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _json_object(body: str) -> dict[str, object] | None:
    try:
        value = json.loads(body)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def answer_message(body: str) -> str:
    """The human message of a refusal: Kong's `message`, Realtime's `error`, or the body."""
    obj = _json_object(body)
    if obj is not None:
        for key in ("message", "error"):
            if isinstance(obj.get(key), str):
                return str(obj[key])
    return trim_body(body, 120)


def answer_source(status: int, body: str, headers: Mapping[str, str]) -> str:
    """Who produced a handshake refusal: KONG, REALTIME (behind Kong) or UNKNOWN.

    Body shape decides first (Kong: `{"message": …}`, Realtime: `{"error": …}`); then the
    headers Kong adds (`Server: kong/x` on its own answers, `Via: kong/x` on proxied ones,
    `WWW-Authenticate: Key realm="kong"` from key-auth); an empty 403 is old Realtime.
    """
    obj = _json_object(body)
    if obj is not None and "message" in obj:
        return KONG
    if obj is not None and "error" in obj:
        return REALTIME
    low = _lower_keys(headers)
    if low.get("server", "").lower().startswith("kong/") or 'realm="kong"' in low.get("www-authenticate", "").lower():
        return KONG
    if "kong/" in low.get("via", "").lower():
        return REALTIME
    if status == 403 and not body.strip():
        return REALTIME
    return UNKNOWN


def generic_handshake_cause(status: int) -> str:
    return (
        f"HTTP {status} during the WebSocket handshake (what supabase-js reports as "
        "CHANNEL_ERROR / 'bad response from the server')"
    )


def diagnose_handshake(status: int, body: str, headers: Mapping[str, str]) -> Diagnosis:
    """Name the cause of a non-101 answer to the WebSocket handshake (pure, table-driven)."""
    shown = trim_body(body)
    location = _lower_keys(headers).get("location")
    if status in _REDIRECTS and location:
        return Diagnosis(
            cause=f"the handshake was redirected to {location} (browsers do not follow "
            "redirects on a WebSocket handshake)",
            fix="use the final scheme://host:port as the public URL (API_EXTERNAL_URL)",
            status=status,
            body=shown,
        )
    source = answer_source(status, body, headers)
    message = answer_message(body)
    for rule in HANDSHAKE_RULES:
        if rule.matches(status, source, message, body):
            return Diagnosis(rule.cause, rule.fix, status, shown)
    who = {KONG: "Kong", REALTIME: "Realtime (via Kong)"}.get(source, "the server")
    return Diagnosis(
        cause=generic_handshake_cause(status) + f"; answered by {who}",
        fix="read the kong and realtime container logs for this request",
        status=status,
        body=shown,
    )


# --------------------------------------------------------------------------- join errors


@dataclass(frozen=True)
class _TextRule:
    needles: tuple[str, ...]
    cause: str
    fix: str

    def matches(self, text: str) -> bool:
        low = text.lower()
        return any(needle in low for needle in self.needles)


_LIMIT_FIX = "raise the tenant's limits in _realtime.tenants or close idle channels"

JOIN_RULES: tuple[_TextRule, ...] = (
    _TextRule(("tenantnotfound", "tenant not found", "tenant with the given id"), TENANT_CAUSE, TENANT_FIX),
    _TextRule(("jwtsignatureerror", "failed to validate jwt signature"), JWT_SECRET_CAUSE, JWT_SECRET_FIX),
    _TextRule(
        ("jwtsignererror", "jwt signer"),
        "Realtime cannot build a JWT signer: its JWT secret or JWKS configuration is wrong",
        "check realtime's API_JWT_SECRET (and JWKS) and restart it",
    ),
    _TextRule(("expired",), EXPIRED_CAUSE, EXPIRED_FIX),
    _TextRule(
        ("`role` and `exp`", "expiration time is invalid"),
        "the access_token JWT lacks a valid `role` / `exp` claim",
        "use a Supabase anon key (claims role and exp) signed with JWT_SECRET",
    ),
    _TextRule(("malformedjwt", "not a valid jwt"), NOT_JWT_CAUSE, NOT_JWT_FIX),
    _TextRule(
        ("privateonly", "only allows private channels"),
        "this Realtime tenant only allows private channels",
        "join with config.private true (plus RLS on realtime.messages) or allow public channels for the tenant",
    ),
    _TextRule(
        ("unauthorized", "do not have permissions"),
        "RLS on realtime.messages denies this role reading the channel topic",
        "add a select policy on realtime.messages for the role, or use a public channel",
    ),
    _TextRule(
        ("channelratelimitreached", "too many channels"),
        "Realtime's per-connection channel limit is reached",
        _LIMIT_FIX,
    ),
    _TextRule(
        ("connectionratelimitreached", "too many connected users"),
        "Realtime's max concurrent users limit is reached",
        _LIMIT_FIX,
    ),
    _TextRule(
        ("clientjoinratelimitreached", "too many joins"), "Realtime's joins-per-second limit is reached", _LIMIT_FIX
    ),
    _TextRule(
        (
            "unabletoconnecttoproject",
            "project database",
            "databaselackofconnections",
            "increaseconnectionpool",
            "connection pool",
            "initializingprojectconnection",
            "databaseconnectionratelimitreached",
            "database connections",
        ),
        DB_CAUSE,
        DB_FIX,
    ),
    _TextRule(
        ("realtimedisabledfortenant", "disabled for this tenant"),
        "Realtime is disabled (suspended) for this tenant",
        "re-enable the tenant (suspend = false) in Realtime's _realtime.tenants",
    ),
    _TextRule(
        ("realtimerestarting", "restarting"),
        "Realtime is restarting",
        "wait for the realtime container to be healthy, retry",
    ),
    _TextRule(
        ("topicnamerequired", "provide a topic name"),
        "the channel name is empty (topic `realtime:`)",
        "give the probe channel a name",
    ),
    _TextRule(
        ("unknown error on channel", "unknownerroronchannel"),
        "Realtime hit an unexpected error joining the channel",
        "read the realtime container logs for UnknownErrorOnChannel",
    ),
)


def diagnose_join_error(reason: str) -> Diagnosis:
    """Name the cause of an error `phx_reply` to phx_join (`reason` is "<Code>: <message>")."""
    shown = trim_body(reason)
    for rule in JOIN_RULES:
        if rule.matches(reason):
            return Diagnosis(rule.cause, rule.fix, body=shown)
    return Diagnosis(
        cause=f"Realtime refused the channel join: {trim_body(reason, 160)}",
        fix="look up the code before ':' in the realtime container logs",
        body=shown,
    )


# --------------------------------------------------------------------------- system errors

# Current Realtime: "Unable to subscribe to changes with given parameters. Please check
# Realtime is enabled for the given connect parameters: [event: *, schema: public, table: t…]"
# Older: "Subscription insert failed with 0 rows. Check that tables are part of publication
# supabase_realtime and subscription params are correct: %{"schema" => "public", …}".
_SCHEMA_RE = re.compile(r"""schema(?:"\s*=>\s*"|:\s*)([\w$]+)""")
_TABLE_RE = re.compile(r"""table(?:"\s*=>\s*"|:\s*)([\w$]+)""")


def _publication_fix(message: str) -> str:
    schema = _SCHEMA_RE.search(message)
    table = _TABLE_RE.search(message)
    if table is None:
        return "alter publication supabase_realtime add table <schema>.<table>;"
    qualified = f"{schema.group(1) if schema else 'public'}.{table.group(1)}"
    return f"alter publication supabase_realtime add table {qualified};"


def diagnose_system_error(message: str) -> Diagnosis:
    """Name the cause of an error `system` message (postgres_changes extension)."""
    low = message.lower()
    shown = trim_body(message)
    if "does not exist" in low:
        return Diagnosis(
            "the subscribed table (or schema) does not exist in the project database",
            "create the table or fix the probe's schema/table",
            body=shown,
        )
    if (
        "insert failed with 0 rows" in low
        or "please check realtime is enabled" in low
        or ("publication" in low and "exception" not in low)
    ):
        return Diagnosis(
            "the table is not in the supabase_realtime publication (Realtime found nothing to subscribe to)",
            _publication_fix(message),
            body=shown,
        )
    if "error parsing `filter`" in low or "error parsing `select`" in low:
        return Diagnosis(
            "the postgres_changes filter is malformed",
            "use the filter syntax column=op.value (e.g. id=eq.1)",
            body=shown,
        )
    if "replication connection" in low or "replication slot" in low:
        return Diagnosis(
            "Realtime could not open its replication connection to Postgres (wal_level not "
            "logical, replication slots exhausted, or the database unreachable)",
            "set wal_level=logical, free max_replication_slots / max_wal_senders, check the DB",
            body=shown,
        )
    if "exception" in low:
        return Diagnosis(
            "Postgres raised an error while Realtime subscribed to the table",
            "read the exception text above and the realtime logs",
            body=shown,
        )
    if "connect" in low or "database" in low:
        return Diagnosis(DB_CAUSE, DB_FIX, body=shown)
    return Diagnosis(
        f"Realtime reported a postgres_changes error: {trim_body(message, 160)}",
        "read the realtime container logs around this time",
        body=shown,
    )


# --------------------------------------------------------------------------- a host's values


@dataclass(frozen=True)
class HostHints:
    """What a fix can name on one host instead of Supabase's defaults."""

    host: str
    upstream_host: str
    tenant: str
    tenant_source: str
    kong_container: str
    realtime_container: str


def tenant_fix(h: HostHints) -> str:
    """The Tenant-not-found fix for this host: its upstream, its tenant, its container."""
    first = h.upstream_host.split(".", 1)[0]
    if first.lower() != h.tenant.lower():
        return (
            f"the realtime service url host {h.upstream_host} gives tenant {first!r} but Realtime's tenant is"
            f" {h.tenant!r} ({h.tenant_source}): set SELF_HOST_TENANT_NAME={first} on {h.realtime_container}"
            f" and recreate it, or point the url at a host whose first label is {h.tenant}; {TENANT_SOURCE}"
        )
    return (
        f"keep preserve_host false on the realtime route, so that Kong sends Host {h.upstream_host} (tenant"
        f" {first!r}) and not the browser's (`supakong init {h.host} --fix` removes it), and have"
        f" {h.realtime_container} serve tenant {first!r} (its SELF_HOST_TENANT_NAME, {h.tenant!r} by"
        f" {h.tenant_source}); {TENANT_SOURCE}"
    )


def resolve_fix(h: HostHints) -> str:
    """The fix of Kong's 'name resolution failed' for this host's upstream and containers."""
    return (
        f"{h.kong_container} cannot resolve {h.upstream_host}: put {h.realtime_container} on a Docker network"
        f" it shares with {h.kong_container}, named {h.upstream_host} there (container_name or a network alias);"
        " keep KONG_DNS_ORDER=LAST,A,CNAME"
    )


_LOCALIZED = ((TENANT_FIX, tenant_fix), (RESOLVE_FIX, resolve_fix))


def for_host(diagnosis: Diagnosis | None, hints: HostHints) -> Diagnosis | None:
    """``diagnosis`` with its generic fix naming this host's values."""
    if diagnosis is None:
        return None
    fix = diagnosis.fix
    for generic, localized in _LOCALIZED:
        if generic in fix:
            fix = fix.replace(generic, localized(hints))
    return diagnosis if fix == diagnosis.fix else Diagnosis(diagnosis.cause, fix, diagnosis.status, diagnosis.body)
