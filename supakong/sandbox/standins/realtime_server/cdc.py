"""postgres_changes through the database, the way Realtime's ``postgres_cdc_rls`` does it.

On the first join with postgres_changes bindings two workers start (Realtime's
``WorkerSupervisor``): the subscription manager (a connection labelled
``realtime_subscription_manager``; it empties ``realtime.subscription`` when it starts and
inserts one row per binding) and the replication poller (``realtime_rls``): it creates the
temporary wal2json slot ``supabase_realtime_replication_slot[_<SLOT_NAME_SUFFIX>]`` and polls
``realtime.list_changes`` every ``poll_interval_ms`` (five times slower when idle, at once
again after a busy poll). Each row names the subscriptions that may see a change; the
channels of those subscriptions get a ``postgres_changes`` frame with the ids of their
bindings whose event matches. Both workers stop 10 minutes after the last subscriber left.

A poller that cannot prepare its slot (``wal_level`` not logical, no free slot, wal2json
missing) logs ``PoolingReplicationPreparationError`` and retries with a growing back-off:
"Subscribed to PostgreSQL" still arrives (the manager's insert works) and no change does, as
with Realtime. (Realtime v2.129 stops retrying after 6 attempts and re-subscribes its
channels; v2.78 retries for ever, as this does.)

Sources: supabase/realtime ``lib/extensions/postgres_cdc_rls/`` (``replication_poller.ex``,
``subscription_manager.ex``, ``subscriptions.ex``, ``replications.ex``,
``message_dispatcher.ex``) and ``lib/realtime/adapters/changes.ex``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import tuple_row

from . import tenant_sql
from .settings import DbSettings, Settings, log
from .wire import elixir_inspect

STOP_AFTER = 600.0  # subscription_manager.ex @stop_after: 10 minutes without subscribers
IDLE_MULTIPLIER = 5  # replication_poller.ex @idle_multiplier
BACKOFF_MIN, BACKOFF_MAX = 0.1, 5.0  # DBConnection.Backoff in replication_poller.ex
FILTER_OPERATORS = frozenset({"eq", "neq", "lt", "lte", "gt", "gte", "in"})
EVENTS = frozenset({"*", "INSERT", "UPDATE", "DELETE"})
DEFAULT_EXTENSION = {
    "publication": "supabase_realtime",
    "slot_name": "supabase_realtime_replication_slot",
    "poll_interval_ms": 100,
    "poll_max_changes": 100,
    "poll_max_record_bytes": 1048576,
}


class FilterError(ValueError):
    """A binding's ``filter`` Realtime cannot parse."""


def parse_filter(text: str | None) -> list[dict[str, str]]:
    """Realtime's ``column=op.value`` (``in`` takes ``(a,b)``) as the subscription row's filters."""
    if not text:
        return []
    column, equals, rest = text.partition("=")
    op, dot, value = rest.partition(".")
    if not (equals and dot and column) or op not in FILTER_OPERATORS:
        raise FilterError(f"Error parsing `filter` params: {text!r}")
    if op == "in":
        if not (value.startswith("(") and value.endswith(")")):
            raise FilterError(f"Error parsing `filter` params: {text!r}")
        value = "{" + value[1:-1] + "}"
    return [{"column": column, "op": op, "value": value}]


def slot_name(base: str, suffix: str | None) -> str:
    """``slot_name`` of the tenant's settings plus ``_<SLOT_NAME_SUFFIX>`` when that is set
    (Realtime's image sets it, empty: ``supabase_realtime_replication_slot_``)."""
    return base if suffix is None else f"{base}_{suffix}"


def change_data(wal: Mapping[str, Any], errors: list[str] | None) -> dict[str, Any]:
    """The ``data`` of a postgres_changes frame, as Realtime encodes its change records."""
    kind = wal.get("type")
    data: dict[str, Any] = {
        "schema": wal.get("schema"),
        "table": wal.get("table"),
        "commit_timestamp": wal.get("commit_timestamp"),
        "type": kind,
        "columns": wal.get("columns", []),
    }
    if kind in ("INSERT", "UPDATE"):
        data["record"] = wal.get("record", {})
    if kind in ("UPDATE", "DELETE"):
        data["old_record"] = wal.get("old_record", {})
    data["errors"] = list(errors) if errors else None
    return data


