"""Is a table ready for Realtime's postgres_changes? The database half of ``doctor``.

"SUBSCRIBED" and "Subscribed to PostgreSQL" prove the tenant, the connection and that the
table is in the publication, not that changes reach anyone. Realtime delivers a change only
when (supabase.com/docs/guides/realtime/postgres-changes; supabase/realtime
``priv/repo/tenant_schema/realtime/functions/apply_rls.sql``, ``list_changes.sql``,
``lib/extensions/postgres_cdc_rls/``):

* the table is in publication ``supabase_realtime`` and the publication publishes the action;
* it has a primary key (else every event carries ``Error 400: Bad Request, no primary key``)
  and a replica identity (else its UPDATE/DELETE fail once it is in the publication);
* with RLS on, a SELECT policy lets the subscriber's role see the row (else: dropped,
  silently), and the role has SELECT on it (else ``Error 401: Unauthorized``);
* ``wal_level`` is ``logical``, wal2json is installed and a replication slot is free, so
  Realtime's poller holds its temporary slot ``supabase_realtime_replication_slot…``, active
  and not behind;
* Realtime's tenant row exists in ``_realtime.tenants`` and is not suspended.

Three pure steps and one exec: :func:`readiness_script` (one read-only psql script),
:func:`parse_readiness` (its output → :class:`TableReadiness`), :func:`table_checks`
(→ ✓/✗ with the SQL that fixes each ✗ and that SQL's risk); :func:`read_table_readiness`
runs the script in the db container. :func:`event_cause` names why a subscribed channel got
no event (``verify-realtime --event``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .checks import FAIL, OK, SKIP, Check
from .errors import DeployError
from .supabase_db import DbContainer, find_db_container, list_containers, run_psql
from .verify_model import Diagnosis

PUBLICATION = "supabase_realtime"
SLOT_PREFIX = "supabase_realtime_replication_slot"
API_ROLES = ("anon", "authenticated")
LAG_LIMIT = 64 * 1024 * 1024  # bytes: the poller consumes the slot every 100-500 ms
_MARK = "@@"
_NAME = re.compile(r"[A-Za-z0-9_]+")
PUBLICATION_RISK = (
    "Realtime notices a changed publication within 60 s and re-subscribes every channel: changes"
    " in that window can be missed"
)
RESTART_RISK = "a restart drops every database connection for a few seconds"


# =========================================================================== the script


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def split_table(table: str) -> tuple[str, str]:
    """``schema.table`` (or a bare ``table`` in public) as its two names."""
    schema, _, name = table.rpartition(".")
    schema = schema or "public"
    if not (_NAME.fullmatch(schema) and _NAME.fullmatch(name)):
        raise DeployError(f"--table/verify_table: expected schema.table, got {table!r}")
    return schema, name


def readiness_script(table: str, publication: str = PUBLICATION) -> str:
    """One read-only psql script: every fact the checks need, one ``@@key<TAB>json`` line each.

    ``table`` may be empty (only the database-wide facts). Statements stand alone (psql goes
    on after an error), objects that may be missing (``realtime``, ``_realtime``) are guarded.
    """
    pub = _literal(publication)
    parts = [
        "set default_transaction_read_only = on;",
        "set statement_timeout = '10s';",
        f"select '{_MARK}server', jsonb_build_object('wal_level', current_setting('wal_level'),"
        " 'max_replication_slots', current_setting('max_replication_slots')::int,"
        " 'output_plugins', current_setting('output_plugin_libraries', true),"
        " 'pending_restart', (select coalesce(jsonb_agg(name), '[]') from pg_settings where pending_restart),"
        " 'database', current_database(), 'version', current_setting('server_version'));",
        f"select '{_MARK}wal2json', jsonb_build_object('installed',"
        " (pg_stat_file(setting || '/wal2json.so', true)).size is not null) from pg_config where name = 'PKGLIBDIR';",
        f"select '{_MARK}slots', coalesce(jsonb_agg(jsonb_build_object('name', s.slot_name, 'plugin', s.plugin,"
        " 'temporary', s.temporary, 'active', s.active, 'pid', s.active_pid, 'app', a.application_name,"
        " 'lag_bytes', pg_wal_lsn_diff(pg_current_wal_lsn(), s.confirmed_flush_lsn))), '[]')"
        " from pg_replication_slots s left join pg_stat_activity a on a.pid = s.active_pid;",
        f"select '{_MARK}sessions', coalesce(jsonb_object_agg(application_name, n), '{{}}') from (select"
        " application_name, count(*) n from pg_stat_activity where application_name like 'realtime%' group by 1) x;",
        f"select '{_MARK}publication', jsonb_build_object('exists', p.oid is not null, 'all_tables', p.puballtables,"
        " 'insert', p.pubinsert, 'update', p.pubupdate, 'delete', p.pubdelete, 'truncate', p.pubtruncate,"
        f" 'tables', (select count(*) from pg_publication_tables t where t.pubname = {pub}))"
        f" from (select {pub}::name n) q left join pg_publication p on p.pubname = q.n;",
        "select to_regclass('realtime.subscription') is not null as sk_subscriptions \\gset",
        "\\if :sk_subscriptions",
        f"select '{_MARK}subscriptions', jsonb_build_object('total', count(*)) from realtime.subscription;",
        "\\endif",
        "select to_regclass('_realtime.tenants') is not null and to_regclass('_realtime.extensions') is not null"
        " as sk_tenants \\gset",
        "\\if :sk_tenants",
        f"select '{_MARK}tenants', coalesce(jsonb_agg(jsonb_build_object('external_id', t.external_id,"
        " 'suspend', to_jsonb(t) -> 'suspend', 'extensions', (select coalesce(jsonb_agg(jsonb_build_object("
        "'type', e.type, 'publication', e.settings ->> 'publication', 'slot_name', e.settings ->> 'slot_name')), '[]')"
        " from _realtime.extensions e where e.tenant_external_id = t.external_id))), '[]') from _realtime.tenants t;",
        "\\endif",
    ]
    if table:
        parts += _table_queries(*split_table(table), pub)
    return "\n".join(parts) + "\n"


def _table_queries(schema: str, name: str, pub: str) -> list[str]:
    s, t = _literal(schema), _literal(name)
    rel = f"to_regclass(format('%I.%I', {s}, {t}))"
    return [
        f"select '{_MARK}table', jsonb_build_object('exists', c.oid is not null, 'kind', c.relkind,"
        " 'rls', c.relrowsecurity, 'replica_identity', c.relreplident,"
        " 'pk', (select jsonb_agg(a.attname order by a.attnum) from pg_index i join pg_attribute a"
        " on a.attrelid = i.indrelid and a.attnum = any(i.indkey) where i.indrelid = c.oid and i.indisprimary),"
        " 'identity_index', (select i.indexrelid::regclass::text from pg_index i"
        " where i.indrelid = c.oid and i.indisreplident),"
        f" 'member', exists (select 1 from pg_publication_tables p where p.pubname = {pub}"
        f" and p.schemaname = {s} and p.tablename = {t}))"
        f" from (select {rel} rel) q left join pg_class c on c.oid = q.rel;",
        f"select '{_MARK}policies', coalesce(jsonb_agg(jsonb_build_object('name', policyname,"
        f" 'permissive', permissive, 'roles', roles, 'cmd', cmd)), '[]') from pg_policies"
        f" where schemaname = {s} and tablename = {t};",
        f"select '{_MARK}grants', coalesce(jsonb_object_agg(r.rolname, jsonb_build_object("
        f"'usage', has_schema_privilege(r.rolname, {s}, 'USAGE'),"
        f" 'select', has_table_privilege(r.rolname, q.rel, 'SELECT'),"
        " 'pk_select', coalesce((select bool_and(has_column_privilege(r.rolname, q.rel, a.attname, 'SELECT'))"
        " from pg_index i join pg_attribute a on a.attrelid = i.indrelid and a.attnum = any(i.indkey)"
        " where i.indrelid = q.rel and i.indisprimary), false))), '{}')"
        f" from pg_roles r, (select {rel} rel) q where r.rolname in ('anon', 'authenticated') and q.rel is not null;",
    ]


# =========================================================================== parsing


@dataclass(frozen=True)
class TableReadiness:
    """What the script read (each part ``{}`` when its query did not answer)."""

    table: str  # schema.table, or "" for the database-wide facts only
    publication: str
    tenant: str
    db: DbContainer | None
    role: str = "supabase_admin"
    facts: Mapping[str, Any] = field(default_factory=dict)
    errors: tuple[str, ...] = ()  # psql's complaints (lines that are not facts)
    error: str = ""  # why nothing could be read (no container, exec refused)

    def part(self, key: str) -> Any:
        return self.facts.get(key)


def parse_readiness(output: str) -> tuple[dict[str, Any], tuple[str, ...]]:
    """``@@key<TAB>json`` lines as facts; every other non-empty line is kept as an error."""
    facts: dict[str, Any] = {}
    errors: list[str] = []
    for line in output.splitlines():
        if line.startswith(_MARK) and "\t" in line:
            key, _, value = line[len(_MARK) :].partition("\t")
            try:
                facts[key] = json.loads(value)
            except ValueError:
                errors.append(line)
        elif line.strip():
            errors.append(line.strip())
    return facts, tuple(errors)


# =========================================================================== checks


def table_checks(r: TableReadiness) -> list[Check]:
    """The checklist rows for the database and ``r.table``, in the order a change travels."""
    if r.db is None:
        if not r.error:
            return [Check("db container", SKIP, "not looked for")]
        return [Check("db container", FAIL, r.error, _DB_FIX)]
    found = Check("db container", OK, f"{r.db.name} ({r.db.image}, found by {r.db.reason}), psql as {r.role}")
    if r.error:
        return [Check("db container", FAIL, f"{r.db.name}: {r.error}", _db_read_fix(r.db.name))]
    checks = [found]
    if r.table:
        checks += [
            check_table(r),
            check_publication(r),
            check_primary_key(r),
            check_replica_identity(r),
            check_rls(r),
            check_grants(r),
        ]
    checks += [check_wal_level(r), check_free_slot(r)]
    if r.table:  # the probe subscribed to it, so Realtime's workers (and their slot) run now
        checks.append(check_realtime_slot(r))
    return [*checks, check_tenant_row(r)]


_DB_FIX = "set db_container in the inventory to the name of the Postgres container (`docker ps` on the host)"


def _db_read_fix(name: str) -> str:
    return f"check that {name} runs and `docker exec {name} psql -U supabase_admin -c 'select 1'` works on the host"


def _missing(r: TableReadiness, key: str, name: str) -> Check | None:
    if r.part(key) is None:
        why = "; ".join(r.errors[-2:]) or "no answer"
        return Check(name, SKIP, f"not read ({why})")
    return None


def _table_state(r: TableReadiness) -> Mapping[str, Any]:
    state = r.part("table")
    return state if isinstance(state, Mapping) and state.get("exists") else {}


def check_table(r: TableReadiness) -> Check:
    """The table exists (in the db the psql session opened)."""
    name = "table"
    missing = _missing(r, "table", name)
    if missing:
        return missing
    if not _table_state(r):
        database = (r.part("server") or {}).get("database", "postgres")
        return Check(
            name,
            FAIL,
            f"{r.table} does not exist in database {database} of {r.db.name if r.db else 'the db'}:"
            " the join's system message says so",
            "create the table, or point verify_table (or --table) at the table your app subscribes to",
        )
    return Check(name, OK, f"{r.table} exists")


def _table_skip(r: TableReadiness, key: str, name: str) -> Check | None:
    """A skipped row when ``key`` was not read or the table does not exist, else None."""
    return _missing(r, key, name) or (None if _table_state(r) else Check(name, SKIP, f"{r.table} does not exist"))


def check_publication(r: TableReadiness) -> Check:
    """The table is in the publication, and the publication publishes insert, update, delete."""
    name = "publication"
    if skip := _table_skip(r, "publication", name):
        return skip
    pub, table = r.part("publication"), _table_state(r)
    if not pub.get("exists"):
        return Check(
            name,
            FAIL,
            f"publication {r.publication} does not exist: Realtime finds no table to subscribe to",
            f"create publication {r.publication}; alter publication {r.publication} add table {r.table};"
            f" — risk: {_add_table_risk(r)}",
        )
    if not (table.get("member") or pub.get("all_tables")):
        return Check(
            name,
            FAIL,
            f"{r.table} is not in publication {r.publication}: the join's system message says 'Unable to"
            " subscribe' and no change of the table is sent",
            f"alter publication {r.publication} add table {r.table}; — risk: {_add_table_risk(r)}",
        )
    missing = [action for action in ("insert", "update", "delete") if not pub.get(action)]
    published = ", ".join(a for a in ("insert", "update", "delete", "truncate") if pub.get(a)) or "nothing"
    if missing:
        return Check(
            name,
            FAIL,
            f"publication {r.publication} publishes {published}: {', '.join(m.upper() for m in missing)}"
            " events never arrive (silently)",
            f"alter publication {r.publication} set (publish = 'insert, update, delete, truncate');"
            f" — risk: it applies to every table of the publication and every other reader of it; {PUBLICATION_RISK}",
        )
    return Check(name, OK, f"{r.table} is in {r.publication}, which publishes {published}")


def _add_table_risk(r: TableReadiness) -> str:
    table = _table_state(r)
    if table and not table.get("pk") and table.get("replica_identity") not in ("f", "i"):
        return (
            f"{r.table} has no primary key: once in a publication that publishes updates and deletes, its UPDATE"
            f' and DELETE fail ("cannot update table … because it does not have a replica identity"); first'
            f" add a primary key, or `alter table {r.table} replica identity full;`. {PUBLICATION_RISK}"
        )
    return PUBLICATION_RISK


def check_primary_key(r: TableReadiness) -> Check:
    """A primary key (Realtime finds the row by it; without one every event is an error)."""
    name = "primary key"
    if skip := _table_skip(r, "table", name):
        return skip
    pk = _table_state(r).get("pk") or []
    if not pk:
        return Check(
            name,
            FAIL,
            f"{r.table} has no primary key: every event arrives with errors ['Error 400: Bad Request, no primary"
            " key'] and no record",
            f"alter table {r.table} add primary key (<unique, non-null column>); — risk: it locks the table while"
            " the index is built and fails on duplicate or NULL values",
        )
    return Check(name, OK, f"primary key ({', '.join(pk)})")


def check_replica_identity(r: TableReadiness) -> Check:
    """A replica identity: without one, a published table refuses UPDATE and DELETE."""
    name = "replica identity"
    if skip := _table_skip(r, "table", name):
        return skip
    table = _table_state(r)
    identity, pk = table.get("replica_identity"), table.get("pk") or []
    if identity == "f":
        return Check(name, OK, "full: UPDATE and DELETE events carry the old row")
    if identity == "i":
        return Check(name, OK, f"index {table.get('identity_index')}")
    if identity == "d" and pk:
        return Check(
            name,
            OK,
            "default (the primary key): old_record holds only the key, and a DELETE filtered on another"
            " column is not delivered",
        )
    in_pub = table.get("member")
    return Check(
        name,
        FAIL,
        f"{r.table} has no replica identity (no primary key, identity {identity!r})"
        + (": its UPDATE and DELETE fail while it is in the publication" if in_pub else ""),
        f"alter table {r.table} replica identity full; — risk: every UPDATE and DELETE then writes the whole"
        " old row to the WAL (more WAL, more I/O); a primary key is the lighter fix",
    )


def _select_policies(r: TableReadiness) -> dict[str, list[str]]:
    """The permissive SELECT (or ALL) policies that apply to each API role."""
    found: dict[str, list[str]] = {role: [] for role in API_ROLES}
    for policy in r.part("policies") or []:
        if policy.get("cmd") not in ("SELECT", "ALL") or policy.get("permissive") != "PERMISSIVE":
            continue
        roles = set(policy.get("roles") or [])
        for role in API_ROLES:
            if role in roles or "public" in roles:
                found[role].append(str(policy.get("name")))
    return found


def check_rls(r: TableReadiness) -> Check:
    """RLS on, with a SELECT policy for anon or authenticated."""
    name = "rls"
    if skip := _table_skip(r, "policies", name):
        return skip
    policy_sql = f'create policy "Allow anonymous access" on {r.table} for select to anon using (true);'
    policy_risk = "using (true) lets anyone with the anon key read every row: narrow it to what clients may see"
    if not _table_state(r).get("rls"):
        return Check(
            name,
            FAIL,
            f"row level security is off on {r.table}: every subscriber with the anon key receives every row",
            f"alter table {r.table} enable row level security; {policy_sql} — risk: with RLS on and no policy"
            f" the API roles see no row at all (PostgREST too): write your app's policies first; {policy_risk}",
        )
    policies = _select_policies(r)
    if not any(policies.values()):
        return Check(
            name,
            FAIL,
            f"RLS is on and no SELECT policy lets anon or authenticated read {r.table}: Realtime drops every"
            " change for them, silently",
            f"{policy_sql} — risk: {policy_risk}",
        )
    shown = "; ".join(f"{role}: {', '.join(names)}" for role, names in policies.items() if names)
    unreadable = [role for role, names in policies.items() if not names]
    note = f" ({' and '.join(unreadable)} get no events)" if unreadable else ""
    return Check(name, OK, f"on, SELECT policies for {shown}{note}")


def check_grants(r: TableReadiness) -> Check:
    """USAGE on the schema and SELECT on the table for the roles the policies serve."""
    name = "select grant"
    if skip := _table_skip(r, "grants", name):
        return skip
    grants: Mapping[str, Mapping[str, Any]] = r.part("grants") or {}
    policies = _select_policies(r)
    roles = [role for role in API_ROLES if policies.get(role)] or list(API_ROLES)
    schema = r.table.split(".", 1)[0]
    lacking = [role for role in roles if not (_granted(grants, role, "usage") and _granted(grants, role, "pk_select"))]
    if lacking:
        who = ", ".join(lacking)
        return Check(
            name,
            FAIL,
            f"{who} cannot SELECT {r.table} (schema usage or SELECT on its key revoked): events arrive with errors"
            " ['Error 401: Unauthorized'] and no record",
            f"grant usage on schema {schema} to {who}; grant select on {r.table} to {who};"
            " — risk: with RLS off this exposes every row to every holder of the anon key; check RLS first",
        )
    return Check(name, OK, f"{', '.join(roles)} may SELECT {r.table}")


def _granted(grants: Mapping[str, Mapping[str, Any]], role: str, what: str) -> bool:
    return bool(grants.get(role, {}).get(what))


def check_wal_level(r: TableReadiness) -> Check:
    """wal_level logical and wal2json loadable: Realtime's slot can exist at all."""
    name = "wal_level"
    missing = _missing(r, "server", name)
    if missing:
        return missing
    server = r.part("server")
    level, pending = server.get("wal_level"), server.get("pending_restart") or []
    container = r.db.name if r.db else "the db container"
    if level != "logical":
        pending_note = " (a new value waits for a restart)" if "wal_level" in pending else ""
        return Check(
            name,
            FAIL,
            f"wal_level is {level}{pending_note}: Postgres keeps no logical decoding data, so Realtime cannot make"
            " its replication slot and no change is ever delivered ('Subscribed to PostgreSQL' still arrives)",
            f"alter system set wal_level = logical; then `docker restart {container}` — risk: {RESTART_RISK}",
        )
    plugins = server.get("output_plugins")
    if plugins is not None and "wal2json" not in str(plugins):
        return Check(
            name,
            FAIL,
            f"output_plugin_libraries is '{plugins}': wal2json may not be used, so Realtime cannot make its slot",
            "alter system set output_plugin_libraries = 'pgoutput, test_decoding, wal2json'; then"
            f" `docker restart {container}` — risk: {RESTART_RISK}",
        )
    installed = (r.part("wal2json") or {}).get("installed")
    if installed is False:
        return Check(
            name,
            FAIL,
            "wal2json is not installed in this Postgres: Realtime cannot make its slot",
            "run the supabase/postgres image (it ships wal2json), or install your distribution's wal2json package",
        )
    return Check(name, OK, "logical" + (", wal2json installed" if installed else ""))


