"""``verify-realtime --event``: prove that a change in the database reaches a subscriber.

SUBSCRIBED proves the path up to Realtime; this writes one row and waits for its event,
through Kong, as a browser would get it (supabase.com/docs/guides/realtime/postgres-changes):

1. the probe joins with one more binding, ``INSERT`` on ``supakong.probe`` filtered on a
   fresh ``nonce``, and waits for "Subscribed to PostgreSQL";
2. it waits until Realtime's replication slot is active (a row written before the slot
   exists is never seen), then inserts the row with psql in the db container;
3. the event must arrive within the timeout; its latency is reported (state ``EVENTS``);
4. then, and only then, the row is deleted (with RLS on, a row deleted before Realtime's
   poll is never delivered).

Only the probe table is ever written: it lives in its own schema (``schema: 'public'``
listeners never see it), with RLS on and a SELECT policy for anon, and is made on first use
(``--event`` is the consent to write; the SQL and its side effect are shown; an existing
table is never changed, so a broken one is diagnosed, not repaired). When no event comes,
the cause is the first failed readiness check of the probe table
(:mod:`supakong.doctor_tables`).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

from .container import inspect_container
from .doctor_tables import (
    PUBLICATION,
    PUBLICATION_RISK,
    SLOT_PREFIX,
    event_cause,
    locate_db,
    read_table_readiness,
    table_checks,
)
from .errors import DeployError, VerifyError
from .inventory import HostConfig
from .supabase_db import DbContainer, run_psql
from .transport import HostConnection
from .verify import for_host_report, verify_realtime
from .verify_model import Diagnosis, EventProbe

if TYPE_CHECKING:
    from .verify_run import HostVerification, VerifyOptions

PROBE_SCHEMA, PROBE_NAME = "supakong", "probe"
PROBE_TABLE = f"{PROBE_SCHEMA}.{PROBE_NAME}"
SLOT_WAIT = 5.0  # seconds to wait for Realtime's slot after "Subscribed to PostgreSQL"
DEFAULT_TENANT = "realtime-dev"


def probe_table_sql(publication: str = PUBLICATION) -> str:
    """The probe table: own schema, RLS on, SELECT for anon and authenticated, published."""
    return "\n".join(
        [
            f"create schema if not exists {PROBE_SCHEMA};",
            f"create table if not exists {PROBE_TABLE} (id bigint generated always as identity primary key,"
            " nonce uuid not null, created_at timestamptz not null default now());",
            f"grant usage on schema {PROBE_SCHEMA} to anon, authenticated;",
            f"grant select on {PROBE_TABLE} to anon, authenticated;",
            f"alter table {PROBE_TABLE} enable row level security;",
            f"create policy probe_read on {PROBE_TABLE} for select to anon, authenticated using (true);",
            f"alter publication {publication} add table {PROBE_TABLE};",
        ]
    )


def insert_sql(nonce: str) -> str:
    return f"insert into {PROBE_TABLE} (nonce) values ('{uuid.UUID(nonce)}');"


def delete_sql(nonce: str) -> str:
    return f"delete from {PROBE_TABLE} where nonce = '{uuid.UUID(nonce)}';"


EXISTS_SQL = f"select to_regclass('{PROBE_TABLE}') is not null;"
SLOT_ACTIVE_SQL = (
    "select count(*) from pg_replication_slots"
    f" where slot_name like '{SLOT_PREFIX.replace('_', chr(92) + '_')}%' and active;"
)


class HostDatabase:
    """The host's db container over one SSH connection: the probe's reads and writes."""

    def __init__(self, api: object, db: DbContainer) -> None:
        self.api, self.db = api, db

    def run(self, sql: str) -> str:
        """Run ``sql`` (stopping at the first error); its output, or VerifyError with psql's words."""
        code, output, _ = run_psql(self.api, self.db.name, sql + "\n", stop_on_error=True)
        if code != 0:
            tail = " | ".join(output.strip().splitlines()[-2:])
            raise VerifyError(f"psql in {self.db.name} exited {code}: {tail}")
        return output.strip()

    def probe_table_exists(self) -> bool:
        return self.run(EXISTS_SQL) == "t"

    def wait_for_realtime_slot(self, timeout: float = SLOT_WAIT) -> tuple[bool, str]:
        """Until Realtime's slot is active (its poller will see the next write), at most ``timeout``."""
        deadline, delay = time.monotonic() + timeout, 0.1
        while True:
            if self.run(SLOT_ACTIVE_SQL) not in ("", "0"):
                return True, "Realtime's slot active"
            if time.monotonic() > deadline:
                return False, f"no active Realtime slot after {timeout:g} s"
            time.sleep(delay)
            delay = min(delay * 1.5, 0.5)


