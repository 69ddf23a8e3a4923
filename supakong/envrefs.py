"""``$NAME`` references in the file Kong's entrypoint expands, instead of keys in clear.

Supabase ships kong.yml with ``key: $SUPABASE_ANON_KEY`` and its Kong entrypoint replaces
each ``$NAME`` by the container's environment when the container starts: the 2.8-era
compose with a shell ``eval`` (``supabase/supabase@00069a4c:docker/docker-compose.yml``),
the 2026 one with awk over ``ENVIRON`` (``@1f37f2a9:docker/volumes/api/kong-entrypoint.sh``).
A file written that way holds no key, nor do its backups and diffs.

Pure: which names a text references, whether the host's Kong can expand them (checked
before anything is written), and, for ``supakong init``, the secret values of an imported
file turned back into references.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .errors import ValidationError
from .hostprofile import KONG, NO_EXPANSION, HostProfile
from .secrets import KONG_CREDENTIAL_NAMES, is_secret_name, register_secret

#: ``$NAME`` / ``${NAME}`` with an upper-case name (environment variables), not escaped.
_REFERENCE = re.compile(r"(?<!\\)\$(?:\{([A-Z_][A-Z0-9_]*)\}|([A-Z_][A-Z0-9_]*))")
#: Secret values shorter than this are replaced only where they are a whole YAML scalar.
_SUBSTRING_MIN = 16
_QUOTES = "'\""
#: The fields a short credential may be the value of (basic-auth, key-auth and the like).
_CREDENTIAL_KEYS = "(?:username|password|key|secret|token)"
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*")
_OPAQUE_KEY = re.compile(r"sb_(?:publishable|secret)_[A-Za-z0-9_-]{16,}")


def reference(name: str) -> str:
    """How the file names an environment variable (Supabase's own spelling)."""
    return f"${name}"


def referenced_names(text: str) -> list[str]:
    """The environment variables ``text`` references, in order of first use."""
    return list(dict.fromkeys(m.group(1) or m.group(2) for m in _REFERENCE.finditer(text)))


def referenced_in_values(text: str) -> list[str]:
    """The names referenced in the YAML values of ``text`` (a ``$NAME`` in a comment expands
    harmlessly); all of ``text`` when it is not YAML."""
    from .kong.yaml_source import parse_source  # the validator's package: only when a file is checked

    parsed = parse_source(text)
    if parsed.failed:
        return referenced_names(text)
    return list(dict.fromkeys(n for span in parsed.spans for n in referenced_names(text[span.start : span.end])))


def check_references(text: str, profile: HostProfile, *, source: str, host: str) -> None:
    """Refuse a file whose ``$NAME`` the host's Kong cannot expand (nothing is written yet).

    With an expanding entrypoint every name referenced in a value must be in Kong's
    environment (unset, eval would write an empty key and awk the literal ``$NAME``); a Kong
    that reads the mounted file as is would load a credential reference literally."""
    if profile.gateway != KONG:
        return  # no Kong to ask: the deploy stops later with the container's own error
    names = referenced_in_values(text)
    container = profile.kong_container
    if profile.expansion == NO_EXPANSION:
        literal = next((n for n in names if n in KONG_CREDENTIAL_NAMES or n in profile.secret_env), None)
        if literal is not None:
            raise ValidationError(
                f"{source}: ${literal}: {container} loads {profile.template_mount} as is (its entrypoint expands"
                f" no $NAME), so Kong would get the text ${literal} as the value; set kong_secrets: inline for"
                f" host {host} and put {literal} in its secrets file; nothing was changed on {host}"
            )
        return
    missing = profile.missing_reference(names)
    if missing is not None:
        raise ValidationError(
            f"{source}: ${missing} is not in the environment of {container}, so its entrypoint cannot expand it;"
            f" add {missing} to that container's environment (compose `environment:`), or set"
            f" kong_secrets: inline for host {host}; nothing was changed on {host}"
        )


@dataclass(frozen=True)
class Imported:
    """A file with its secret values turned into references."""

    text: str
    replaced: tuple[str, ...]  # the names now referenced instead of their values
    left_in_clear: tuple[str, ...]  # where credentials no env variable holds stay in clear


def references_for_secrets(text: str, env: Mapping[str, str]) -> Imported:
    """``text`` with every value of a credential variable of ``env`` (see
    :func:`~supakong.secrets.is_secret_name`) replaced by its ``$NAME``; the longest values
    first, and values shorter than 16 characters only as the whole value of a credential
    field (``username``, ``password``, ``key``…: a user name ``supabase`` must not rewrite a
    service of that name). Also lists the lines that
    still hold something shaped like a key (a JWT, an ``sb_`` key) that no variable holds."""
    secrets = sorted(
        ((name, value) for name, value in env.items() if is_secret_name(name) and len(value) >= 6),
        key=lambda item: (-len(item[1]), item[0]),
    )
    replaced: list[str] = []
    for name, value in secrets:
        new = _replace_value(text, value, reference(name))
        if new != text:
            replaced.append(name)
            text = new
    fields = tuple(path for path, value in file_credentials(text) if not _REFERENCE.fullmatch(value))
    shapes = tuple(
        f"line {number}"
        for number, line in enumerate(text.splitlines(), start=1)
        if _JWT.search(line) or _OPAQUE_KEY.search(line)
    )
    return Imported(text, tuple(sorted(replaced)), fields or shapes)


#: Credential fields of Kong's declarative entities (the plugins' DAOs, Kong/kong@2.8.1
#: kong/plugins/*/daos.lua): the values Kong compares requests against.
CREDENTIAL_FIELDS = {
    "keyauth_credentials": ("key",),
    "basicauth_credentials": ("password",),
    "hmacauth_credentials": ("secret",),
    "jwt_secrets": ("secret",),
    "oauth2_credentials": ("client_secret",),
}


def file_credentials(text: str) -> list[tuple[str, str]]:
    """(YAML path, value) of every credential field in a kong file (nothing if not YAML)."""
    from .kong.entities import collect_entities  # the validator's package: only when a file is read
    from .kong.yaml_source import parse_source

    parsed = parse_source(text)
    if parsed.failed or not isinstance(parsed.doc, Mapping):
        return []
    found = []
    for entity in collect_entities(parsed.doc).items:
        for name in CREDENTIAL_FIELDS.get(entity.kind, ()):
            value = entity.get(name)
            if isinstance(value, str) and value:
                found.append((f"{entity.path}.{name}", value))
    return found


def register_file_credentials(text: str) -> None:
    """Mask the credentials written in clear in a kong file wherever they would print (a
    diff's context lines), even those no environment or secrets file names."""
    for _, value in file_credentials(text):
        if not _REFERENCE.fullmatch(value):
            register_secret(value)


def _replace_value(text: str, value: str, ref: str) -> str:
    if len(value) >= _SUBSTRING_MIN:
        return text.replace(value, ref)
    if any(q in value for q in _QUOTES):
        return text
    pattern = re.compile(
        r"(?m)^(\s*(?:-\s+)?" + _CREDENTIAL_KEYS + r"\s*:\s*)(['\"]?)" + re.escape(value) + r"\2(?=\s*(?:#.*)?$)"
    )
    return pattern.sub(lambda m: f"{m.group(1)}{m.group(2)}{ref}{m.group(2)}", text)


def held_credentials(names: Iterable[str]) -> frozenset[str]:
    """Of a container's env names, those a template may reference as secrets."""
    return frozenset(n for n in names if is_secret_name(n))
