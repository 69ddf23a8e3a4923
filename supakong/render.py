"""Rendering the Kong declarative config from the inventory (Jinja2, StrictUndefined)."""

from __future__ import annotations

import errno
import functools
import hashlib
import os
import re
import threading
from collections.abc import Collection
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from .envrefs import held_credentials, reference
from .errors import RenderError
from .inventory import INLINE, HostConfig
from .secrets import REQUIRED_NAMES, Secrets, mask
from .value_guard import AWK, EVAL, EntrypointRules, rules_for, secrets_in

if TYPE_CHECKING:
    import jinja2


def yaml_single_quoted(value: object) -> str:
    """Quote ``value`` as a single-quoted YAML scalar.

    Single quotes survive Supabase's 2.8-era entrypoint, which expands the file with a shell
    ``eval`` inside double quotes, where double quotes would vanish
    (``supabase/supabase@00069a4c:docker/docker-compose.yml``, the kong service).
    """
    return "'" + str(value).replace("'", "''") + "'"


#: The template variable holding the entrypoint's rules for one render (see :func:`entrypoint_rules`).
RULES_VARIABLE = "supakong_entrypoint"
#: Without rules (:func:`render_string`, an imported template): a command substitution.
_SHELL_COMMAND = re.compile(r"\$\(|`")


class _Refused(Exception):
    """A rendered value the entrypoint would run or change: why."""

    def __init__(self, reason: str, value: str) -> None:
        super().__init__(reason)
        self.reason, self.value = reason, value


def _pass_context(function: Any) -> Any:
    import jinja2

    return jinja2.pass_context(function)


def refuse_unsafe_values(context: Any, value: object) -> object:
    """Jinja2 ``finalize``: refuse a value that the host's Kong entrypoint would run as shell
    or silently change (see :mod:`supakong.value_guard`), before anything connects."""
    if not isinstance(value, str):
        return value
    rules = context.get(RULES_VARIABLE) if context is not None else None
    if isinstance(rules, EntrypointRules):
        reason = rules.refusal(value)
    else:
        reason = "it contains $( or a backtick, which a shell eval would run as a command" * bool(
            _SHELL_COMMAND.search(value)
        )
    if reason:
        raise _Refused(reason, value)
    return value


#: The credentials a Kong container is taken to hold when it was not looked at (an offline
#: render): the two keys every Supabase compose passes it.
ASSUMED_HELD = REQUIRED_NAMES


def template_secrets(host: HostConfig, secrets: Secrets, held: Collection[str] | None = None) -> dict[str, str]:
    """What ``secrets.NAME`` is in the template. ``kong_secrets: reference`` (the default):
    ``$NAME`` for each credential the Kong container holds (``held``; unknown: the two keys),
    for its entrypoint to expand, so no key is ever written into the file; a name it does not
    hold is undefined (``secrets.X is defined`` is false). ``inline``: the values."""
    if host.kong_secrets == INLINE:
        return dict(secrets.values)
    names = sorted(ASSUMED_HELD if held is None else held_credentials(held))
    return {name: reference(name) for name in names}


def template_context(
    host: HostConfig, secrets: Secrets, held: Collection[str] | None = None, router_flavor: str | None = None
) -> dict[str, Any]:
    """The variables a template sees: every inventory var, the host name, the secrets (see
    :func:`template_secrets`) and ``kong_router_flavor``: the running Kong's (``router_flavor``,
    from the look), else the inventory's, else ``expressions`` (upstream's current compose)."""
    context = dict(host.vars)
    context.update(
        inventory_hostname=host.name,
        kong_router_flavor=router_flavor or host.vars.get("kong_router_flavor") or "expressions",
        realtime_upstream_host=host.realtime_upstream_host,
        realtime_upstream_port=host.realtime_upstream_port,
        secrets=template_secrets(host, secrets, held),
    )
    return context


_COMPILING = threading.Lock()

#: The environment's options. Compiled templates depend on them (and on the filters'
#: names), so they are part of the bytecode cache's file names too.
_OPTIONS: dict[str, Any] = {
    "keep_trailing_newline": True,
    "trim_blocks": True,
    "lstrip_blocks": True,
    "autoescape": False,
}
_FILTERS = {"yaml_str": yaml_single_quoted}


