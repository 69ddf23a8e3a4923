"""Preflight on the host: Kong itself parses the new file before anything is replaced.

The offline validator knows Kong's schema from its source; the running Kong knows it for
sure (its exact version, edition and ``KONG_PLUGINS``). Before the file is replaced, the new
content is sent into the running Kong container on the standard input of one ``docker
exec`` and checked with ``kong config parse``, after the same ``$VAR`` expansion the Supabase
entrypoint applies (a shell ``eval`` with the container's own environment), so what Kong
parses here is what it would load at start. The file never appears in a command line or
the exec's recorded arguments (it holds the keys), and it is removed inside the container
whatever the outcome.

A host whose Kong is started by an entrypoint script (today's Supabase: ``/bin/sh
/home/kong/kong-entrypoint.sh``, which awk-expands the file, computes the ``$LUA_*_EXPR``
translations and ``$WELL_KNOWN_OAUTH_PATH`` and deletes empty ``- key:`` lines) gets that very
script, run inside the container on the candidate: a copy of it reads the candidate instead of
the mounted file, writes into the work directory, and ends in ``kong config parse`` instead of
starting Kong. No Python imitation of the script is involved.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from .container import ContainerState, exec_in_container
from .engine import EngineClient
from .errors import TransportError, ValidationError
from .hostprofile import AWK, DEFAULT_TEMPLATE_MOUNT, EVAL, build_profile
from .secrets import mask

WORKDIR = "/tmp/supakong-preflight"
#: Both scripts take the new file on stdin; a failure to write it exits 100.
_RECEIVE = 'umask 077 && mkdir -p "$1" && cd "$1" && cat > temp.yml || { rm -rf "$1"; exit 100; }; '
# The Supabase compose entrypoint expands the mounted file with `eval "echo \"$(cat …)\""`.
_EXPAND_AND_PARSE = (
    _RECEIVE + 'eval "echo \\"$(cat temp.yml)\\"" > kong.yml && kong config parse kong.yml; '
    'code=$?; rm -rf "$1"; exit $code'
)
_PARSE_ONLY = _RECEIVE + 'kong config parse temp.yml; code=$?; rm -rf "$1"; exit $code'
# The host's entrypoint script ($2, run by the interpreter $4) on the candidate: $3 (the file
# the script reads) becomes the candidate, its final `exec … kong docker-start` becomes
# `exec kong config parse` of the file it wrote. Exits 101 when the script does not read $3
# or does not end in starting Kong: then running it could start a second Kong.
_ENTRYPOINT_AND_PARSE = (
    _RECEIVE
    + 'sed -e "s#$3#$1/temp.yml#g"'
    + ' -e "s#^\\([[:space:]]*\\)exec .*kong docker-start.*'
    + '#\\1exec kong config parse \\"\\$KONG_DECLARATIVE_CONFIG\\"#"'
    + ' "$2" > entrypoint.sh || { rm -rf "$1"; exit 100; }; '
    + 'grep -q "kong config parse" entrypoint.sh && grep -q "$1/temp.yml" entrypoint.sh'
    + ' || { rm -rf "$1"; exit 101; }; '
    + 'KONG_DECLARATIVE_CONFIG="$1/kong.yml" "$4" entrypoint.sh; code=$?; rm -rf "$1"; exit $code'
)


#: Kong parsed the file.
OK = "ok"
#: Kong is not running: nothing to parse in; it parses the file itself when it starts.
NOT_RUNNING = "not_running"
#: Kong runs but could not give its verdict (no exec, no ``kong`` CLI, no room for the file).
NO_VERDICT = "no_verdict"
#: Exit codes that are not ``kong config parse``'s verdict: the exec could not run (126, the
#: engine's "cannot exec in a stopped container") or was killed (SIGKILL, SIGTERM).
_NOT_A_VERDICT = (126, 137, 143)
_CONTAINER_GONE = re.compile(r"cannot exec in a stopped container|is not running|is restarting")


@dataclass(frozen=True)
class PreflightResult:
    """What the preflight did: :data:`OK`, :data:`NOT_RUNNING` or :data:`NO_VERDICT` (with why);
    Kong's refusal is a :class:`ValidationError` instead."""

    status: str
    detail: str


