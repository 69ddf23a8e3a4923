#!/bin/sh
# The sandbox's kong-entrypoint.sh: what self-hosted Supabase's kong container runs since
# 2026 (supabase/supabase: docker/volumes/api/kong-entrypoint.sh, run by
# docker-compose.kong.yml as `/bin/sh /home/kong/kong-entrypoint.sh`), written for supakong's
# sandbox from that script's documented behaviour; POSIX sh, busybox awk and sed suffice.
#
# 1. Export the Lua templates request-transformer evaluates per request:
#      LUA_AUTH_EXPR       the Authorization header for auth, rest, graphql, realtime api, storage
#      LUA_RT_WS_EXPR      the x-api-key header and apikey argument of the Realtime WebSocket
#      LUA_FUNCTIONS_EXPR  the sb-api-key header of edge functions
#    With both opaque keys set they translate sb_secret_... / sb_publishable_... into the
#    pre-signed ES256 JWTs (SERVICE_ROLE_KEY_ASYMMETRIC / ANON_KEY_ASYMMETRIC); without, the
#    legacy forms pass the apikey through.
# 2. WELL_KNOWN_OAUTH_PATH from JWT_ISSUER (RFC 8414, section 3.1).
# 3. Copy /home/kong/temp.yml to $KONG_DECLARATIVE_CONFIG replacing each $NAME with the
#    variable of that name; a name the environment lacks stays as written.
# 4. Delete the `- key:` lines left empty by unset opaque keys.
# 5. Start Kong.

if [ -n "$SUPABASE_SECRET_KEY" ] && [ -n "$SUPABASE_PUBLISHABLE_KEY" ]; then
    secret="'$SUPABASE_SECRET_KEY'"
    publishable="'$SUPABASE_PUBLISHABLE_KEY'"
    # A user session (any Authorization that is not a Bearer sb_ key) goes through as it is.
    user_session="(headers.authorization ~= nil and headers.authorization:sub(1, 10) ~= 'Bearer sb_' and headers.authorization)"
    LUA_AUTH_EXPR="\$($user_session"
    LUA_AUTH_EXPR="$LUA_AUTH_EXPR or (headers.apikey == $secret and 'Bearer $SERVICE_ROLE_KEY_ASYMMETRIC')"
    LUA_AUTH_EXPR="$LUA_AUTH_EXPR or (headers.apikey == $publishable and 'Bearer $ANON_KEY_ASYMMETRIC')"
    LUA_AUTH_EXPR="$LUA_AUTH_EXPR or headers.apikey)"
    # supabase-js sends the WebSocket's key as ?apikey=; Realtime reads x-api-key first.
    LUA_RT_WS_EXPR="\$((query_params.apikey == $secret and '$SERVICE_ROLE_KEY_ASYMMETRIC')"
    LUA_RT_WS_EXPR="$LUA_RT_WS_EXPR or (query_params.apikey == $publishable and '$ANON_KEY_ASYMMETRIC')"
    LUA_RT_WS_EXPR="$LUA_RT_WS_EXPR or query_params.apikey)"
    # Functions: the internal JWT without "Bearer", from the apikey header or a Bearer sb_
    # Authorization; nil otherwise (the route's post-function drops the empty header).
    LUA_FUNCTIONS_EXPR="\$((headers.apikey == $secret and '$SERVICE_ROLE_KEY_ASYMMETRIC')"
    LUA_FUNCTIONS_EXPR="$LUA_FUNCTIONS_EXPR or (headers.apikey == $publishable and '$ANON_KEY_ASYMMETRIC')"
    LUA_FUNCTIONS_EXPR="$LUA_FUNCTIONS_EXPR or (headers.authorization == 'Bearer $SUPABASE_SECRET_KEY' and '$SERVICE_ROLE_KEY_ASYMMETRIC')"
    LUA_FUNCTIONS_EXPR="$LUA_FUNCTIONS_EXPR or (headers.authorization == 'Bearer $SUPABASE_PUBLISHABLE_KEY' and '$ANON_KEY_ASYMMETRIC')"
    LUA_FUNCTIONS_EXPR="$LUA_FUNCTIONS_EXPR or nil)"
else
    LUA_AUTH_EXPR="\$((headers.authorization ~= nil and headers.authorization:sub(1, 10) ~= 'Bearer sb_' and headers.authorization) or headers.apikey)"
    LUA_RT_WS_EXPR="\$(query_params.apikey)"
    LUA_FUNCTIONS_EXPR="\$(nil)"
fi
export LUA_AUTH_EXPR LUA_RT_WS_EXPR LUA_FUNCTIONS_EXPR

WELL_KNOWN_OAUTH_PATH=/.well-known/oauth-authorization-server
if [ -n "$JWT_ISSUER" ]; then
    issuer=$JWT_ISSUER
    while [ "${issuer%/}" != "$issuer" ]; do
        issuer=${issuer%/}
    done
    case $issuer in
        http://* | https://*) ;;
        *)
            echo "ERROR: JWT_ISSUER must start with http:// or https:// (got: $JWT_ISSUER)"
            exit 1
            ;;
    esac
    after_scheme=${issuer#*://}
    case $after_scheme in
        */*) WELL_KNOWN_OAUTH_PATH="$WELL_KNOWN_OAUTH_PATH/${after_scheme#*/}" ;;
    esac
fi
export WELL_KNOWN_OAUTH_PATH

# $NAME -> ENVIRON[NAME]; unknown names are copied through unchanged.
awk '
{
    line = $0
    out = ""
    while (match(line, /\$[A-Za-z_][A-Za-z_0-9]*/)) {
        name = substr(line, RSTART + 1, RLENGTH - 1)
        if (name in ENVIRON) {
            out = out substr(line, 1, RSTART - 1) ENVIRON[name]
        } else {
            out = out substr(line, 1, RSTART + RLENGTH - 1)
        }
        line = substr(line, RSTART + RLENGTH)
    }
    print out line
}' /home/kong/temp.yml > "$KONG_DECLARATIVE_CONFIG"

sed -i '/^[[:space:]]*- key:[[:space:]]*$/d' "$KONG_DECLARATIVE_CONFIG"

exec /entrypoint.sh kong docker-start
