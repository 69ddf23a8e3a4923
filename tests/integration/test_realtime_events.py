"""Realtime events end to end on the sandbox: a real PostgreSQL 15 with wal2json, the Realtime
stand-in polling its temporary slot, Kong in front.

The official clients (realtime-js through node, supabase's Python `realtime`) receive an
INSERT made with psql in the db container; `verify-realtime --event` reaches EVENTS with a
latency; `doctor` lists the table checks ✓. Then each fault that leaves a subscribed channel
silent is injected on the sandbox's database (on the verify table public.wells and on the
probe table supakong.probe): doctor names it with the SQL that fixes it, and `--event`
fails with that cause. Every test ends by restoring the db's baseline (SQL, no new initdb).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from realtime import AsyncRealtimeClient, RealtimeSubscribeStates
from test_diagnosis import engine

from supakong.deploy import DeployOptions, deploy_host
from supakong.doctor import doctor_host
from supakong.report import BufferOutput
from supakong.sandbox import SandboxSpec
from supakong.sandbox.db import psql, restore_baseline, wait_db_ready
from supakong.verify import verify_realtime
from supakong.verify_event import PROBE_SCHEMA, PROBE_TABLE, probe_table_sql
from supakong.verify_run import VerifyOptions, verification_lines, verify_host

REPO = Path(__file__).resolve().parents[2]
JS_DIR = REPO / "tests" / "standins" / "js"
EVENT = VerifyOptions(event=True, timeout=3.0)


def sql(spec: SandboxSpec, *statements: str) -> str:
    with engine(spec) as client:
        return psql(client, spec, *statements)


@pytest.fixture()
def ready(sandbox_spec: SandboxSpec, host, secrets) -> Iterator[SandboxSpec]:
    """Kong serving the rendered config, the probe table in place; the db baseline afterwards."""
    if not verify_realtime(host.public_url, secrets.anon_key, timeout=3.0).ok:
        deploy_host(host, DeployOptions(verify=False), BufferOutput())
    if sql(sandbox_spec, f"select to_regclass('{PROBE_TABLE}') is null").strip() == "t":
        sql(sandbox_spec, *probe_table_sql().splitlines())
    yield sandbox_spec
    with engine(sandbox_spec) as client:
        restore_baseline(client, sandbox_spec)


def event_report(host, secrets, options: VerifyOptions = EVENT) -> tuple[str, object]:
    verification = verify_host(host, secrets, options)
    return "\n".join(verification_lines(verification)), verification


def doctor_text(host) -> str:
    out = BufferOutput()
    doctor_host(host, VerifyOptions(timeout=3.0), out)
    return out.text


# --------------------------------------------------------------------------- events flow


def test_verify_event_reaches_events_with_a_latency_and_leaves_no_row(ready, host, secrets):
    text, verification = event_report(host, secrets)
    assert verification.report.state == "EVENTS", text
    stage = verification.report.stage("event")
    assert stage is not None and stage.ok and "INSERT on supakong.probe received" in stage.detail
    assert stage.seconds < 3.0
    assert sql(ready, f"select count(*) from {PROBE_TABLE}").strip() == "0"  # deleted after the event


def test_verify_event_makes_the_probe_table_on_first_use_and_shows_its_sql(sandbox_spec, host, secrets):
    with engine(sandbox_spec) as client:
        restore_baseline(client, sandbox_spec)  # no supakong schema
    if not verify_realtime(host.public_url, secrets.anon_key, timeout=3.0).ok:
        deploy_host(host, DeployOptions(verify=False), BufferOutput())
    try:
        first, verification = event_report(host, secrets)
        assert verification.report.state == "EVENTS", first
        assert "created supakong.probe in" in first and "alter publication supabase_realtime add table" in first
        again, _ = event_report(host, secrets)
        assert "created supakong.probe" not in again
        policies = sql(sandbox_spec, f"select count(*) from pg_policies where schemaname = '{PROBE_SCHEMA}'").strip()
        assert policies == "1"
    finally:
        with engine(sandbox_spec) as client:
            restore_baseline(client, sandbox_spec)


def test_doctor_lists_the_table_checks_ticked(ready, host):
    text = doctor_text(host)
    for name in ("db container", "table", "publication", "primary key", "rls", "select grant", "wal_level"):
        assert f"✓ {name} " in text, text
    assert "✓ realtime slot" in text and "supabase_realtime_replication_slot" in text
    assert "✓ tenant row" in text and "found by compose service db" in text


def js_insert_listener(url: str, token: str) -> subprocess.Popen[str]:
    if not (JS_DIR / "node_modules").is_dir() or shutil.which("node") is None:
        pytest.fail("realtime-js is not installed: run `make js` (make test does)")
    return subprocess.Popen(
        ["node", str(JS_DIR / "insert_event.mjs"), url, token, "public", "wells"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_realtime_js_receives_an_insert_made_with_psql(ready, host, secrets):
    listener = js_insert_listener(f"{host.public_url.replace('http', 'ws')}/realtime/v1", secrets.anon_key)
    try:
        assert listener.stdout is not None
        seen = [listener.stdout.readline().strip(), listener.stdout.readline().strip()]
        assert seen == ["status SUBSCRIBED", "system ok Subscribed to PostgreSQL"], seen
        time.sleep(0.6)  # Realtime's poller picks the new subscriber's slot up (facts: wait for the slot)
        sql(ready, "insert into public.wells (name) values ('from psql, for realtime-js')")
        line = listener.stdout.readline().strip()
        assert listener.wait(timeout=20) == 0, line
    finally:
        listener.kill()
    assert line.startswith("insert ")
    record = json.loads(line.removeprefix("insert "))
    assert record["name"] == "from psql, for realtime-js" and isinstance(record["id"], int)


def test_official_python_client_receives_an_insert_made_with_psql(ready, host, secrets):
    async def scenario() -> dict:
        client = AsyncRealtimeClient(f"{host.public_url}/realtime/v1", token=secrets.anon_key, auto_reconnect=False)
        await client.connect()
        try:
            channel = client.channel("py-insert")
            events: asyncio.Queue[dict] = asyncio.Queue()
            system: asyncio.Queue[object] = asyncio.Queue()
            channel.on_postgres_changes("INSERT", callback=events.put_nowait, schema="public", table="wells")
            channel.on_system(system.put_nowait)
            states: list[object] = []
            await channel.subscribe(lambda state, _err: states.append(state))
            await asyncio.wait_for(system.get(), 10)
            assert states == [RealtimeSubscribeStates.SUBSCRIBED]
            await asyncio.sleep(0.6)
            await asyncio.to_thread(sql, ready, "insert into public.wells (name) values ('from psql, for python')")
            return await asyncio.wait_for(events.get(), 10)
        finally:
            await client.close()

    payload = asyncio.run(scenario())
    data = payload["data"]
    assert (data["schema"], data["table"], data["errors"]) == ("public", "wells", None)
    assert data["record"]["name"] == "from psql, for python"
    assert {"name": "id", "type": "int8"} in data["columns"]
    assert data["commit_timestamp"].endswith("Z") and payload["ids"]


# --------------------------------------------------------------------------- faults


def drop_from_publication(spec: SandboxSpec) -> None:
    sql(spec, f"alter publication supabase_realtime drop table public.wells, {PROBE_TABLE}")


def rls_without_policy(spec: SandboxSpec) -> None:
    sql(spec, 'drop policy "Allow anonymous access" on public.wells', f"drop policy probe_read on {PROBE_TABLE}")


def revoke_grant(spec: SandboxSpec) -> None:
    sql(spec, "revoke select on public.wells from anon", f"revoke select on {PROBE_TABLE} from anon")


def realtime_slot_gone(spec: SandboxSpec) -> None:
    """Fill max_replication_slots while Realtime's poller is cut off, so it cannot make its
    temporary slot again: the slot is gone for as long as the slots stay taken."""
    sql(spec, *(f"select pg_create_logical_replication_slot('supakong_fault_{n}', 'test_decoding')" for n in range(4)))
    # One statement, so the poller cannot make its slot again between the two.
    sql(
        spec,
        "do $$ begin perform pg_terminate_backend(active_pid, 5000) from pg_replication_slots"
        " where slot_name like 'supabase\\_realtime%';"
        " perform pg_create_logical_replication_slot('supakong_fault_4', 'test_decoding'); end $$",
    )


def wal_level_replica(spec: SandboxSpec) -> None:
    sql(spec, "alter system set wal_level = replica")
    with engine(spec) as client:
        client.restart(spec.db_container, timeout=10)
        wait_db_ready(client, spec)


FAULTS = {
    "table dropped from the publication": (
        drop_from_publication,
        ["✗ publication", "public.wells is not in publication supabase_realtime"],
        "alter publication supabase_realtime add table public.wells;",
        "not in publication supabase_realtime",
    ),
    "rls without policy": (
        rls_without_policy,
        ["✗ rls", "RLS is on and no SELECT policy lets anon or authenticated read public.wells"],
        'create policy "Allow anonymous access" on public.wells for select to anon using (true);',
        "rls: RLS is on and no SELECT policy lets anon or authenticated read supakong.probe",
    ),
    "grant revoked": (
        revoke_grant,
        ["✗ select grant", "anon cannot SELECT public.wells"],
        "grant select on public.wells to anon;",
        "select grant: anon cannot SELECT supakong.probe",
    ),
    "realtime's slot gone": (
        realtime_slot_gone,
        ["✗ realtime slot", "hold no supabase_realtime_replication_slot* slot", "✗ replication slots"],
        "select pg_drop_replication_slot('supakong_fault_0');",
        "replication slots: 5 of max_replication_slots=5 used",
    ),
    "wal_level replica": (
        wal_level_replica,
        ["✗ wal_level", "wal_level is replica"],
        "alter system set wal_level = logical; then `docker restart",
        "wal_level: wal_level is replica",
    ),
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_fault_that_silences_events_is_named_by_doctor_and_by_verify_event(fault, ready, host, secrets):
    inject, doctor_says, doctor_fix, event_cause = FAULTS[fault]
    inject(ready)
    text = doctor_text(host)
    for words in doctor_says:
        assert words in text, text
    assert f"fix: {doctor_fix}" in text or doctor_fix in text, text
    report_text, verification = event_report(host, secrets)
    assert not verification.ok and verification.report.state != "EVENTS", report_text
    diagnosis = verification.report.diagnosis
    assert diagnosis is not None and event_cause in diagnosis.cause, report_text
