"""Which era of self-hosted Supabase a template is written for, and refusing a template of
one era over a host of the other.

Two eras differ in ways that break clients silently
(https://supabase.com/docs/guides/self-hosting/self-hosted-auth-keys; supabase/supabase's
docker-compose.kong.yml, kong-entrypoint.sh and kong.yml):

- **legacy** (kong:2.8.1, the ``eval "echo …"`` entrypoint): keys are HS256 JWTs, the file
  has no Lua expressions (templates/kong-simple.yml.j2);
- **modern** (kong/kong:3.9.x started by ``kong-entrypoint.sh``, awk expansion): the file's
  request-transformers evaluate ``$LUA_AUTH_EXPR`` / ``$LUA_RT_WS_EXPR`` to turn opaque
  ``sb_publishable_`` / ``sb_secret_`` keys into ES256 JWTs, and the consumers carry
  ``- key: $SUPABASE_PUBLISHABLE_KEY`` (templates/kong-2026.yml.j2).

A legacy template rendered over a modern host's file drops the translation: every client
using a publishable key gets 401s. A modern template on a legacy host has ``$LUA_*`` names
its eval entrypoint never defines. Both are refused before anything is written. Pure.
"""

from __future__ import annotations

from pathlib import Path

from .errors import ValidationError
from .hostprofile import AWK, EVAL, HostProfile

LEGACY, MODERN = "legacy", "modern"
#: Names only a modern file references (kong-entrypoint.sh defines the LUA_* ones).
MODERN_MARKERS = ("$LUA_RT_WS_EXPR", "$LUA_AUTH_EXPR", "$SUPABASE_PUBLISHABLE_KEY")
MODERN_TEMPLATE = "templates/kong-2026.yml.j2"
LEGACY_TEMPLATE = "templates/kong-simple.yml.j2"


def text_era(text: str) -> str:
    """``modern`` when the file references what only kong-entrypoint.sh provides."""
    return MODERN if any(marker in text for marker in MODERN_MARKERS) else LEGACY


def host_era(profile: HostProfile) -> str | None:
    """``modern`` for a Kong started by an entrypoint script (awk), ``legacy`` for the eval
    one-liner, None when the host's entrypoint expands nothing (no era to hold it to)."""
    if profile.expansion == AWK:
        return MODERN
    return LEGACY if profile.expansion == EVAL else None


def refuse_era_mismatch(host: str, template: Path, rendered: str, profile: HostProfile) -> None:
    """Raise :class:`ValidationError` when ``template``'s era is not the host's (see above)."""
    era, wanted = text_era(rendered), host_era(profile)
    if wanted is None or era == wanted:
        return
    kong = profile.kong_container or "the Kong container"
    if wanted == MODERN:
        raise ValidationError(
            f"hosts/{host}/kong_template: {template.name} is a legacy (Kong 2.8-era) template, but {kong} runs"
            f" {profile.entrypoint_script or 'kong-entrypoint.sh'} ({profile.kong_image or 'Kong 3.x'}): its kong.yml"
            " translates opaque sb_ keys ($LUA_RT_WS_EXPR, $SUPABASE_PUBLISHABLE_KEY) and this file would drop that,"
            " breaking every client using a publishable key. Use kong_template: " + MODERN_TEMPLATE + " (upstream's"
            " current kong.yml), or keep the host's own file (`supakong init`); nothing was changed"
        )
    raise ValidationError(
        f"hosts/{host}/kong_template: {template.name} is a modern (kong-entrypoint.sh) template, but {kong} runs"
        f" the eval entrypoint ({profile.kong_image or 'Kong 2.8'}), which defines no $LUA_* expressions and"
        " strips the file's double quotes. Use kong_template: " + LEGACY_TEMPLATE + ", or move the host to"
        " upstream's Kong 3.9 setup (docker-compose.kong.yml with volumes/api/kong-entrypoint.sh) first;"
        " nothing was changed"
    )
