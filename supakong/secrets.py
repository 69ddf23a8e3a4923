"""Secrets: loading them, and the one function that masks them in every output.

Every printer, report, diff, log line and exception message in supakong goes through
:func:`mask`. Known secret values are registered when they are loaded (from the environment
or the env file named in the inventory); on top of that, anything shaped like a JWT or an
``apikey=`` / ``x-api-key`` value is masked, because Kong's access log and URLs carry keys
we may never have been told about (an old key after a rotation, say).
"""

from __future__ import annotations

import bisect
import json
import os
import re
import threading
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import InventoryError

if TYPE_CHECKING:
    from .inventory import HostConfig

MASK = "***"
#: Env names that hold secrets; both the template and Supabase's containers use them.
SECRET_NAMES = (
    "SUPABASE_ANON_KEY",
    "SUPABASE_SERVICE_KEY",
    "JWT_SECRET",
    "DASHBOARD_PASSWORD",
    "POSTGRES_PASSWORD",
    "SUPABASE_PUBLISHABLE_KEY",
    "SUPABASE_SECRET_KEY",
    "ANON_KEY_ASYMMETRIC",
    "SERVICE_ROLE_KEY_ASYMMETRIC",
)
REQUIRED_NAMES = ("SUPABASE_ANON_KEY", "SUPABASE_SERVICE_KEY")
#: Credentials Supabase's compose hands the Kong container for its entrypoint to expand into
#: kong.yml (``supabase/supabase@1f37f2a9:docker/docker-compose.kong.yml``).
KONG_CREDENTIAL_NAMES = (
    "SUPABASE_ANON_KEY",
    "SUPABASE_SERVICE_KEY",
    "SUPABASE_PUBLISHABLE_KEY",
    "SUPABASE_SECRET_KEY",
    "ANON_KEY_ASYMMETRIC",
    "SERVICE_ROLE_KEY_ASYMMETRIC",
    "DASHBOARD_USERNAME",
    "DASHBOARD_PASSWORD",
)
#: Other env names that hold a secret by their look (never Kong's own KONG_* settings, whose
#: KEY/CERT names hold file paths).
_SECRET_NAME = re.compile(r"(?!KONG_)[A-Z0-9_]*(KEY|SECRET|PASSWORD|PASSWD|TOKEN)[A-Z0-9_]*")
_MIN_SECRET_LEN = 6  # shorter values are masked as whole words only
#: Env names whose values are not secrets (user names, hosts, ports): a secrets file given as
#: Supabase's whole .env holds them, and masking "supabase" or "5432" would garble messages.
_NOT_SECRET = re.compile(r"(?!.*(?:KEY|SECRET|PASSWORD|PASSWD|TOKEN)).*(?:_USER|_USERNAME|_HOST|_PORT|_URL|_DB)")

_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*")
#: Supabase's opaque API keys (sb_publishable_<22>_<8>, sb_secret_<22>_<8>; see
#: https://supabase.com/docs/guides/api/api-keys): masked wherever they appear, known or
#: not; the prefix stays, it says which kind of key was there.
_SB_KEY = re.compile(r"\b(sb_(?:publishable|secret)_)[A-Za-z0-9_-]{6,}")
_KEY_PARAM = re.compile(r"(?i)((?:apikey|api_key|access_token|token)=)[^&\s\"']+")
# Header-style "apikey: value": only key-shaped values (16+ characters), so prose such as
# "invalid apikey: key-auth fallback" stays readable.
_KEY_HEADER = re.compile(r"(?i)\b((?:apikey|x-api-key|authorization)\s*:\s*(?:bearer\s+)?)[A-Za-z0-9._~+/=-]{16,}")

