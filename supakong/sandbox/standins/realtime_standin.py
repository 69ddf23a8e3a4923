"""The entry script of the stand-in for self-hosted Supabase Realtime (Phoenix), for the
sandbox and tests. Its modules are in ``realtime_server/`` beside it.

Real Realtime needs the BEAM, which the sandbox does not have. This stand-in acts like
Realtime v2.129 on the wire, as far as a deploy check behind Kong can see:

* The tenant is the first DNS label of the Host header (``realtime-dev.supabase-realtime:4000``
  gives ``realtime-dev``). This is why ``preserve_host: true`` on the Kong route breaks things.
* The handshake token comes from the ``x-api-key`` header, else the ``apikey`` query param.
  It must be an HS256/384/512 JWT signed with ``API_JWT_SECRET``, with ``exp`` and ``role``.
* A rejected handshake gets a real HTTP status. From v2.116 on, the body is JSON
  ``{"error": ...}`` (404 unknown tenant, 401 token problems). Older versions answer 403
  with an empty body.
* Phoenix channels with serializers ``vsn=1.0.0`` (JSON objects, the default) and ``vsn=2.0.0``
  (JSON arrays, plus the binary broadcast frames that realtime-js sends). Supported:
  ``phx_join``, ``heartbeat``, ``broadcast`` (self/ack/fan-out), ``presence`` (reply only),
  ``access_token``, ``phx_leave``, and postgres_changes.
* postgres_changes with a database (``DB_HOST`` set, the sandbox's db): Realtime's tenant seed
  in ``_realtime``, its ``realtime`` schema, ``realtime.subscription`` rows per binding, a
  temporary wal2json slot polled every 100 ms, RLS asked of Postgres with each subscriber's
  role and claims, and ``postgres_changes`` frames in Realtime's shape (see
  ``realtime_server/cdc.py``). Without ``DB_HOST`` the ``system`` message is checked against
  ``REALTIME_PUBLICATION_TABLES`` and no change is ever sent.
* ``GET /healthcheck``, ``GET /api/tenants/<tenant>/health`` (Bearer JWT) and ``GET /api/ping``.

Environment: ``API_JWT_SECRET`` (required), ``PORT`` (4000), ``HOST`` (0.0.0.0),
``SELF_HOST_TENANT_NAME`` (realtime-dev), ``APP_NAME`` (realtime),
``REALTIME_PUBLICATION_TABLES`` (``public.wells,public.messages``), ``REALTIME_VERSION``
(v2.129.8); with a database ``DB_HOST``, ``DB_PORT`` (5432), ``DB_USER`` (supabase_admin),
``DB_PASSWORD``, ``DB_NAME`` (postgres), ``DB_AFTER_CONNECT_QUERY``, ``DB_ENC_KEY``,
``SLOT_NAME_SUFFIX``. Logs go to stdout in the style of Elixir's Logger. SIGTERM exits 0; a
database that cannot be reached within 30 s at start exits 1.

This script and ``realtime_server/`` run with only the stdlib, ``websockets``, ``PyJWT`` and
(with a database) ``psycopg``. They do not import the ``supakong`` package: the directory is
bind-mounted alone into a container.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

# Run as a script, this directory is on sys.path already; imported by path (tests), not.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from realtime_server.channels import tenant_from_host  # noqa: E402
from realtime_server.server import run  # noqa: E402
from realtime_server.settings import ConfigError, load_settings, log  # noqa: E402

__all__ = ["main", "tenant_from_host"]


def main() -> int:
    """Entry point: exit 1 on a bad environment or an unreachable database, 0 after a clean
    shutdown."""
    try:
        settings = load_settings(os.environ)
    except ConfigError as exc:
        log("error", str(exc))
        return 1
    try:
        asyncio.run(run(settings))
    except OSError as exc:  # psycopg's OperationalError is not an OSError: see below
        log("error", f"{type(exc).__name__}: {exc}")
        return 1
    except Exception as exc:  # an unreachable database at start (psycopg.OperationalError)
        if type(exc).__module__.startswith("psycopg"):
            log("error", f"DatabaseConnectionError: {str(exc).strip().splitlines()[0]}")
            return 1
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
