"""Rendering a candidate kong.yml inside the Kong container exactly as its entrypoint does.

Kong DB-less reads a file its entrypoint wrote from the mounted template at start. Three
steps need that same file from a candidate: the preflight (``kong config parse`` of it), the
reload (``POST /config`` of it) and doctor's hash check (md5 of the host file as Kong would
load it). They share this one shell fragment, so a reloaded file hashes as doctor expects and
parses as the preflight judged it. Pure: it returns shell text.

The fragment renders ``$wd/temp.yml`` into ``$wd/kong.yml``:

- ``eval`` (Supabase's 2.8.1 compose): ``eval "echo \\"$(cat …)\\""`` with the container's
  environment;
- ``awk`` (today's ``kong-entrypoint.sh``): *the host's own script*, copied with the mounted
  template path (``$mount``) pointed at the candidate and its final ``exec … kong
  docker-start`` line removed, run by ``$interp`` with ``KONG_DECLARATIVE_CONFIG`` pointing
  into ``$wd``; it runs only when both anchors are there, else it could start a second Kong;
- anything else: a copy (nothing expands the file).

It expects the shell variables ``wd``, ``entry`` (the script), ``mount`` and ``interp`` and
leaves ``render_kind`` empty on success, ``anchor`` when the script lacks an anchor, or
``failed`` when the render failed, with ``render_error`` saying why. Each caller maps those
to its own exit codes.
"""

from __future__ import annotations

from .hostprofile import AWK, EVAL

#: What the eval entrypoint does (Supabase's 2.8.1 docker-compose.yml, the kong service).
_EVAL = (
    'render_kind= render_error=; eval "echo \\"$(cat "$wd/temp.yml")\\"" > "$wd/kong.yml"'
    ' || { render_kind=failed render_error="the eval render failed"; }\n'
)
#: The host's kong-entrypoint.sh on the candidate, without starting Kong.
_AWK = r"""render_kind= render_error= start='^[[:space:]]*exec .*kong docker-start'
if ! grep -qF "$mount" "$entry" || ! grep -q "$start" "$entry"; then
  render_kind=anchor render_error="$entry no longer reads $mount or ends in exec kong docker-start: cannot re-run it"
elif ! sed -e "s#$mount#$wd/temp.yml#g" -e "\#$start#d" "$entry" > "$wd/entrypoint.sh"; then
  render_kind=failed render_error="cannot copy $entry"
elif ! KONG_DECLARATIVE_CONFIG="$wd/kong.yml" "$interp" "$wd/entrypoint.sh" < /dev/null > "$wd/render.out" 2>&1; then
  render_kind=failed render_error="$entry exited non-zero: $(tail -n 5 "$wd/render.out" | tr '\n' ' ')"
fi
"""
_COPY = (
    'render_kind= render_error=; cp "$wd/temp.yml" "$wd/kong.yml" || render_kind=failed render_error="cannot copy"\n'
)


def render_fragment(expansion: str | None) -> str:
    """The shell that renders ``$wd/temp.yml`` into ``$wd/kong.yml`` as an entrypoint of
    ``expansion`` (the host profile's) does; see the module's docstring for its contract."""
    if expansion == EVAL:
        return _EVAL
    if expansion == AWK:
        return _AWK
    return _COPY