#: A value under a field named like a credential (``password: x``, ``"secret": "x"``,
#: ``SUPABASE_ANON_KEY=x``, ``+    key: x`` in a diff): masked whether or not it was ever
#: registered (an old file's short password), unless it is a ``$NAME`` reference.
_FIELD_NAME = r"(?:password|passwd|secret|key|[A-Za-z0-9_]*_(?:key|secret|password))"
_NOT_A_REFERENCE = r"""(?!["']?\$\{?[A-Za-z_][A-Za-z0-9_]*\}?["']?(?:[\s,}\#]|$))"""
_FIELD_VALUE = r"""("[^"\n]*"|'[^'\n]*'|[^\s,}\n]+)"""
_FIELD = re.compile(
    "|".join(
        (
            # a YAML key at the start of a line (a diff's +/- first): `    password: x`, `- key: x`
            rf"(?m:^(?P<yaml>[+ -]?[ \t]*(?:-[ \t]+)?{_FIELD_NAME}[ \t]*:[ \t]*)"
            rf"{_NOT_A_REFERENCE}(?P<v1>{_FIELD_VALUE}))",
            # a JSON member anywhere: `"secret": "x"`
            rf"(?P<json>\"{_FIELD_NAME}\"[ \t]*:[ \t]*){_NOT_A_REFERENCE}(?P<v2>\"[^\"\n]*\")",
            # NAME=value (an env file, a query): `SUPABASE_ANON_KEY=x`
            rf"(?<![A-Za-z0-9_.\[\]/-])(?P<env>{_FIELD_NAME}=){_NOT_A_REFERENCE}(?P<v3>{_FIELD_VALUE})",
        )
    ),
    re.IGNORECASE,
)

_lock = threading.Lock()
#: Registered values under :data:`_MIN_SECRET_LEN`: masked as whole words only.
_short: set[str] = set()
_short_pattern: tuple[re.Pattern[str] | None, int] = (None, -1)
_known: set[str] = set()
_generation = 0  # bumped by every registration
#: _known longest first (a replacement must not leave the tail of a longer secret), and the
#: negated lengths for bisect; rebuilt when (_generation, len(_known)) changes (the size too:
#: the registry can be restored in place, as the fuzz tests do, without a registration).
_order: tuple[tuple[str, ...], list[int], tuple[int, int]] = ((), [], (-1, -1))


def is_secret_name(name: str) -> bool:
    """True for an env name whose value is a credential (``SUPABASE_ANON_KEY``,
    ``DASHBOARD_*``, ``JWT_SECRET``, anything named like a key, secret, password or token)."""
    return name in KONG_CREDENTIAL_NAMES or bool(_SECRET_NAME.fullmatch(name))


def register_env_secrets(env: Mapping[str, str]) -> None:
    """Register the values of a container's credential variables (see :func:`is_secret_name`)
    so that :func:`mask` hides them wherever they appear (diffs, logs, messages)."""
    for name, value in env.items():
        if is_secret_name(name) and name != "DASHBOARD_USERNAME":
            register_secret(value)


def encodings(value: str) -> set[str]:
    """``value`` as it may appear in output: itself, percent-encoded (a URL's query, as
    urllib and browsers write it) and JSON-escaped (a report, the audit log)."""
    forms = {value, json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1]}
    for safe in ("", "/"):
        forms |= {urllib.parse.quote(value, safe=safe), urllib.parse.quote_plus(value, safe=safe)}
    return forms


def register_secret(value: str) -> None:
    """Remember ``value`` (and its encodings) so that :func:`mask` hides it from now on; a
    value shorter than :data:`_MIN_SECRET_LEN` wherever it is a whole word (inside other
    words it would mask ordinary text)."""
    global _generation
    if not value or value == MASK:
        return
    with _lock:
        if len(value) >= _MIN_SECRET_LEN:
            _known.update(encodings(value))
        else:
            _short.add(value)
        _generation += 1


def _short_words() -> re.Pattern[str] | None:
    """The short registered values as whole words (cached per registration)."""
    global _short_pattern
    with _lock:
        if _short_pattern[1] != _generation:
            words = "|".join(re.escape(v) for v in sorted(_short, key=len, reverse=True))
            pattern = re.compile(rf"(?<![A-Za-z0-9_])(?:{words})(?![A-Za-z0-9_])") if words else None
            _short_pattern = (pattern, _generation)
        return _short_pattern[0]


def _mask_field(match: re.Match[str]) -> str:
    name = match.group("yaml") or match.group("json") or match.group("env")
    value = match.group("v1") or match.group("v2") or match.group("v3")
    quote = value[0] if value[0] in "'\"" and len(value) > 1 and value[-1] == value[0] else ""
    return f"{name}{quote}{MASK}{quote}"