def _slots(r: TableReadiness) -> list[Mapping[str, Any]]:
    return [s for s in r.part("slots") or [] if isinstance(s, Mapping)]


def _realtime_slot(r: TableReadiness) -> Mapping[str, Any] | None:
    return next((s for s in _slots(r) if str(s.get("name", "")).startswith(SLOT_PREFIX)), None)


def check_free_slot(r: TableReadiness) -> Check:
    """A replication slot is free for Realtime (or it holds one already)."""
    name = "replication slots"
    missing = _missing(r, "slots", name) or _missing(r, "server", name)
    if missing:
        return missing
    slots, limit = _slots(r), int(r.part("server").get("max_replication_slots") or 0)
    used = f"{len(slots)} of max_replication_slots={limit} used"
    if _realtime_slot(r) is not None or len(slots) < limit:
        return Check(name, OK, used)
    idle = [str(s.get("name")) for s in slots if not s.get("active")]
    drops = " ".join(f"select pg_drop_replication_slot('{n}');" for n in idle) or "(every slot is in use)"
    return Check(
        name,
        FAIL,
        f"{used} ({', '.join(str(s.get('name')) for s in slots)}): Realtime cannot make its slot, so no change is"
        " delivered",
        f"{drops} or: alter system set max_replication_slots = {max(limit * 2, 10)}; then restart the db"
        " — risk: a dropped slot's consumer (a replica, a CDC tool) loses its place; drop only slots you know",
    )


