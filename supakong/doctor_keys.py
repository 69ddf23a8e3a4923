"""The doctor's checks of today's opaque keys: does Kong turn a publishable key into a JWT
that Realtime accepts?

On a Kong host of today's self-hosted Supabase
(https://supabase.com/docs/guides/self-hosting/self-hosted-auth-keys; docker-compose.kong.yml,
kong-entrypoint.sh and kong.yml of supabase/supabase) a browser sends
``?apikey=sb_publishable_…``; Kong's key-auth must know that key (the anon consumer's
``- key: $SUPABASE_PUBLISHABLE_KEY``), the realtime-v1-ws route's request-transformer must
replace it with ``$LUA_RT_WS_EXPR`` (which kong-entrypoint.sh makes only when both
``SUPABASE_PUBLISHABLE_KEY`` and ``SUPABASE_SECRET_KEY`` are set), and Realtime must verify the
resulting ES256 ``ANON_KEY_ASYMMETRIC`` against ``API_JWT_JWKS`` (kid, signature, role,
expiry). Each link is one check here, failing with its own cause. A host without opaque keys
(legacy-only mode) gets none of these checks.

Pure: every check reads values the doctor already gathered; nothing prints a key.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import jwt

from .checks import FAIL, OK, Check
from .kong.entities import Entities, collect_entities, plugins_applying_to
from .kong.pitfalls import realtime_routes
from .kong.yaml_source import parse_source
from .verify_keys import AUTH_KEYS_DOCS, KID_CAUSE, KID_FIX, NO_JWKS_CAUSE, NO_JWKS_FIX, UNTRANSLATED_FIX

OPAQUE_NAMES = ("SUPABASE_PUBLISHABLE_KEY", "SUPABASE_SECRET_KEY")
ASYMMETRIC_NAMES = ("ANON_KEY_ASYMMETRIC", "SERVICE_ROLE_KEY_ASYMMETRIC")
WS_EXPRESSION = "$LUA_RT_WS_EXPR"


@dataclass(frozen=True)
class KeyFacts:
    """What the key checks read: both containers' environments, the kong file on the host
    (``source``), the file Kong loaded after its entrypoint (``loaded``, None when unread),
    the local secrets' publishable key and the time."""

    kong_container: str
    realtime_container: str
    kong_env: Mapping[str, str] = field(default_factory=dict, repr=False)
    realtime_env: Mapping[str, str] | None = field(default=None, repr=False)
    source: str | None = field(default=None, repr=False)
    loaded: str | None = field(default=None, repr=False)
    local_publishable: str = field(default="", repr=False)
    now: float = 0.0

    @property
    def opaque_mode(self) -> bool:
        """True when the host (or the local secrets) has an opaque key."""
        return bool(self.local_publishable) or any(self.kong_env.get(name) for name in OPAQUE_NAMES)


def doctor_key_checks(f: KeyFacts) -> list[Check]:
    """The three checks for a host with opaque keys; none in legacy-only mode."""
    if not f.opaque_mode:
        return []
    return [check_publishable_key(f), check_ws_translation(f), check_realtime_jwks(f)]


# --------------------------------------------------------------------------- Kong knows the key


def check_publishable_key(f: KeyFacts) -> Check:
    """Kong has both opaque keys and the pre-signed JWT, the local key is Kong's, and the
    anon consumer has a credential for it (its ``- key:`` line survived the entrypoint)."""
    name = "publishable key"
    env = f.kong_env
    missing = [n for n in (*OPAQUE_NAMES, "ANON_KEY_ASYMMETRIC") if not env.get(n)]
    if missing:
        return Check(
            name,
            FAIL,
            f"key not configured: {f.kong_container} has no {' or '.join(missing)}; kong-entrypoint.sh translates"
            " sb_ keys only when SUPABASE_PUBLISHABLE_KEY and SUPABASE_SECRET_KEY are both set",
            "set SUPABASE_PUBLISHABLE_KEY, SUPABASE_SECRET_KEY, ANON_KEY_ASYMMETRIC and SERVICE_ROLE_KEY_ASYMMETRIC in"
            " .env (utils/add-new-auth-keys.sh --update-env makes them) and recreate Kong; see " + AUTH_KEYS_DOCS,
        )
    held = env["SUPABASE_PUBLISHABLE_KEY"]
    if f.local_publishable and f.local_publishable != held:
        return Check(
            name,
            FAIL,
            f"the SUPABASE_PUBLISHABLE_KEY of the host's secrets_env_file is not the one {f.kong_container} holds",
            "put the host's current key in secrets_env_file (or leave it out: supakong then uses the container's)",
        )
    credential = _credential_line(f, held)
    if credential is not None:
        return Check(name, FAIL, credential[0], credential[1])
    return Check(
        name,
        OK,
        f"{f.kong_container} holds a publishable and a secret key; consumer anon has a credential for the"
        " publishable one",
    )


def _credential_line(f: KeyFacts, held: str) -> tuple[str, str] | None:
    """Why the anon consumer has no credential for ``held`` (None: it has)."""
    if f.source is not None and "$SUPABASE_PUBLISHABLE_KEY" not in f.source and held not in f.source:
        return (
            "key not configured in kong.yml: consumer anon has no keyauth credential $SUPABASE_PUBLISHABLE_KEY",
            "add the line `- key: $SUPABASE_PUBLISHABLE_KEY ` under consumer anon's keyauth_credentials (upstream's"
            " kong.yml has it; `fab deploy-kong` with templates/kong-2026.yml.j2 renders it) and restart Kong",
        )
    if f.loaded is not None and held not in f.loaded:
        return (
            "Kong loaded no credential for the publishable key, as its key line was empty when Kong"
            " started, and kong-entrypoint.sh deletes empty key lines",
            f"restart {f.kong_container} now that SUPABASE_PUBLISHABLE_KEY is set, so its entrypoint expands the"
            " line again",
        )
    return None