@functools.lru_cache(maxsize=16)
def _environment(directory: str) -> jinja2.Environment:
    """One Jinja2 environment per template directory, shared by every host and thread, so
    a template is compiled once per run, not once per host. Jinja2 checks the file's
    mtime on each ``get_template`` and recompiles an edited template.

    Jinja2 is imported on first use, not with the module (~30 ms): tasks that render
    nothing (logs, audit, backups, verify-realtime) start without it."""
    import jinja2
    import jinja2.sandbox

    # Sandboxed: a template (anyone's who can write the checkout, and rendered as root by a
    # root timer) cannot reach Python's internals (``''.__class__.__mro__``…) to run code.
    env = jinja2.sandbox.SandboxedEnvironment(
        loader=jinja2.FileSystemLoader(directory),
        undefined=jinja2.StrictUndefined,
        finalize=_pass_context(refuse_unsafe_values),
        bytecode_cache=bytecode_cache(),
        **_OPTIONS,
    )
    env.filters.update(_FILTERS)
    return env


def bytecode_cache() -> jinja2.FileSystemBytecodeCache | None:
    """Jinja2's on-disk cache of compiled templates, so that a run loads the template's
    code (~0.5 ms) instead of compiling it (~10 ms for the Supabase template).

    In Jinja2's own per-user directory (``$TMPDIR/_jinja2-cache-UID``, mode 0700, checked
    to be the user's); None where Jinja2 finds no safe one. A cache file is keyed
    by the template's name and source (Jinja2's checksum), and its name carries a digest of
    the environment's options and filters. The cache only ever holds compiled template
    code: the values rendered (secrets among them) are never in it. A cache that cannot
    be read or written is skipped: the template is compiled as before.
    """
    import jinja2

    class _SkippableCache(jinja2.FileSystemBytecodeCache):
        def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
            try:
                super().load_bytecode(bucket)
            except OSError:
                bucket.reset()

        def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
            try:
                super().dump_bytecode(bucket)
            except OSError:
                pass

    settings = repr((sorted(_OPTIONS.items()), refuse_unsafe_values.__qualname__, sorted(_FILTERS), "sandboxed"))
    digest = hashlib.sha256(settings.encode()).hexdigest()[:12]
    try:
        return _SkippableCache(pattern=f"__supakong_{digest}_%s.cache")
    except (OSError, RuntimeError):  # no safe directory (RuntimeError is Jinja2's word for it)
        return None


def entrypoint_rules(
    host: HostConfig, secrets: Secrets, held: Collection[str] | None, expansion: str | None
) -> EntrypointRules:
    """The rules a rendered value must pass for the host's entrypoint: ``expansion`` as the
    look found it, else (before connecting) the era of the inventory's ``kong_version``, else
    the strictest (the 2.8-era shell eval). Meant: the references rendered for ``held``."""
    if expansion is None:
        major = (host.kong_version or "2").lstrip("v").split(".")[0]
        expansion = AWK if major.isdigit() and int(major) >= 3 else EVAL
    from .supabase_env import SUPABASE_ENV

    meant = () if host.kong_secrets == INLINE else template_secrets(host, secrets, held)
    known = SUPABASE_ENV.get(expansion, ())
    return rules_for(expansion, meant, set(known) | set(held or ()))


def render_kong_config(
    host: HostConfig,
    secrets: Secrets,
    template: Path | None = None,
    held: Collection[str] | None = None,
    expansion: str | None = None,
    router_flavor: str | None = None,
) -> str:
    """Render the host's Kong template; errors name the template file and line. ``held``:
    the env names of the host's Kong container (see :func:`template_secrets`); ``expansion``:
    how its entrypoint expands the file (None: not looked at, see :func:`entrypoint_rules`);
    ``router_flavor``: its Kong's router (see :func:`template_context`)."""
    import jinja2

    path = template or host.template
    env = _environment(str(path.resolve().parent))
    rules = entrypoint_rules(host, secrets, held, expansion)
    try:
        with _COMPILING:  # hosts start together: one compiles, the others use its result
            compiled = env.get_template(path.name)
        return compiled.render({**template_context(host, secrets, held, router_flavor), RULES_VARIABLE: rules})
    except jinja2.TemplateNotFound as exc:
        if exc.name != path.name:
            line = _template_line(exc.__traceback__, path)
            raise RenderError(f"{path}:{line}: included template {_one_line(str(exc.name))!r} not found") from None
        raise RenderError(_not_found(path, host)) from None
    except _Refused as exc:
        raise RenderError(_refused(path, _template_line(exc.__traceback__, path), exc, secrets, rules)) from None
    except jinja2.TemplateSyntaxError as exc:
        raise RenderError(
            f"{path}:{exc.lineno or '?'}: template syntax error: {_one_line(exc.message or '')}"
        ) from None
    except jinja2.UndefinedError as exc:
        line = _template_line(exc.__traceback__, path)
        secret = _undefined_secret(exc.message or "", host)
        if secret:
            raise RenderError(f"{path}:{line}: {secret}") from None
        raise RenderError(
            f"{path}:{line}: {_one_line(exc.message or 'undefined variable')}"
            f" (define it in the inventory for host {host.name})"
        ) from None
    except Exception as exc:  # noqa: BLE001 - any other failure of template code, e.g. {{ 1/0 }}
        line = _template_line(exc.__traceback__, path)
        raise RenderError(f"{path}:{line}: {type(exc).__name__}: {_one_line(str(exc)) or 'failed'}") from None


