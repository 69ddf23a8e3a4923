"""The reload as one ``docker exec`` (pure: the argv, and what its answer means).

The new template goes in on standard input (it holds the keys, so never on a command line).
Inside the container, in a private directory under /tmp:

1. render it exactly as the container's entrypoint does at start: Supabase's 2.8.1 compose
   ``eval "echo \\"$(cat …)\\""``; the 2026 ``kong-entrypoint.sh`` re-run with the template
   path pointed at our copy and its final ``exec`` removed (both anchors checked first);
2. ``kong config parse`` the result (Kong's own verdict, as at start), unless the deploy's
   preflight just parsed the same candidate: ``POST /config`` validates it again anyway;
3. ``POST /config?check_hash=1`` with ``Content-Type: text/yaml`` to the Admin API, using
   ``resty`` (OpenResty's CLI, in both official images; they have no curl) with Kong's
   ``lua-resty-http``; 429 is retried after ``Retry-After``;
4. confirm ``GET /status``'s ``configuration_hash`` equals md5 of the posted bytes;
5. copy the rendered file over ``$KONG_DECLARATIVE_CONFIG`` (what ``kong reload`` and a
   worker respawn re-read), then remove the directory whatever the outcome.

Never printed: the 201 body (Kong returns every credential in it). Exit codes: 0 applied
(201) or unchanged (304); 2 Kong refuses (parse or 400); 3 Admin API unreachable; 4 any
other HTTP answer (429 after retries, 5xx); 5 hash mismatch; 6 no ``resty``; 7 the render
failed; 8 the container's file could not be updated; 100 the template could not be written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..hostprofile import AWK, EVAL

WORKDIR = "/tmp/supakong-reload"
MARK = "supakong-reload:"
APPLIED, REFUSED, FALLBACK = "applied", "refused", "fallback"

LUA_POST = r"""
local http, cjson = require "resty.http", require "cjson.safe"
local admin, settle = os.getenv("SUPAKONG_ADMIN"), tonumber(os.getenv("SUPAKONG_SETTLE") or "0") or 0
local f = assert(io.open(os.getenv("SUPAKONG_CONFIG"), "rb")); local body = f:read("*a"); f:close()
local want = ngx.md5(body)
local res, err
for _ = 1, 3 do
  local c = http.new(); c:set_timeout(70000)  -- 2.8.1 answers once every worker flipped (<= 60 s)
  res, err = c:request_uri(admin .. "/config?check_hash=1",
    { method = "POST", body = body, headers = { ["Content-Type"] = "text/yaml" } })
  if not res or res.status ~= 429 then break end
  ngx.sleep(math.min(tonumber(res.headers["Retry-After"]) or 1, 10))
end
if not res then
  io.stdout:write("supakong-reload: POST ", admin, "/config failed: ", tostring(err), "\n"); os.exit(3)
end
if res.status ~= 201 and res.status ~= 304 then
  local j = cjson.decode(res.body or "") or {}
  io.stdout:write("supakong-reload: POST /config answered HTTP ", res.status, ": ", tostring(j.message), "\n")
  os.exit(res.status == 400 and 2 or 4)
end
local s = http.new():request_uri(admin .. "/status")
local h = s and (cjson.decode(s.body or "") or {}).configuration_hash
io.stdout:write("supakong-reload: HTTP ", res.status, " configuration_hash=", tostring(h), " md5=", want, "\n")
if h ~= want then os.exit(5) end
if res.status == 201 and settle > 0 then ngx.sleep(settle) end
os.exit(0)
"""

_SCRIPT = r"""
wd=$1 mode=$2 entry=$3 mount=$4
umask 077 && mkdir -p "$wd" && cd "$wd" && cat > temp.yml || { rm -rf "$wd"; exit 100; }
finish() { cd /; rm -rf "$wd"; exit "$1"; }
say() { echo "supakong-reload: $*"; }
case $mode in
eval) eval "echo \"$(cat temp.yml)\"" > kong.yml || { say "the eval render failed"; finish 7; } ;;
awk)
  grep -qF "$mount" "$entry" && grep -q '^exec ' "$entry" || {
    say "$entry has no $mount or no final exec: cannot re-run it"; finish 7; }
  sed -e "s#$mount#$wd/temp.yml#g" -e '/^exec /d' "$entry" \
    | KONG_DECLARATIVE_CONFIG="$wd/kong.yml" sh >render.out 2>&1 || {
    say "$entry failed:"; tail -n 5 render.out; finish 7; } ;;
*) cp temp.yml kong.yml ;;
esac
if [ "$8" = parse ]; then
  kong config parse kong.yml >parse.out 2>&1; code=$?
  if [ $code -eq 127 ]; then say "no kong CLI"; finish 6; fi
  if [ $code -ne 0 ]; then say "kong config parse refused the rendered file:"; cat parse.out; finish 2; fi
fi
command -v resty >/dev/null 2>&1 || { say "no resty in the image"; finish 6; }
SUPAKONG_CONFIG="$wd/kong.yml" SUPAKONG_ADMIN=$5 SUPAKONG_SETTLE=$6 resty -e "$7"; code=$?
if [ $code -eq 0 ] && [ -n "$KONG_DECLARATIVE_CONFIG" ]; then
  cat kong.yml > "$KONG_DECLARATIVE_CONFIG" || { say "cannot update $KONG_DECLARATIVE_CONFIG"; finish 8; }
fi
finish $code
"""

_WHY = {
    3: "the Admin API is unreachable",
    4: "the Admin API answered with an error",
    5: "Kong's configuration_hash does not match what was posted",
    6: "the image has no usable client",
    7: "the candidate could not be rendered as the entrypoint does",
    8: "the container's declarative file could not be updated",
    100: "the template could not be written into the container",
}


@dataclass(frozen=True)
class ReloadOutcome:
    """What the reload did: :data:`APPLIED` (``status`` 201 or 304), :data:`REFUSED` (Kong
    refuses the config; nothing changed) or :data:`FALLBACK` (restart instead), with why."""

    result: str
    detail: str
    status: int = 0  # the HTTP status of POST /config when it answered 201/304

    @property
    def unchanged(self) -> bool:
        return self.status == 304


def reload_argv(
    workdir: str, expansion: str, entrypoint: str, mount: str, admin: str, settle: float, parse: bool = True
) -> list[str]:
    """The exec's argv (the template goes on its standard input); ``parse``: run ``kong
    config parse`` before posting (off when the preflight already parsed this candidate)."""
    mode = "eval" if expansion == EVAL else "awk" if expansion == AWK else "none"
    step = "parse" if parse else "no-parse"
    return ["sh", "-c", _SCRIPT, "sh", workdir, mode, entrypoint, mount, admin, f"{settle:g}", LUA_POST, step]


def judge_reload(code: int, output: str) -> ReloadOutcome:
    """Read the exec's exit code and its ``supakong-reload:`` lines (already masked)."""
    said = [line.split(MARK, 1)[1].strip() for line in output.splitlines() if MARK in line]
    rest = [line.strip() for line in output.splitlines() if line.strip() and MARK not in line]
    detail = " | ".join(said + rest[:6])[:600]
    if code == 0:
        match = re.search(r"HTTP (\d{3})", output)
        return ReloadOutcome(APPLIED, detail, int(match.group(1)) if match else 0)
    if code == 2:
        return ReloadOutcome(REFUSED, detail)
    why = _WHY.get(code, f"the reload exec exited {code}")
    return ReloadOutcome(FALLBACK, f"{why}: {detail}" if detail else why)