def ensure_probe_table(database: HostDatabase) -> tuple[str, ...]:
    """The probe table exists, or is made now (returns the lines to show: the SQL run and its
    side effect). An existing table is never changed."""
    if database.probe_table_exists():
        return ()
    sql = probe_table_sql()
    database.run(sql)
    return (
        f"created {PROBE_TABLE} in {database.db.name} (first use of --event):",
        *(f"  {line}" for line in sql.splitlines()),
        f"  note: {PUBLICATION_RISK}",
    )


def event_probe(
    database: HostDatabase, explain: Callable[[], Diagnosis | None], nonce: str | None = None
) -> EventProbe:
    """The probe's binding and its host-side steps on ``database``."""
    nonce = nonce or str(uuid.uuid4())

    def write() -> None:
        database.run(insert_sql(nonce))

    def cleanup() -> None:
        try:
            database.run(delete_sql(nonce))
        except DeployError:
            pass  # a row left behind is harmless in the probe's own table

    return EventProbe(
        schema=PROBE_SCHEMA,
        table=PROBE_NAME,
        nonce=nonce,
        prepare=database.wait_for_realtime_slot,
        write=write,
        cleanup=cleanup,
        explain=explain,
    )


def realtime_tenant(api: object, host: HostConfig) -> str:
    """Realtime's tenant: SELF_HOST_TENANT_NAME of its container, else the inventory's, else realtime-dev."""
    state = inspect_container(api, host.realtime_container)
    return state.env.get("SELF_HOST_TENANT_NAME") or host.realtime_tenant or DEFAULT_TENANT


def readiness_explainer(api: object, host: HostConfig, tenant: str) -> Callable[[], Diagnosis | None]:
    """Why no event came: the first failed readiness check of the probe table, with its fix."""

    def explain() -> Diagnosis | None:
        readiness = read_table_readiness(api, PROBE_TABLE, tenant, host.realtime_container, host.db_container)
        return event_cause(table_checks(readiness))

    return explain


def prepared_event_probe(conn: HostConnection, host: HostConfig) -> tuple[EventProbe, tuple[str, ...]]:
    """Locate the db, make sure the probe table exists (or make it), build the probe."""
    api = conn.engine()
    db, why = locate_db(api, host.realtime_container, host.db_container)
    if db is None:
        raise VerifyError(f"{host.name}: --event needs the Supabase db container: {why}")
    database = HostDatabase(api, db)
    notes = ensure_probe_table(database)
    explain = readiness_explainer(api, host, realtime_tenant(api, host))
    return event_probe(database, explain), notes


def verify_host_events(
    host: HostConfig, apikey: str, options: VerifyOptions, *, conn: HostConnection | None, with_logs: bool
) -> HostVerification:
    """``verify-realtime --event`` on one host with ``apikey``: the whole probe plus the event
    stage, over ``conn`` (or a connection of its own: the db is reached through SSH)."""
    from .verify_run import HostVerification, channel_spec, logs_around  # verify_run imports this module lazily

    if conn is None:
        with HostConnection(host) as own:
            return verify_host_events(host, apikey, options, conn=own, with_logs=with_logs)
    probe, notes = prepared_event_probe(conn, host)
    channel = channel_spec(host.verify_channel, host.verify_table, options)
    started = time.time()
    report = for_host_report(
        verify_realtime(
            host.public_url,
            apikey,
            channel=channel,
            vsn=options.vsn or host.verify_vsn,
            timeout=options.timeout,
            event=probe,
        ),
        host,
    )
    if report.ok or not with_logs:
        return HostVerification(host.name, report, notes=notes)
    logs, note = logs_around(host, started - options.log_window, options.log_lines, conn)
    return HostVerification(host.name, report, logs, note, notes)