@dataclass(eq=False)
class Subscriber:
    """One postgres_changes binding of one joined channel."""

    channel: Any  # channels.Channel (kept loose: cdc does not need the socket code)
    binding_id: int
    event: str
    subscription_id: str


Deliver = Callable[[Any, dict[str, Any]], Awaitable[None]]


async def connect(db: DbSettings, application_name: str) -> psycopg.AsyncConnection[Any]:
    """One autocommit connection labelled as Realtime labels its pools."""
    return await psycopg.AsyncConnection.connect(**db.conninfo(application_name), autocommit=True)


async def prepare_database(settings: Settings) -> None:
    """Realtime's boot in the database: its own migrations, the seed of the self-host tenant
    (deleted and inserted again, secrets encrypted with DB_ENC_KEY), the tenant's ``realtime``
    schema. Retries the connection for 30 s (the db may still be starting)."""
    db = settings.db
    assert db is not None
    deadline, delay = time.monotonic() + 30, 0.2
    while True:
        try:
            conn = await connect(db, "realtime_migrations")
            break
        except psycopg.OperationalError as exc:
            if time.monotonic() > deadline:
                raise
            log("error", f"DatabaseConnectionError: {pg_error_text(exc)}")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)
    params = {
        "tenant": settings.tenant,
        "key": db.enc_key,
        "jwt_secret": settings.jwt_secret,
        "db_host": db.host,
        "db_port": str(db.port),
        "db_name": db.name,
        "db_user": db.user,
        "db_password": db.password,
    }
    async with conn:
        async with conn.transaction():
            await conn.execute("select pg_advisory_xact_lock(8201)")  # one migrator at a time
            await conn.execute(tenant_sql.CONTROL_SCHEMA)
            if db.after_connect_query:
                await conn.execute(db.after_connect_query)
            for statement in tenant_sql.SEED_TENANT:
                await conn.execute(statement, params)
            await conn.execute(tenant_sql.TENANT_SCHEMA)
    log("info", f"Seeded tenant {settings.tenant}; realtime schema migrated", settings.tenant)


def pg_error_text(exc: BaseException) -> str:
    """A Postgrex-like one-liner: ``ERROR 55000 (…) message``."""
    diag = getattr(exc, "diag", None)
    code = getattr(diag, "sqlstate", None) if diag is not None else None
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return f"ERROR {code} {message}" if code else message