def _refused(path: Path, line: str, exc: _Refused, secrets: Secrets, rules: EntrypointRules) -> str:
    """The one-line refusal of a rendered value: the template line, the secrets that cannot be
    written safely (by name, never by value) and what to do."""
    era = (
        "Kong 2.8's shell eval entrypoint (supabase/supabase docker/docker-compose.yml, the kong service)"
        if rules.expansion == EVAL
        else "Supabase's kong-entrypoint.sh (supabase/supabase docker/volumes/api/)"
    )
    names = secrets_in(exc.value, dict(secrets.values), rules)
    if names:
        return (
            f"{path}:{line}: secret {', '.join(names)} cannot be written safely into kong.yml for {era}:"
            f" {exc.reason}; change the secret, or set kong_secrets: reference so the file names it as $NAME"
        )
    return f"{path}:{line}: a value cannot be written safely for {era}: {exc.reason}; fix the inventory value"


def _undefined_secret(message: str, host: HostConfig) -> str:
    """Why ``secrets.NAME`` is undefined, when it is (else empty)."""
    match = re.search(r"has no attribute '([A-Za-z_][A-Za-z0-9_]*)'", message)
    if not (match and message.startswith("'dict object'")):
        return ""
    name = match.group(1)
    if host.kong_secrets == INLINE:
        return f"secrets.{name} is not set: put {name} in the secrets file of host {host.name} or its environment"
    return (
        f"secrets.{name}: the Kong container {host.kong_container} does not hold {name} in its environment,"
        f" so the file cannot reference it; add it there, or set kong_secrets: inline for host {host.name}"
    )


def _not_found(path: Path, host: HostConfig) -> str:
    searched = host.template_searched if path == host.template and host.template_searched else (path,)
    places = ", ".join(str(p) for p in searched)
    return f"{path.name}: template not found (kong_template of host {host.name}; looked in {places})"


def render_string(source: str) -> str:
    """Render template text with the options every template is rendered with and no
    variables (what an imported template gives back: see :mod:`supakong.adopt.importer`)."""
    import jinja2
    import jinja2.sandbox

    env = jinja2.sandbox.SandboxedEnvironment(
        undefined=jinja2.StrictUndefined, finalize=_pass_context(refuse_unsafe_values), **_OPTIONS
    )
    env.filters.update(_FILTERS)
    return env.from_string(source).render()


def write_private_file(path: Path, text: str) -> None:
    """Write a rendered file (it may hold secrets) readable by us only, never through a
    symbolic link (``O_NOFOLLOW``: a link planted at ``--out`` would send the secrets to its
    target); an existing, wider file is narrowed before anything is written."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise RenderError(f"{path}: is a symbolic link; refusing to write the rendered file through it") from None
        raise RenderError(f"{path}: cannot write ({exc.strerror})") from None
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)


def sha256_text(text: str) -> str:
    """The sha256 hex digest of ``text`` encoded as UTF-8 (what lands on the host)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _one_line(message: str) -> str:
    """An error message masked, on one line, at most 300 characters (masked before cut)."""
    return " ".join(mask(message).split())[:300]


def _template_line(tb: TracebackType | None, path: Path) -> str:
    """The template line an exception came from (Jinja2 rewrites frames to template lines)."""
    line = "?"
    while tb is not None:
        if Path(tb.tb_frame.f_code.co_filename).name == path.name:
            line = str(tb.tb_lineno)
        tb = tb.tb_next
    return line