def check_realtime_slot(r: TableReadiness) -> Check:
    """Realtime's temporary slot exists, its poller holds it and keeps up."""
    name = "realtime slot"
    missing = _missing(r, "slots", name)
    if missing:
        return missing
    slot, sessions = _realtime_slot(r), r.part("sessions") or {}
    subscriptions = (r.part("subscriptions") or {}).get("total", 0)
    if slot is None:
        workers = sessions.get("realtime_subscription_manager", 0)
        if (r.part("publication") or {}).get("tables") == 0:
            return Check(name, SKIP, f"none: publication {r.publication} has no table (Realtime makes no slot for it)")
        if not workers and not subscriptions:
            return Check(
                name,
                SKIP,
                "none: nobody subscribed to postgres_changes in the last 10 minutes (Realtime makes it at the first"
                " join)",
            )
        return Check(
            name,
            FAIL,
            f"Realtime's CDC workers run ({subscriptions} subscription(s) in realtime.subscription) but hold no"
            f" {SLOT_PREFIX}* slot: no change reaches any subscriber",
            "see the wal_level and replication slots checks; Realtime logs PoolingReplicationPreparationError"
            " with Postgres's reason (`fab logs`)",
        )
    label = f"{slot.get('name')}"
    if not slot.get("active"):
        return Check(
            name,
            FAIL,
            f"{label} exists but no session reads it: changes pile up and none is delivered",
            f"select pg_drop_replication_slot('{label}'); then restart the realtime container — risk: clients"
            " reconnect",
        )
    lag = int(slot.get("lag_bytes") or 0)
    holder = f"{slot.get('app') or 'pid'} {slot.get('pid')}"
    if lag > LAG_LIMIT:
        return Check(
            name,
            FAIL,
            f"{label} is {lag // (1024 * 1024)} MiB behind ({holder}): the poller is stuck or rate-limited",
            "restart the realtime container (its temporary slot is made again) — risk: clients reconnect and"
            " changes in between are not delivered",
        )
    return Check(name, OK, f"{label} active ({holder}), {lag} bytes behind")