def judge(result: PreflightResult, host: str) -> str:
    """The deploy's line for a preflight that gave ``result``; :class:`ValidationError` when
    it gave no verdict on a running Kong: like Ansible's ``validate=``, a check that cannot
    run refuses the change (``--skip-preflight`` deploys on the offline verdict alone)."""
    if result.status == OK:
        return f"preflight: {result.detail}"
    if result.status == NOT_RUNNING:
        return f"! preflight skipped: {result.detail}; the offline validator passed the file, Kong parses it at start"
    raise ValidationError(
        f"{host}: Kong could not check the new file ({result.detail}); nothing was changed."
        " Fix that, or deploy on the offline validator's verdict alone with --skip-preflight"
    )


def preflight_parse(
    engine: EngineClient, kong: ContainerState, content: bytes, expansion: str | None = None
) -> PreflightResult:
    """Run ``kong config parse`` on ``content`` inside the running Kong container (one exec,
    the file on its standard input), after the entrypoint's ``eval`` expansion when
    ``expansion`` (the host profile's, see :mod:`supakong.hostprofile`; None: read from
    ``kong``) says the entrypoint applies one.

    Raises :class:`ValidationError` when Kong refuses the file; returns :data:`NOT_RUNNING`
    when Kong is not running (nothing to exec into), :data:`NO_VERDICT` when Kong runs but
    the check could not run in it.
    """
    if not (kong.running and not kong.restarting):
        return PreflightResult(NOT_RUNNING, f"{kong.name} is {kong.status}: cannot run kong config parse in it")
    workdir = f"{WORKDIR}-{time.time_ns()}"
    if expansion is None:
        expansion = build_profile(kong).expansion
    argv = entrypoint_argv(kong, workdir) if expansion == AWK else None
    if argv is None:
        if expansion == AWK:
            return PreflightResult(NO_VERDICT, f"{kong.name}'s entrypoint script is not known (no mounted .sh)")
        argv = ["sh", "-c", _EXPAND_AND_PARSE if expansion == EVAL else _PARSE_ONLY, "sh", workdir]
    try:
        code, output = exec_in_container(engine, kong.name, argv, stdin=content)
    except TransportError as exc:
        return PreflightResult(NO_VERDICT, f"cannot exec into {kong.name}: {mask(str(exc))[:200]}")
    if code == 0 and "parse successful" in output:
        return PreflightResult(OK, "kong config parse: parse successful")
    if code == 100:
        said = " | ".join(line.strip() for line in mask(output).splitlines() if line.strip())
        return PreflightResult(NO_VERDICT, f"cannot write the file into {kong.name}: {said[:200]}")
    if code == 101:
        return PreflightResult(
            NO_VERDICT,
            f"{kong.name}'s entrypoint script does not read the mounted file or end in `exec … kong docker-start`",
        )
    if code == 127:
        return PreflightResult(NO_VERDICT, f"no kong CLI in {kong.name}")
    if code in _NOT_A_VERDICT or _CONTAINER_GONE.search(output):
        # Not Kong's refusal (that exits 1 with its reasons): the engine could not run the parse
        # or it was killed, as when a crash-looping Kong (one refusing its file) stops meanwhile:
        # a Kong that is not running, which parses the file itself when it starts.
        return PreflightResult(
            NOT_RUNNING,
            f"kong config parse could not finish in {kong.name} (exit {code}): it stopped or is crash-looping",
        )
    lines = [line.strip() for line in mask(output).splitlines() if line.strip()]
    raise ValidationError(
        f"Kong in {kong.name} refuses the new file (kong config parse exited {code}): "
        f"{' | '.join(lines[:6])[:600]}; nothing was changed"
    )


def entrypoint_argv(kong: ContainerState, workdir: str) -> list[str] | None:
    """The exec that runs ``kong``'s own entrypoint script on the candidate (None: no script)."""
    profile = build_profile(kong)
    if profile.entrypoint_script is None:
        return None
    shells = [part for part in kong.command if part.rsplit("/", 1)[-1] in ("sh", "bash", "ash", "dash")]
    interpreter = shells[0] if shells else "sh"
    mount = profile.template_mount or DEFAULT_TEMPLATE_MOUNT
    return ["sh", "-c", _ENTRYPOINT_AND_PARSE, "sh", workdir, profile.entrypoint_script, mount, interpreter]
