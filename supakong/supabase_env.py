"""What ``$NAME`` can become in Supabase's Kong container, per expansion of its entrypoint.

A module of its own, free of imports, so that rendering (every deploy, a no-op too) can ask
it without loading the Kong validator (:mod:`supakong.kong`).
"""

from __future__ import annotations

#: The environment of Supabase's Kong container per expansion: what ``$NAME`` can become.
#: awk: docker-compose.kong.yml's variables plus the ones kong-entrypoint.sh exports.
SUPABASE_ENV: dict[str, tuple[str, ...]] = {
    "eval": ("SUPABASE_ANON_KEY", "SUPABASE_SERVICE_KEY", "DASHBOARD_USERNAME", "DASHBOARD_PASSWORD"),
    "awk": (
        "SUPABASE_ANON_KEY", "SUPABASE_SERVICE_KEY", "SUPABASE_PUBLISHABLE_KEY", "SUPABASE_SECRET_KEY",
        "ANON_KEY_ASYMMETRIC", "SERVICE_ROLE_KEY_ASYMMETRIC", "DASHBOARD_USERNAME", "DASHBOARD_PASSWORD",
        "JWT_ISSUER", "LUA_AUTH_EXPR", "LUA_RT_WS_EXPR", "LUA_FUNCTIONS_EXPR", "WELL_KNOWN_OAUTH_PATH",
    ),
    "none": (),
}  # fmt: skip
