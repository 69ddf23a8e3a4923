"""The host's Supabase database container: finding it, and running SQL in it with psql.

supabase/docker's compose file runs Postgres as service ``db`` (container ``supabase-db``,
image ``supabase/postgres:<version>``). supakong reaches it the way an operator would:
``docker exec <db> psql -U supabase_admin``, over the host's SSH connection and Docker API.
psql authenticates with the container's own ``PGPASSWORD`` (the image's pg_hba.conf asks
supabase_admin for its password on the socket), so no database password is needed here
and none leaves the host; if that fails, ``-U postgres`` by peer (root maps to postgres).

:func:`find_db_container` is pure (the host's container list in, a name out);
:func:`run_psql` is the one exec.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .container import exec_in_container
from .discovery import DB, image_repository, role_of, summaries
from .engine import EngineClient

ADMIN = "supabase_admin"
#: psql's answers when the container has no usable password for supabase_admin.
_AUTH_FAILED = ("password authentication failed", "no password supplied", "fe_sendauth")


@dataclass(frozen=True)
class DbContainer:
    """The database container and why it was chosen."""

    name: str
    image: str
    running: bool
    reason: str  # "inventory db_container", "compose service db", "image supabase/postgres"


def find_db_container(
    containers: Sequence[Mapping[str, Any]], realtime_container: str = "", pinned: str | None = None
) -> DbContainer | None:
    """The Supabase db among ``containers`` (Docker's ``GET /containers/json`` entries):
    ``pinned`` (the inventory's ``db_container``) if given, else a container
    :mod:`supakong.discovery` names a database (image ``supabase/postgres`` or compose service
    ``db``), preferring the Realtime container's compose project and a running one. None if
    nothing looks like it."""
    found = summaries(containers)
    if pinned is not None:
        chosen = next((c for c in found if c.name == pinned), None)
        return DbContainer(chosen.name, chosen.image, chosen.running, "inventory db_container") if chosen else None
    realtime_project = next((c.project for c in found if c.name == realtime_container), None)
    best: tuple[int, DbContainer] | None = None
    for container in (c for c in found if role_of(c) == DB):
        by_service = container.service == "db"
        by_image = image_repository(container.image) == "supabase/postgres"
        same_project = realtime_project is not None and container.project == realtime_project
        score = 2 * by_service + 2 * by_image + 2 * same_project + (container.state == "running")
        reason = "compose service db" if by_service else "image supabase/postgres"
        if best is None or score > best[0]:
            best = (score, DbContainer(container.name, container.image, container.state == "running", reason))
    return best[1] if best else None


def list_containers(api: Any) -> list[dict[str, Any]]:
    """``docker ps -a``: the host's containers (Docker's summary entries)."""
    if isinstance(api, EngineClient):
        return api.list_containers()
    return list(api.containers(all=True))


def psql_argv(user: str, *, stop_on_error: bool = False) -> list[str]:
    """psql reading a script on stdin: unaligned, tuples only, tab-separated, no psqlrc; after
    an error it goes on (each statement stands alone) unless ``stop_on_error``."""
    stop = "ON_ERROR_STOP=1" if stop_on_error else "ON_ERROR_STOP=0"
    return ["psql", "-X", "-q", "-A", "-t", "-F", "\t", "-v", stop, "-U", user, "-f", "-"]


def run_psql(api: Any, container: str, script: str, *, stop_on_error: bool = False) -> tuple[int, str, str]:
    """Run ``script`` in ``container`` as supabase_admin (the container's own password), else
    as postgres (peer); (exit code, output, the role used)."""
    argv = psql_argv(ADMIN, stop_on_error=stop_on_error)
    code, output = exec_in_container(api, container, argv, script.encode())
    if code != 0 and any(marker in output for marker in _AUTH_FAILED):
        argv = psql_argv("postgres", stop_on_error=stop_on_error)
        code, output = exec_in_container(api, container, argv, script.encode())
        return code, output, "postgres"
    return code, output, ADMIN
