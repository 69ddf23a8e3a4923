"""Which keys a host's Realtime path is verified with, and what a failure means for each kind.

Today's self-hosted Supabase has two kinds of API keys
(https://supabase.com/docs/guides/self-hosting/self-hosted-auth-keys): the legacy anon JWT
(HS256, signed with ``JWT_SECRET``) and the opaque publishable key (``sb_publishable_…``),
which Kong's request-transformer turns into the pre-signed ES256 ``ANON_KEY_ASYMMETRIC`` on
the realtime-v1-ws route (``$LUA_RT_WS_EXPR`` of kong-entrypoint.sh) and which Realtime then
verifies against ``API_JWT_JWKS``. supabase-js sends either as the apikey query parameter and as the join's
``access_token``; supakong probes with the publishable key where the host has one (what
current clients use) and with the legacy JWT where it has one.

A refused probe is diagnosed by the generic tables (:mod:`supakong.verify_diagnose`);
:func:`for_key` then says what the answer means for a publishable key. Kong's 401
"Unauthorized" is a key Kong does not know, Realtime's "not a valid JWT" is a key that
reached it untranslated, the signer errors are Realtime's missing JWKS or kid.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .errors import InventoryError
from .secrets import Secrets, register_secret
from .verify_diagnose import NOT_JWT_CAUSE, STALE_KEY_CAUSE
from .verify_model import Diagnosis

PUBLISHABLE = "publishable key"
LEGACY = "legacy anon JWT"
AUTH_KEYS_DOCS = "https://supabase.com/docs/guides/self-hosting/self-hosted-auth-keys"

UNTRANSLATED_CAUSE = (
    "Kong passed the sb_publishable_ key to Realtime untranslated: the realtime-v1-ws route has no"
    " request-transformer setting x-api-key and the apikey query from $LUA_RT_WS_EXPR, or kong-entrypoint.sh"
    " made the legacy expression (SUPABASE_PUBLISHABLE_KEY or SUPABASE_SECRET_KEY empty in the Kong container)"
)
UNTRANSLATED_FIX = (
    'give realtime-v1-ws upstream\'s request-transformer (add headers ["x-api-key:$LUA_RT_WS_EXPR"], replace'
    ' querystring ["apikey:$LUA_RT_WS_EXPR"]; `fab deploy-kong` with templates/kong-2026.yml.j2 renders it)'
    " and set both opaque keys in the Kong container, then restart Kong; see " + AUTH_KEYS_DOCS
)
UNKNOWN_KEY_CAUSE = (
    "Kong does not know the publishable key (no keyauth credential $SUPABASE_PUBLISHABLE_KEY is loaded)"
    " (SUPABASE_PUBLISHABLE_KEY empty or different in the Kong container, and kong-entrypoint.sh deletes the"
    " empty key line), or the key supakong has is not the host's"
)
UNKNOWN_KEY_FIX = (
    "set SUPABASE_PUBLISHABLE_KEY (and SUPABASE_SECRET_KEY, ANON_KEY_ASYMMETRIC, SERVICE_ROLE_KEY_ASYMMETRIC) in"
    " the Kong service's environment from .env, keep the anon consumer's keyauth credential"
    " $SUPABASE_PUBLISHABLE_KEY in"
    " kong.yml and recreate Kong; see " + AUTH_KEYS_DOCS
)
NO_JWKS_CAUSE = (
    "Realtime has no JWKS to verify the ES256 JWT Kong makes from the publishable key, because API_JWT_JWKS is not set"
    " on Realtime (upstream's docker-compose.yml ships `#API_JWT_JWKS: ${JWT_JWKS}` commented out)"
)
NO_JWKS_FIX = (
    "uncomment `API_JWT_JWKS: ${JWT_JWKS}` in the realtime service (utils/add-new-auth-keys.sh --update-env"
    " does it) and recreate realtime: its seed reads the JWKS on boot; see " + AUTH_KEYS_DOCS
)
KID_CAUSE = (
    "Realtime's API_JWT_JWKS lacks the kid of the ES256 JWT Kong makes from the publishable key"
    " (ANON_KEY_ASYMMETRIC and JWT_JWKS come from different runs of add-new-auth-keys.sh, or Realtime"
    " was not recreated after the JWKS changed)"
)
KID_FIX = (
    "make ANON_KEY_ASYMMETRIC, SERVICE_ROLE_KEY_ASYMMETRIC and JWT_JWKS in one run of"
    " utils/add-new-auth-keys.sh, then recreate Kong and realtime; see " + AUTH_KEYS_DOCS
)


@dataclass(frozen=True)
class ProbeKey:
    """One key to probe with: what kind it is (for people) and the value (never printed)."""

    label: str
    value: str

    def __repr__(self) -> str:
        return f"ProbeKey({self.label!r})"


def is_opaque(apikey: str) -> bool:
    """True for Supabase's opaque keys (``sb_publishable_…``, ``sb_secret_…``)."""
    return apikey.startswith(("sb_publishable_", "sb_secret_"))


def probe_keys(secrets: Secrets, kong_env: Mapping[str, str] | None, kong_container: str) -> tuple[ProbeKey, ...]:
    """The keys a host is verified with: its publishable key first (as current supabase-js
    connects), then its legacy anon JWT; each the local one, else the Kong container's own
    (registered as a secret). Raises :class:`InventoryError` when there is neither."""
    keys = []
    for label, name in ((PUBLISHABLE, "SUPABASE_PUBLISHABLE_KEY"), (LEGACY, "SUPABASE_ANON_KEY")):
        value = secrets.get(name) or (kong_env or {}).get(name, "")
        if value:
            register_secret(value)
            keys.append(ProbeKey(label, value))
    if not keys:
        raise InventoryError(
            f"no key to verify with: {kong_container} has neither SUPABASE_PUBLISHABLE_KEY nor SUPABASE_ANON_KEY"
            " in its environment and none is set locally; put one in the host's secrets_env_file"
        )
    return tuple(keys)


def for_key(diagnosis: Diagnosis | None, apikey: str, body: str = "") -> Diagnosis | None:
    """``diagnosis`` of a probe made with ``apikey``, refined for a publishable key."""
    if diagnosis is None:
        return None
    text = f"{diagnosis.body} {body}".lower()
    if "for key id (kid)" in text:
        return Diagnosis(KID_CAUSE, KID_FIX, diagnosis.status, diagnosis.body)
    if "failed to generate jwt signer" in text:
        return Diagnosis(NO_JWKS_CAUSE, NO_JWKS_FIX, diagnosis.status, diagnosis.body)
    if not is_opaque(apikey):
        return diagnosis
    if diagnosis.cause == NOT_JWT_CAUSE:
        return Diagnosis(UNTRANSLATED_CAUSE, UNTRANSLATED_FIX, diagnosis.status, diagnosis.body)
    if diagnosis.cause == STALE_KEY_CAUSE:
        return Diagnosis(UNKNOWN_KEY_CAUSE, UNKNOWN_KEY_FIX, diagnosis.status, diagnosis.body)
    return diagnosis