def _longest_first() -> tuple[tuple[str, ...], list[int]]:
    """The known values longest first, and their negated lengths (cached)."""
    global _order
    with _lock:
        key = (_generation, len(_known))
        if _order[2] != key:
            ordered = tuple(sorted(_known, key=len, reverse=True))
            _order = (ordered, [-len(v) for v in ordered], key)
        return _order[0], _order[1]


def mask(text: str) -> str:
    """Return ``text`` with every known secret, JWT and key parameter replaced by ``***``.

    Called for every line supakong prints and every string it reports, with the secrets of
    every host of the run registered: values longer than ``text`` are skipped without a
    look (bisect on the lengths), so a short line costs a few comparisons, not one per
    secret of the fleet.
    """
    if not text:
        return text
    known, neg_lengths = _longest_first()
    replaced = True
    while replaced:  # until none is left: a replacement can join the halves of another one
        replaced = False
        for value in known[bisect.bisect_left(neg_lengths, -len(text)) :]:
            if value in text:
                text, replaced = text.replace(value, MASK), True
    short = _short_words()
    if short is not None:
        text = short.sub(MASK, text)
    text = _JWT.sub(MASK, text)
    text = _SB_KEY.sub(lambda m: m.group(1) + MASK, text)
    text = _KEY_PARAM.sub(lambda m: m.group(1) + MASK, text)
    text = _KEY_HEADER.sub(lambda m: m.group(1) + MASK, text)
    return _FIELD.sub(_mask_field, text)


@dataclass(frozen=True)
class Secrets:
    """The secret values a host needs. ``repr`` never shows them."""

    values: Mapping[str, str] = field(repr=False)
    source: str = "environment"

    @property
    def anon_key(self) -> str:
        """The anon (public) API key, a JWT signed with the project's JWT secret."""
        return self.values["SUPABASE_ANON_KEY"]

    @property
    def service_key(self) -> str:
        """The service_role API key."""
        return self.values["SUPABASE_SERVICE_KEY"]

    def get(self, name: str, default: str = "") -> str:
        """Return one secret by env name, or ``default``."""
        return self.values.get(name, default)


def parse_env_file(text: str, source: str) -> dict[str, str]:
    """Parse a dotenv-style file (``KEY=value``, ``export``, quotes, ``#`` comments)."""
    values: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        name, sep, value = line.partition("=")
        name = name.strip()
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise InventoryError(f"{source}:{number}: expected NAME=value")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values[name] = value
    return values


def load_secrets(
    env_file: Path | None, environ: Mapping[str, str] | None = None, required: Sequence[str] = REQUIRED_NAMES
) -> Secrets:
    """Load secrets from ``env_file`` (if given), overridden by the process environment.

    A missing ``env_file`` is fine when the environment holds every ``required`` secret (CI,
    a secret manager exporting them).

    Raises :class:`InventoryError` naming the file and the missing variable.
    """
    environ = os.environ if environ is None else environ
    values: dict[str, str] = {}
    source = "environment"
    from_environ = all(environ.get(name) for name in required)
    if env_file is not None and not (from_environ and not env_file.exists()):
        if not env_file.is_file():
            raise InventoryError(
                f"{env_file}: secrets file not found (named by secrets_env_file in the inventory);"
                " create it with SUPABASE_ANON_KEY=... and SUPABASE_SERVICE_KEY=..."
            )
        values.update(parse_env_file(env_file.read_text(encoding="utf-8"), str(env_file)))
        source = str(env_file)
    for name in (*SECRET_NAMES, "DASHBOARD_USERNAME"):
        if environ.get(name):
            values[name] = environ[name]
    for name in required:
        if not values.get(name):
            raise InventoryError(f"{source}: {name} is not set (needed to render the Kong config)")
    for name, value in values.items():  # every value of a secrets file, short ones too
        if not _NOT_SECRET.fullmatch(name):
            register_secret(value)
    return Secrets(values=values, source=source)


def load_host_secrets(host: HostConfig, environ: Mapping[str, str] | None = None) -> Secrets:
    """The secrets of ``host``: its ``secrets_env_file`` and the environment. The keys are
    required only with ``kong_secrets: inline`` (written into the file); by default the file
    references them and the Kong container holds them, so none is needed here."""
    required = REQUIRED_NAMES if host.kong_secrets == "inline" else ()
    return load_secrets(host.secrets_env_file, environ, required=required)
