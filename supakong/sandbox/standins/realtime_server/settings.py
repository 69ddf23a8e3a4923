"""What the Realtime stand-in was started with (its environment) and how it logs."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .auth import parse_jwks

JSON_ERRORS_SINCE = (2, 116, 0)  # supabase/realtime d27b694c "feat: improve phoenix errors"


class ConfigError(Exception):
    """The environment does not describe a runnable stand-in."""


@dataclass(frozen=True)
class DbSettings:
    """Realtime's connection to the database (the compose file's ``DB_*``), its encryption
    key for the tenant's secrets (``DB_ENC_KEY``) and ``SLOT_NAME_SUFFIX`` (None if unset)."""

    host: str
    port: int
    user: str
    password: str = field(repr=False)
    name: str
    after_connect_query: str
    enc_key: str = field(repr=False)
    slot_name_suffix: str | None

    def conninfo(self, application_name: str) -> dict[str, Any]:
        """Keyword arguments for a connection labelled ``application_name`` (as Realtime
        labels its pools: realtime_rls, realtime_subscription_manager, …)."""
        return {
            "host": self.host,
            "port": self.port,
            "user": self.user,
            "password": self.password,
            "dbname": self.name,
            "application_name": application_name,
            "connect_timeout": 5,
        }


@dataclass(frozen=True)
class Settings:
    """What the stand-in was started with (see the module docstring for the env names)."""

    host: str
    port: int
    jwt_secret: str
    tenant: str
    app_name: str
    publication_tables: frozenset[str]
    version: tuple[int, int, int]
    db: DbSettings | None = None
    #: The tenant's JWKS (``API_JWT_JWKS``, decoded), None when unset: then only HS* tokens
    #: (signed with ``API_JWT_SECRET``) can verify, as upstream's compose ships it commented.
    jwt_jwks: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def json_errors(self) -> bool:
        """Whether handshake errors carry a JSON body (v2.116+) or are a bare 403."""
        return self.version >= JSON_ERRORS_SINCE


def parse_version(text: str) -> tuple[int, int, int]:
    """Turn ``v2.129.8`` (or ``2.129.8``) into ``(2, 129, 8)``."""
    match = re.fullmatch(r"v?(\d+)\.(\d+)\.(\d+)", text.strip())
    if not match:
        raise ConfigError(f"REALTIME_VERSION must look like v2.129.8, got {text!r}")
    major, minor, patch = (int(part) for part in match.groups())
    return major, minor, patch


def load_settings(env: Mapping[str, str]) -> Settings:
    """Read the settings from an environment mapping; raise ConfigError when unusable."""
    secret = env.get("API_JWT_SECRET", "")
    if not secret:
        raise ConfigError("API_JWT_SECRET is required (the secret that signs anon/service JWTs)")
    port_text = env.get("PORT", "4000")
    if not (port_text.isascii() and port_text.isdecimal()) or int(port_text) > 65535:
        raise ConfigError(f"PORT must be a TCP port number, got {port_text!r}")
    try:
        jwks = parse_jwks(env.get("API_JWT_JWKS", ""))
    except ValueError as exc:  # Realtime's seed crashes on it (Jason.decode!)
        raise ConfigError(f"API_JWT_JWKS is not a JWKS: {exc}") from None
    tables = env.get("REALTIME_PUBLICATION_TABLES", "public.wells,public.messages")
    return Settings(
        host=env.get("HOST", "0.0.0.0"),
        port=int(port_text),
        jwt_secret=secret,
        tenant=env.get("SELF_HOST_TENANT_NAME", "realtime-dev"),
        app_name=env.get("APP_NAME", "realtime"),
        publication_tables=frozenset(t.strip() for t in tables.split(",") if t.strip()),
        version=parse_version(env.get("REALTIME_VERSION", "v2.129.8")),
        db=load_db_settings(env),
        jwt_jwks=jwks,
    )


def load_db_settings(env: Mapping[str, str]) -> DbSettings | None:
    """The ``DB_*`` connection, or None without ``DB_HOST`` (no database: the publication is
    then ``REALTIME_PUBLICATION_TABLES`` and no change is ever sent)."""
    host = env.get("DB_HOST", "")
    if not host:
        return None
    port_text = env.get("DB_PORT", "5432")
    if not (port_text.isascii() and port_text.isdecimal()) or int(port_text) > 65535:
        raise ConfigError(f"DB_PORT must be a TCP port number, got {port_text!r}")
    return DbSettings(
        host=host,
        port=int(port_text),
        user=env.get("DB_USER", "supabase_admin"),
        password=env.get("DB_PASSWORD", ""),
        name=env.get("DB_NAME", "postgres"),
        after_connect_query=env.get("DB_AFTER_CONNECT_QUERY", ""),
        enc_key=env.get("DB_ENC_KEY", ""),
        slot_name_suffix=env.get("SLOT_NAME_SUFFIX"),
    )


def log(level: str, message: str, tenant: str | None = None) -> None:
    """Print one Elixir-Logger-style line: ``10:00:00.123 project=t external_id=t [info] msg``."""
    now = datetime.now().strftime("%H:%M:%S.%f")[:-3]
    metadata = f"project={tenant} external_id={tenant} " if tenant else ""
    print(f"{now} {metadata}[{level}] {message}", flush=True)
