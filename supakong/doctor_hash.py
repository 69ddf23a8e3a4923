"""Does the running Kong hold the config of the file on the host? ``doctor``'s answer by hash.

A config can reach Kong two ways: from the file its entrypoint renders at start, and posted
to the Admin API (``POST /config``), which loads it without writing anything to disk. So
"Kong runs the file on the host" cannot be told from file times alone once configs are
posted: it is told by comparing Kong's ``configuration_hash`` (``GET /status``) with md5 of
the host's file rendered exactly as the container's entrypoint would render it.

- ``configuration_hash`` is md5 of the config string Kong loaded, posted or read from its
  file (``Kong/kong@3.9.1:kong/db/declarative/init.lua``, ``kong/init.lua``); see Kong's
  Admin API docs, "Retrieve node status" (docs.konghq.com/gateway/latest/admin-api/).
- Kong before 3.2.0 reports 32 zeros for a config loaded from its file at start or on
  ``kong reload`` ("configuration hash is incorrectly set", Kong/kong#9911, fixed in 3.2.0):
  there only a posted config has a hash to compare; a file loaded at start is judged as
  before, by the file's time against Kong's start.

Both readings happen in one ``docker exec``: the host file goes in on stdin, is rendered in
a scratch directory of the container (its env, its entrypoint), hashed and removed; then
``resty`` (the OpenResty CLI Kong's own ``kong`` command runs on; neither official image
has curl) asks the Admin API on the container's loopback. Nothing is printed of the config
or of the Admin API's answer but the hash. Gathering is :func:`read_running_config`;
deciding (pure) is :func:`judge_running_config`.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, replace

from .apply.choice import DEFAULT_ADMIN_LISTEN, admin_url
from .checks import FAIL, OK, Check
from .container import ContainerState, exec_in_container
from .engine import EngineClient
from .errors import TransportError
from .hostprofile import AWK, EVAL, HostProfile
from .secrets import mask

ZERO_HASH = "0" * 32
HASH_FIX_VERSION = (3, 2, 0)
HASH_BUG = "Kong/kong#9911, fixed in Kong 3.2.0"
WORKDIR = "/tmp/supakong-hash"
_MD5 = re.compile(r"[0-9a-f]{32}")
_RENDERED = re.compile(r"^supakong-rendered (\S+)$", re.M)
_STATUS = re.compile(r"^supakong-status (\S+) (\S*)$", re.M)
_RENDER_FAILED = re.compile(r"^supakong-render-failed (.*)$", re.M)
_VERSION = re.compile(r"(\d+)\.(\d+)(?:\.(\d+))?")

#: The host file arrives on stdin as "$1/temp.yml"; "$2" is the Lua that reads the status.
_RECEIVE = 'umask 077 && mkdir -p "$1" && cat > "$1/temp.yml" || { rm -rf "$1"; exit 100; }; '
_HASH_AND_ASK = (
    'if [ -f "$1/kong.yml" ]; then'
    ' echo "supakong-rendered $(md5sum < "$1/kong.yml" | cut -d" " -f1)"; fi; rm -rf "$1"; '
    'command -v resty >/dev/null 2>&1 || { echo "supakong-status no-resty "; exit 0; }; '
    'resty -e "$2"'
)
#: Supabase's 2.8.1 compose: ``eval "echo \"$(cat ~/temp.yml)\"" > ~/kong.yml``.
_RENDER_EVAL = 'eval "echo \\"$(cat "$1/temp.yml")\\"" > "$1/kong.yml" || echo "supakong-render-failed eval"; '
_RENDER_NONE = 'cp "$1/temp.yml" "$1/kong.yml"; '


@dataclass(frozen=True)
class RunningConfig:
    """What one look at the running Kong read: its ``configuration_hash`` and md5 of the host
    file as its entrypoint renders it; None where it could not be read, and why."""

    kong_version: str | None
    running_hash: str | None = None
    file_hash: str | None = None
    note: str = ""


def status_lua(admin: str) -> str:
    """``resty -e`` code that asks ``admin``'s ``/status`` (the Admin API's URL as seen
    inside the container) and prints ``supakong-status <HTTP code> <configuration_hash>`` (or
    ``supakong-status error <why>``); never the body."""
    url = f"{admin}/status"
    # io.stdout:write, not print: what print does differs between Lua and resty's wrapper.
    return (
        'local http, cjson = require "resty.http", require "cjson.safe"\n'
        "local c = http.new(); c:set_timeout(10000)\n"
        f'local res, err = c:request_uri("{url}")\n'
        "if not res then\n"
        '  io.stdout:write("supakong-status error ", (tostring(err):gsub("%s", "_")), "\\n")\n'
        "  os.exit(0)\n"
        "end\n"
        'local body = cjson.decode(res.body or "") or {}\n'
        'local h = type(body) == "table" and body.configuration_hash or nil\n'
        'io.stdout:write("supakong-status ", res.status, " ", type(h) == "string" and h or "", "\\n")\n'
    )


def render_script(profile: HostProfile) -> str:
    """The shell script that renders ``$1/temp.yml`` into ``$1/kong.yml`` as the container's
    entrypoint does (``eval``; the mounted kong-entrypoint.sh minus its final ``exec``;
    a copy when nothing expands), then hashes it and asks the Admin API. The render is the
    reload's (:mod:`supakong.apply.reload_script`), so a reloaded file hashes the same."""
    if profile.expansion == EVAL:
        render = _RENDER_EVAL
    elif profile.expansion == AWK and profile.entrypoint_script and profile.template_mount:
        # The script itself, reading the scratch copy instead of the mount, writing to the
        # scratch directory, and not starting Kong (both anchors must be there to be sure).
        script, mount = profile.entrypoint_script, profile.template_mount
        render = (
            f'if grep -q "{mount}" "{script}" && grep -q "^exec " "{script}"; then'
            f' sed -e "s#{mount}#$1/temp.yml#g" -e "/^exec /d" "{script}"'
            ' | KONG_DECLARATIVE_CONFIG="$1/kong.yml" sh >/dev/null 2>&1'
            ' || echo "supakong-render-failed the entrypoint script exited non-zero";'
            f' else echo "supakong-render-failed {script} no longer reads {mount} or ends in exec"; fi; '
        )
    else:
        render = _RENDER_NONE
    return _RECEIVE + render + _HASH_AND_ASK


