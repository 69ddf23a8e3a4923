"""The probe's `event` stage (verify-realtime --event) against a Phoenix stand-in: the
binding it sends, the frame it accepts, the state EVENTS, and the cause it names when no
event comes (the readiness checks' answer, given here by a fake `explain`)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from test_verify import GOOD_KEY, Behaviour, FaultyRealtime
from websockets.asyncio.server import ServerConnection, serve

from supakong.verify import EVENTS, SUBSCRIBED, Diagnosis, EventProbe, format_report, verify_realtime_async
from supakong.verify_event import delete_sql, insert_sql, probe_table_sql

NONCE = "6f1c1d3e-8d1a-4a5e-9d49-3b7f0c2a9e11"
RLS_CAUSE = Diagnosis("rls: RLS is on and no SELECT policy lets anon read supakong.probe", "create policy …")


@dataclass
class Database:
    """What the probe did on the 'host', and what the 'database' makes Realtime send."""

    slot_active: bool = True
    answer: str = "event"  # event | none | errors | other_nonce
    steps: list[str] = field(default_factory=list)
    emit: Callable[[dict[str, Any]], None] | None = None

    def frame(self) -> dict[str, Any] | None:
        data: dict[str, Any] = {"schema": "supakong", "table": "probe", "type": "INSERT", "errors": None}
        if self.answer == "none":
            return None
        if self.answer == "errors":
            return {"ids": [1234], "data": {**data, "record": {}, "errors": ["Error 401: Unauthorized"]}}
        nonce = NONCE if self.answer == "event" else str(uuid.uuid4())
        return {"ids": [1234], "data": {**data, "record": {"id": 1, "nonce": nonce}}}

    def probe(self, explained: Diagnosis | None = RLS_CAUSE) -> EventProbe:
        def write() -> None:
            self.steps.append("write")
            frame = self.frame()
            if frame is not None and self.emit is not None:
                self.emit(frame)

        return EventProbe(
            schema="supakong",
            table="probe",
            nonce=NONCE,
            prepare=lambda: (self.slot_active, "Realtime's slot active" if self.slot_active else "no slot"),
            write=write,
            cleanup=lambda: self.steps.append("cleanup"),
            explain=lambda: self.steps.append("explain") or explained,  # type: ignore[func-returns-value]
        )


@dataclass
class EventBehaviour(Behaviour):
    """FaultyRealtime's faults, plus the joins it saw and the postgres_changes system message
    it answers with (``None``: Realtime's ok message)."""

    system: tuple[str, str] | None = None
    joins: list[dict[str, Any]] = field(default_factory=list)


class EventingStandIn(FaultyRealtime):
    """test_verify's FaultyRealtime, able to push a postgres_changes frame to the last join
    (the real stand-in with the sandbox's db plays these paths in test_realtime_events.py)."""

    def __init__(self, behaviour: EventBehaviour, database: Database, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(behaviour)
        self.event_behaviour = behaviour
        self.sockets: list[tuple[ServerConnection, str]] = []

        def emit(payload: dict[str, Any]) -> None:  # called from the probe's worker thread
            asyncio.run_coroutine_threadsafe(self.push(payload), loop)

        database.emit = emit

    async def answer_join(self, send, join_ref, ref, topic, payload, ws) -> None:  # type: ignore[no-untyped-def]
        self.sockets.append((ws, topic))
        self.event_behaviour.joins.append(payload)
        if self.event_behaviour.system is None:
            await super().answer_join(send, join_ref, ref, topic, payload, ws)
            return
        bindings = [dict(b, id=1234) for b in payload["config"]["postgres_changes"]]
        await send(join_ref, ref, topic, "phx_reply", {"status": "ok", "response": {"postgres_changes": bindings}})
        status, message = self.event_behaviour.system
        system = {"extension": "postgres_changes", "status": status, "message": message, "channel": topic[9:]}
        await send(join_ref, None, topic, "system", system)

    async def push(self, payload: dict[str, Any]) -> None:
        ws, topic = self.sockets[-1]
        await ws.send(json.dumps([None, None, topic, "postgres_changes", payload]))


def run_probe(database: Database, behaviour: EventBehaviour | None = None, explained: Diagnosis | None = RLS_CAUSE):
    behaviour = behaviour or EventBehaviour()

    async def scenario():
        stand = EventingStandIn(behaviour, database, asyncio.get_running_loop())
        async with serve(
            stand.handler, "127.0.0.1", 0, process_request=stand.process_request, server_header=None
        ) as server:
            port = next(iter(server.sockets)).getsockname()[1]
            return await verify_realtime_async(
                f"http://127.0.0.1:{port}", GOOD_KEY, timeout=1.0, event=database.probe(explained)
            )

    return asyncio.run(scenario()), behaviour


def test_an_insert_event_of_our_row_is_state_events_with_the_latency():
    database = Database()
    report, behaviour = run_probe(database)
    assert report.state == EVENTS and report.ok, format_report(report)
    assert [s.name for s in report.stages][:5] == ["tcp", "upgrade", "join", "postgres_changes", "event"]
    assert "INSERT on supakong.probe received" in report.stage("event").detail
    assert database.steps == ["write", "cleanup"]  # deleted only after the event came
    sent = behaviour.joins[0]["config"]["postgres_changes"]
    assert sent[-1] == {"event": "INSERT", "schema": "supakong", "table": "probe", "filter": f"nonce=eq.{NONCE}"}


def test_no_event_names_the_readiness_cause_and_still_deletes_the_row():
    database = Database(answer="none")
    report, _ = run_probe(database)
    assert report.state == SUBSCRIBED and not report.ok
    assert "no INSERT event within 1 s of the write" in report.stage("event").detail
    assert report.diagnosis == RLS_CAUSE
    assert database.steps == ["write", "explain", "cleanup"]


def test_an_event_of_another_row_is_not_ours():
    report, _ = run_probe(Database(answer="other_nonce"))
    assert not report.ok and "no INSERT event" in report.stage("event").detail


def test_an_event_with_errors_is_a_failure_naming_the_errors_and_the_cause():
    report, _ = run_probe(Database(answer="errors"))
    assert not report.ok
    assert "Error 401: Unauthorized" in report.diagnosis.cause and "rls:" in report.diagnosis.cause


def test_no_realtime_slot_with_a_known_cause_writes_nothing():
    database = Database(slot_active=False)
    report, _ = run_probe(database)
    assert not report.ok and report.stage("event").detail == "not written: no slot"
    assert database.steps == ["explain"]


def test_a_refused_subscription_takes_the_readiness_cause_and_writes_nothing():
    database = Database()
    behaviour = EventBehaviour(system=("error", "Unable to subscribe … Exception: invalid column for filter nonce"))
    report, _ = run_probe(database, behaviour)
    assert not report.ok and report.stage("event") is None
    assert report.diagnosis.cause == RLS_CAUSE.cause
    assert "invalid column for filter nonce" in report.diagnosis.body
    assert database.steps == ["explain"]


def test_no_event_and_no_known_cause_says_every_check_passed():
    report, _ = run_probe(Database(answer="none"), explained=None)
    assert "every readiness check of the probe table passed" in report.diagnosis.cause


def test_the_probe_writes_only_its_own_table_and_only_uuid_nonces():
    assert insert_sql(NONCE) == f"insert into supakong.probe (nonce) values ('{NONCE}');"
    assert delete_sql(NONCE) == f"delete from supakong.probe where nonce = '{NONCE}';"
    with pytest.raises(ValueError):
        insert_sql("x'); drop table public.wells; --")
    sql = probe_table_sql()
    assert "enable row level security" in sql and "to anon, authenticated using (true)" in sql
    assert "alter publication supabase_realtime add table supakong.probe;" in sql
    assert "public." not in sql


def test_the_probe_table_is_made_on_first_use_with_its_sql_shown_and_never_changed_after():
    from supakong.supabase_db import DbContainer
    from supakong.verify_event import ensure_probe_table

    class Database:
        db = DbContainer("supabase-db", "supabase/postgres:15.8.1.085", True, "compose service db")

        def __init__(self, exists: bool) -> None:
            self.exists, self.ran = exists, []

        def probe_table_exists(self) -> bool:
            return self.exists

        def run(self, sql: str) -> str:
            self.ran.append(sql)
            return ""

    fresh = Database(exists=False)
    shown = ensure_probe_table(fresh)  # type: ignore[arg-type]
    assert fresh.ran == [probe_table_sql()]
    assert shown[0] == "created supakong.probe in supabase-db (first use of --event):"
    assert "  alter publication supabase_realtime add table supakong.probe;" in shown
    assert "re-subscribes every channel" in shown[-1]
    existing = Database(exists=True)
    assert ensure_probe_table(existing) == () and existing.ran == []  # type: ignore[arg-type]