# --------------------------------------------------------------------------- the ws route translates


def check_ws_translation(f: KeyFacts) -> Check:
    """The realtime-v1-ws route's request-transformer sets x-api-key (or replaces the apikey
    query) from ``$LUA_RT_WS_EXPR``, the expression that turns the key into the JWT."""
    name = "ws translation"
    if f.source is None:
        return Check(name, FAIL, "the kong file could not be read, so the realtime-v1-ws route was not checked")
    parsed = parse_source(f.source)
    if not isinstance(parsed.doc, Mapping):
        return Check(name, FAIL, "the kong file does not parse, so the realtime-v1-ws route was not checked")
    entities = collect_entities(parsed.doc)
    routes = realtime_routes(entities)
    if not routes:
        return Check(name, FAIL, "the kong file has no realtime-v1-ws route", UNTRANSLATED_FIX)
    for route in routes:
        if not _translates(route, entities):
            label = route.get("name") or route.path
            return Check(
                name,
                FAIL,
                f"translation missing on the ws route {label}: no request-transformer sets x-api-key or the"
                f" apikey query from {WS_EXPRESSION}, so a publishable key reaches Realtime as it is (Realtime:"
                " 'The token provided is not a valid JWT')",
                UNTRANSLATED_FIX,
            )
    return Check(name, OK, f"realtime-v1-ws sets x-api-key and the apikey query from {WS_EXPRESSION}")


def _translates(route: Any, entities: Entities) -> bool:
    for plugin in plugins_applying_to(route, entities):
        if plugin.get("name") != "request-transformer" or plugin.get("enabled") is False:
            continue
        config = plugin.get("config")
        if not isinstance(config, Mapping):
            continue
        for action in ("add", "replace", "append"):
            section = config.get(action)
            if not isinstance(section, Mapping):
                continue
            for key, wanted in (("headers", "x-api-key"), ("querystring", "apikey")):
                for item in section.get(key) or []:
                    head, _, value = str(item).partition(":")
                    if head.strip().lower() == wanted and WS_EXPRESSION in value:
                        return True
    return False


# --------------------------------------------------------------------------- Realtime accepts the JWT


def check_realtime_jwks(f: KeyFacts) -> Check:
    """``ANON_KEY_ASYMMETRIC`` (what Kong sends for the publishable key) verifies against
    Realtime's ``API_JWT_JWKS``: the kid is there, the signature holds, role anon, not expired."""
    name = "realtime jwks"
    token = f.kong_env.get("ANON_KEY_ASYMMETRIC", "")
    if not token:
        return Check(name, FAIL, f"{f.kong_container} has no ANON_KEY_ASYMMETRIC to send Realtime")
    if f.realtime_env is None:
        return Check(name, FAIL, f"{f.realtime_container} was not found, so its API_JWT_JWKS was not checked")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.DecodeError:
        return Check(name, FAIL, f"ANON_KEY_ASYMMETRIC of {f.kong_container} is not a JWT", KID_FIX)
    kid, alg = header.get("kid"), header.get("alg")
    text = f.realtime_env.get("API_JWT_JWKS", "")
    if not text.strip():
        return Check(name, FAIL, f"API_JWT_JWKS not set on {f.realtime_container}: {NO_JWKS_CAUSE}", NO_JWKS_FIX)
    try:
        keys = json.loads(text).get("keys")
    except (ValueError, AttributeError):
        keys = None
    if not isinstance(keys, list):
        return Check(
            name, FAIL, f'API_JWT_JWKS of {f.realtime_container} is not a JWKS ({{"keys": [...]}})', NO_JWKS_FIX
        )
    jwk = next((k for k in keys if isinstance(k, dict) and k.get("kid") == kid), None)
    if jwk is None:
        return Check(
            name, FAIL, f'API_JWT_JWKS of {f.realtime_container} lacks kid "{kid}" ({alg}): {KID_CAUSE}', KID_FIX
        )
    return _verify_with(f, token, jwk, str(kid), str(alg))


def _verify_with(f: KeyFacts, token: str, jwk: Mapping[str, Any], kid: str, alg: str) -> Check:
    name = "realtime jwks"
    try:
        claims = jwt.decode(
            token, jwt.PyJWK(dict(jwk), alg).key, [alg], options={"verify_exp": False, "verify_iat": False}
        )
    except (jwt.PyJWTError, ValueError) as exc:
        return Check(
            name,
            FAIL,
            f'ANON_KEY_ASYMMETRIC does not verify against kid "{kid}" of API_JWT_JWKS ({type(exc).__name__})',
            KID_FIX,
        )
    role, exp = claims.get("role"), claims.get("exp")
    if role != "anon":
        return Check(name, FAIL, f"ANON_KEY_ASYMMETRIC carries role {role!r}, not 'anon'", KID_FIX)
    if not isinstance(exp, int) or exp <= f.now:
        return Check(name, FAIL, "ANON_KEY_ASYMMETRIC has expired (or has no exp)", KID_FIX)
    until = datetime.fromtimestamp(exp, UTC).strftime("%Y-%m-%d")
    return Check(
        name,
        OK,
        f'ANON_KEY_ASYMMETRIC ({alg}, kid "{kid}") verifies against API_JWT_JWKS of {f.realtime_container},'
        f" role anon, expires {until}",
    )