def check_tenant_row(r: TableReadiness) -> Check:
    """Realtime's tenant row (``_realtime.tenants``) exists, is not suspended, has postgres_cdc_rls."""
    name = "tenant row"
    tenants = r.part("tenants")
    if tenants is None:
        return Check(name, SKIP, "no _realtime schema in this database (Realtime keeps its tenants elsewhere)")
    row = next((t for t in tenants if t.get("external_id") == r.tenant), None)
    if row is None:
        known = ", ".join(str(t.get("external_id")) for t in tenants) or "none"
        return Check(
            name,
            FAIL,
            f"no tenant {r.tenant!r} in _realtime.tenants (there: {known}): handshakes get 'Tenant not found'",
            "restart the realtime container with SEED_SELF_HOST=true: its seed inserts the tenant",
        )
    if row.get("suspend") is True:
        return Check(
            name,
            FAIL,
            f"tenant {r.tenant!r} is suspended: Realtime refuses it ('Realtime was disabled for this tenant')",
            f"update _realtime.tenants set suspend = false where external_id = '{r.tenant}';",
        )
    cdc = next((e for e in row.get("extensions") or [] if e.get("type") == "postgres_cdc_rls"), None)
    if cdc is None:
        return Check(
            name,
            FAIL,
            f"tenant {r.tenant!r} has no postgres_cdc_rls extension: postgres_changes cannot work",
            "restart the realtime container with SEED_SELF_HOST=true (its seed adds the extension)",
        )
    return Check(name, OK, f"{r.tenant}: postgres_cdc_rls on publication {cdc.get('publication') or PUBLICATION}")