class PostgresCdc:
    """The tenant's postgres_cdc_rls workers and the subscribers they serve."""

    def __init__(self, settings: Settings, deliver: Deliver) -> None:
        assert settings.db is not None
        self.settings = settings
        self.db: DbSettings = settings.db
        self.deliver = deliver
        self.subscribers: dict[str, Subscriber] = {}
        self.extension: dict[str, Any] = dict(DEFAULT_EXTENSION)
        self.manager: psycopg.AsyncConnection[Any] | None = None
        self.manager_lock = asyncio.Lock()
        self.poller: asyncio.Task[None] | None = None
        self.idle_since: float | None = None

    # -- subscription manager --

    async def subscribe(
        self, channel: Any, bindings: list[tuple[int, dict[str, Any]]], claims: Mapping[str, Any]
    ) -> tuple[str, str]:
        """Insert the channel's bindings in one transaction (one bad table fails them all, as
        in Realtime); (status, message) for the ``system`` reply."""
        try:
            rows = [self._row(binding_id, binding, claims) for binding_id, binding in bindings]
        except FilterError as exc:
            return "error", str(exc)
        async with self.manager_lock:
            try:
                try:
                    failed = await self._insert(rows)
                except psycopg.OperationalError:  # the db restarted under the manager: connect again
                    self.manager = None
                    failed = await self._insert(rows)
            except psycopg.Error as exc:
                self._idle_if_unused()
                params = ", ".join(elixir_inspect(_shown(b)) for _, b in bindings)
                return "error", (
                    "Unable to subscribe to changes with given parameters. An exception happened so please check"
                    f" your connect parameters: [{params}]. Exception: {pg_error_text(exc)}"
                )
        if failed is not None:
            self._idle_if_unused()
            return "error", (
                "Subscription insert failed with 0 rows. Check that tables are part of publication"
                f" {self.extension['publication']} and subscription params are correct:"
                f" {elixir_inspect(_shown(failed))}"
            )
        for row in rows:
            self.subscribers[row["id"]] = Subscriber(channel, row["binding_id"], row["action"], row["id"])
        self.idle_since = None
        return "ok", "Subscribed to PostgreSQL"

    def _row(self, binding_id: int, binding: Mapping[str, Any], claims: Mapping[str, Any]) -> dict[str, Any]:
        event = str(binding.get("event", "*")).upper()
        if event not in EVENTS:
            raise FilterError(f"Error parsing `event` params: {binding.get('event')!r}")
        filters = parse_filter(binding.get("filter"))
        return {
            "id": str(uuid.uuid4()),
            "binding_id": binding_id,
            "binding": binding,
            "action": event,
            "schema": str(binding.get("schema") or "public"),
            "table": str(binding.get("table") or "*"),
            "filters": json.dumps(filters),
            "claims": json.dumps(dict(claims)),
            "publication": self.extension["publication"],
        }

    async def _insert(self, rows: list[dict[str, Any]]) -> Mapping[str, Any] | None:
        """The rows in one transaction; the binding that matched no published table, if any."""
        conn = await self._manager()
        failed: Mapping[str, Any] | None = None
        async with conn.transaction():
            for row in rows:
                cursor = await conn.execute(tenant_sql.INSERT_SUBSCRIPTION, row)
                if cursor.rowcount == 0:
                    failed = row["binding"]
                    raise psycopg.Rollback()  # leaves the block, rolling back every row
        return failed

    async def _manager(self) -> psycopg.AsyncConnection[Any]:
        """The manager's connection; (re)made with the worker start: it empties the
        subscriptions of an earlier run and reads the tenant's extension settings."""
        if self.manager is not None and not self.manager.closed and not self.manager.broken:
            return self.manager
        self.manager = await connect(self.db, "realtime_subscription_manager")
        self.extension = {**DEFAULT_EXTENSION, **await self._extension_settings(self.manager)}
        if not self.subscribers:
            await self.manager.execute(tenant_sql.DELETE_ALL_SUBSCRIPTIONS)
        self._start_poller()  # WorkerSupervisor starts both workers at the first join, whatever it gives
        return self.manager

    async def _extension_settings(self, conn: psycopg.AsyncConnection[Any]) -> dict[str, Any]:
        with contextlib.suppress(psycopg.Error):
            cursor = await conn.execute(tenant_sql.EXTENSION_SETTINGS, {"tenant": self.settings.tenant})
            row = await cursor.fetchone()
            if row and isinstance(row[0], dict):
                return {k: v for k, v in row[0].items() if k in DEFAULT_EXTENSION}
        return {}

    def _idle_if_unused(self) -> None:
        """Without subscribers the workers count down to their stop (from the first idle moment)."""
        if not self.subscribers and self.idle_since is None:
            self.idle_since = time.monotonic()

    async def unsubscribe(self, channel: Any) -> None:
        """Delete the channel's subscription rows (Realtime's delete queue does it later)."""
        ids = [sid for sid, sub in self.subscribers.items() if sub.channel is channel]
        if not ids:
            return
        for sid in ids:
            del self.subscribers[sid]
        if not self.subscribers:
            self.idle_since = time.monotonic()
        async with self.manager_lock:
            with contextlib.suppress(psycopg.Error):
                conn = await self._manager()
                await conn.execute(tenant_sql.DELETE_SUBSCRIPTIONS, {"ids": ids})

    # -- replication poller --

    def _start_poller(self) -> None:
        if self.poller is None or self.poller.done():
            self.poller = asyncio.create_task(self._poll_forever())

    def _should_stop(self) -> bool:
        return not self.subscribers and self.idle_since is not None and time.monotonic() - self.idle_since > STOP_AFTER

    async def _poll_forever(self) -> None:
        """Prepare the slot and poll; on any database error start again after a back-off."""
        backoff = BACKOFF_MIN
        slot = slot_name(str(self.extension["slot_name"]), self.db.slot_name_suffix)
        while not self._should_stop():
            stage = "PoolingReplicationPreparationError"
            try:
                async with await connect(self.db, "realtime_rls") as conn:
                    await self._prepare(conn, slot)
                    stage, backoff = "PoolingReplicationError", BACKOFF_MIN
                    await self._poll(conn, slot)
            except psycopg.Error as exc:
                log("error", f"{stage}: {pg_error_text(exc)}", self.settings.tenant)
                await asyncio.sleep(backoff * random.uniform(0.5, 1.0))
                backoff = min(backoff * 2, BACKOFF_MAX)
        await self._stop_workers()

    async def _prepare(self, conn: psycopg.AsyncConnection[Any], slot: str) -> None:
        """Wait for a publication with tables (no slot for an empty one), then make the slot."""
        interval = self._interval() * IDLE_MULTIPLIER
        while not self._should_stop():
            cursor = await conn.execute(tenant_sql.PUBLICATION_TABLES, {"publication": self.extension["publication"]})
            row = await cursor.fetchone()
            if row and row[0]:
                await conn.execute(tenant_sql.PREPARE_SLOT, {"slot": slot})
                return
            await asyncio.sleep(interval)

    def _interval(self) -> float:
        return float(self.extension.get("poll_interval_ms") or 100) / 1000

    async def _poll(self, conn: psycopg.AsyncConnection[Any], slot: str) -> None:
        params = {
            "publication": self.extension["publication"],
            "slot": slot,
            "max_changes": int(self.extension["poll_max_changes"]),
            "max_record_bytes": int(self.extension["poll_max_record_bytes"]),
        }
        while not self._should_stop():
            async with conn.cursor(row_factory=tuple_row) as cursor:
                await cursor.execute(tenant_sql.LIST_CHANGES, params)
                rows = await cursor.fetchall()
            changes = [row for row in rows if row[0] is not None]
            consumed = next((row[3] for row in rows if row[0] is None), 0) or 0
            for wal, subscription_ids, errors, _ in changes:
                await self._dispatch(wal, subscription_ids or [], errors)
            if changes:
                continue  # Realtime polls again at once after a busy poll
            await asyncio.sleep(self._interval() * (1 if consumed else IDLE_MULTIPLIER))

    async def _dispatch(self, wal: Mapping[str, Any], subscription_ids: list[Any], errors: list[str] | None) -> None:
        """One frame per channel with the ids of its bindings that see this change's event."""
        per_channel: dict[int, tuple[Any, list[int]]] = {}
        for subscription_id in subscription_ids:
            subscriber = self.subscribers.get(str(subscription_id))
            if subscriber is None or subscriber.event not in ("*", wal.get("type")):
                continue
            entry = per_channel.setdefault(id(subscriber.channel), (subscriber.channel, []))
            entry[1].append(subscriber.binding_id)
        data = change_data(wal, errors)
        for channel, binding_ids in per_channel.values():
            await self.deliver(channel, {"ids": binding_ids, "data": data})

    async def _stop_workers(self) -> None:
        """Both workers end (no subscriber for 10 minutes): the slot goes with the poller's session."""
        if self.manager is not None:
            with contextlib.suppress(psycopg.Error):
                await self.manager.close()
            self.manager = None

    async def close(self) -> None:
        """Shut down: the poller's session ends, and with it the temporary slot."""
        if self.poller is not None:
            self.poller.cancel()
            with contextlib.suppress(asyncio.CancelledError, psycopg.Error):
                await self.poller
        await self._stop_workers()


def _shown(binding: Mapping[str, Any]) -> dict[str, Any]:
    """A binding as Realtime prints its params in the system message."""
    return {k: v for k, v in binding.items() if k in ("event", "schema", "table", "filter")}