def parse_output(code: int, output: str, version: str | None) -> RunningConfig:
    """The exec's ``output`` read into a :class:`RunningConfig` (pure)."""
    notes = []
    rendered = _RENDERED.search(output)
    failed = _RENDER_FAILED.search(output)
    file_hash = rendered.group(1) if rendered and not failed and _MD5.fullmatch(rendered.group(1)) else None
    if code == 100:
        notes.append("could not write the host file into the container")
    elif failed:
        notes.append(f"could not render the host file as the entrypoint does ({failed.group(1)})")
    elif file_hash is None:
        notes.append(f"no hash of the rendered file (exit {code})")
    running_hash = None
    status = _STATUS.search(output)
    if status is None:
        notes.append(f"no answer from resty (exit {code})")
    elif status.group(1) == "no-resty":
        notes.append("the container has no resty to ask the Admin API with")
    elif status.group(1) == "error":
        notes.append(f"the Admin API did not answer ({status.group(2).replace('_', ' ')})")
    elif status.group(1) != "200":
        notes.append(f"GET /status answered HTTP {status.group(1)}")
    elif not _MD5.fullmatch(status.group(2)):
        notes.append("GET /status carries no configuration_hash (is Kong DB-less?)")
    else:
        running_hash = status.group(2)
    return RunningConfig(version, running_hash, file_hash, "; ".join(notes))


def read_running_config(
    engine: EngineClient, kong: ContainerState, profile: HostProfile, content: bytes
) -> RunningConfig | None:
    """Read the running Kong's ``configuration_hash`` and md5 of ``content`` (the host file)
    rendered as its entrypoint does, in one exec; None when Kong is not running."""
    if not kong.running or kong.restarting:
        return None
    version = profile.kong_version
    admin = admin_url(kong.env.get("KONG_ADMIN_LISTEN", "").strip() or DEFAULT_ADMIN_LISTEN)
    if admin is None:
        return RunningConfig(version, note=f"KONG_ADMIN_LISTEN of {kong.name} turns the Admin API off")
    argv = ["sh", "-c", render_script(profile), "sh", f"{WORKDIR}-{time.time_ns()}", status_lua(admin)]
    try:
        code, output = exec_in_container(engine, kong.name, argv, stdin=content)
    except TransportError as exc:
        return RunningConfig(version, note=f"cannot exec into {kong.name}: {mask(str(exc))[:200]}")
    return parse_output(code, output, version)


def _before_hash_fix(version: str | None) -> bool:
    match = _VERSION.match(version or "")
    if match is None:
        return False
    return tuple(int(g or 0) for g in match.groups()) < HASH_FIX_VERSION


def judge_running_config(
    running: RunningConfig | None, loaded: Check, config_path: str, host: str, kong_container: str
) -> Check:
    """The doctor's "config loaded" line: by hash when both hashes were read, else
    ``loaded`` (the verdict from the file's time and the mount) with why not by hash.

    A posted config that equals the file passes whatever the file's time says; one that
    differs fails: a restart (or ``kong reload``) would load the file and drop it."""
    if running is None:
        return loaded
    if running.running_hash is None or running.file_hash is None:
        return replace(loaded, notes=(*loaded.notes, f"configuration_hash not compared: {running.note}"))
    short_running, short_file = running.running_hash[:12], running.file_hash[:12]
    if running.running_hash == running.file_hash:
        same = f"configuration_hash {short_running} = md5 of the file as the entrypoint renders it"
        if loaded.status == OK:  # the other evidence agrees: keep its words, add the hash's
            return replace(loaded, notes=(*loaded.notes, same))
        return Check(loaded.name, OK, f"Kong runs {config_path}: {same}")
    if running.running_hash == ZERO_HASH and _before_hash_fix(running.kong_version):
        why = (
            f"Kong {running.kong_version} reports configuration_hash {ZERO_HASH[:12]}… for a config loaded"
            f" from its file at start ({HASH_BUG}): nothing was posted since; judged by the file's time"
        )
        return replace(loaded, notes=(*loaded.notes, why))
    return Check(
        loaded.name,
        FAIL,
        f"Kong runs another config than {config_path}: configuration_hash {short_running} is not md5"
        f" {short_file} of the file as the entrypoint renders it (a config was posted to the Admin API"
        " and not written to the host, or the file changed after the last apply); a restart would"
        " load the file and drop what Kong runs now",
        f"to run the host's file: `docker restart {kong_container}` (Kong loads it at start; open"
        " WebSockets drop); to keep what Kong runs: put it into the template, then"
        f" `fab deploy-kong -H {host}` loads it without a restart",
    )