# =========================================================================== reading


def tenant_publication(facts: Mapping[str, Any], tenant: str) -> str:
    """The publication the tenant's postgres_cdc_rls settings name (default supabase_realtime)."""
    for row in facts.get("tenants") or []:
        if row.get("external_id") == tenant:
            for ext in row.get("extensions") or []:
                if ext.get("type") == "postgres_cdc_rls" and ext.get("publication"):
                    return str(ext["publication"])
    return PUBLICATION


def locate_db(api: Any, realtime_container: str, pinned: str | None) -> tuple[DbContainer | None, str]:
    """The db container on the host (or why there is none)."""
    db = find_db_container(list_containers(api), realtime_container, pinned)
    if db is None:
        if pinned:
            return None, f"no container {pinned} on the host (db_container in the inventory)"
        return None, "no Supabase db container on the host (no image supabase/postgres, no compose service db)"
    if not db.running:
        return None, f"{db.name} is not running"
    return db, ""


def read_table_readiness(
    api: Any, table: str, tenant: str, realtime_container: str, pinned: str | None = None
) -> TableReadiness:
    """Find the db container and run :func:`readiness_script` in it (read-only). The
    publication is the tenant's (a second pass when it is not supabase_realtime)."""
    db, why = locate_db(api, realtime_container, pinned)
    if db is None:
        return TableReadiness(table, PUBLICATION, tenant, None, error=why)
    publication = PUBLICATION
    for _ in range(2):
        try:
            code, output, role = run_psql(api, db.name, readiness_script(table, publication))
        except DeployError as exc:
            return TableReadiness(table, publication, tenant, db, error=str(exc))
        facts, errors = parse_readiness(output)
        if not facts:
            reason = "; ".join(errors[-2:]) or f"psql exited {code}"
            return TableReadiness(table, publication, tenant, db, role, error=f"psql read nothing: {reason}")
        wanted = tenant_publication(facts, tenant)
        if wanted == publication:
            break
        publication = wanted
    return TableReadiness(table, publication, tenant, db, role, facts, errors)


# =========================================================================== --event


#: The checks that can each explain "subscribed, yet no event", most basic first.
EVENT_CAUSES = (
    "db container",
    "table",
    "publication",
    "wal_level",
    "replication slots",
    "realtime slot",
    "rls",
    "select grant",
    "primary key",
    "replica identity",
    "tenant row",
)


def event_cause(checks: Sequence[Check]) -> Diagnosis | None:
    """Why a subscribed channel got no event: the first failed check of :data:`EVENT_CAUSES`."""
    failed = {c.name: c for c in checks if c.status == FAIL}
    for name in EVENT_CAUSES:
        if name in failed:
            return Diagnosis(f"{name}: {failed[name].detail}", failed[name].fix)
    return None


def doctor_table_checks(readiness: TableReadiness | None) -> list[Check]:
    """The database rows of ``fab doctor`` (one skipped row when the host was not reached)."""
    if readiness is None:
        return [Check("db container", SKIP, "not read: no SSH")]
    return table_checks(readiness)


def host_table(table_override: str | None, verify_table: str) -> str:
    """The table doctor checks: ``--table`` (a bare name is in public), else verify_table."""
    table = verify_table if table_override is None else table_override
    return f"public.{table}" if table and "." not in table else table
