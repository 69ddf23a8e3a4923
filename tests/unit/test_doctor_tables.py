"""doctor's database checks are pure: psql's output in, ✓/✗ with the fixing SQL out.

The healthy output below is what `readiness_script('public.wells')` printed on the sandbox's
db (Debian's PostgreSQL 15 with wal2json, the Realtime stand-in subscribed); each fault test
changes one fact the way that fault changes it on a real database."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from supakong.checks import FAIL, OK, SKIP
from supakong.doctor_tables import (
    TableReadiness,
    event_cause,
    parse_readiness,
    readiness_script,
    table_checks,
)
from supakong.errors import DeployError
from supakong.supabase_db import DbContainer, find_db_container

HEALTHY_OUTPUT = """\
@@server\t{"version": "15.18 (Debian 15.18-0+deb12u1)", "database": "postgres", "wal_level": "logical", \
"output_plugins": null, "pending_restart": [], "max_replication_slots": 5}
@@wal2json\t{"installed": true}
@@slots\t[{"app": "realtime_rls", "pid": 570, "name": "supabase_realtime_replication_slot_", "active": true, \
"plugin": "wal2json", "lag_bytes": 0, "temporary": true}]
@@sessions\t{"realtime_rls": 1, "realtime_subscription_manager": 1}
@@publication\t{"delete": true, "exists": true, "insert": true, "tables": 1, "update": true, "truncate": true, \
"all_tables": false}
@@subscriptions\t{"total": 0}
@@tenants\t[{"suspend": false, "extensions": [{"type": "postgres_cdc_rls", "slot_name": \
"supabase_realtime_replication_slot", "publication": "supabase_realtime"}], "external_id": "realtime-dev"}]
@@table\t{"pk": ["id"], "rls": true, "kind": "r", "exists": true, "member": true, "identity_index": null, \
"replica_identity": "d"}
@@policies\t[{"cmd": "SELECT", "name": "Allow anonymous access", "roles": ["anon"], "permissive": "PERMISSIVE"}]
@@grants\t{"anon": {"usage": true, "select": true, "pk_select": true}, "authenticated": {"usage": true, \
"select": true, "pk_select": true}}
"""
TABLE_CHECK_NAMES = [
    "db container",
    "table",
    "publication",
    "primary key",
    "replica identity",
    "rls",
    "select grant",
    "wal_level",
    "replication slots",
    "realtime slot",
    "tenant row",
]
DB = DbContainer("supabase-db", "supabase/postgres:15.8.1.085", True, "compose service db")


def healthy_facts() -> dict[str, Any]:
    facts, errors = parse_readiness(HEALTHY_OUTPUT)
    assert errors == ()
    return facts


def readiness(facts: dict[str, Any] | None = None, table: str = "public.wells") -> TableReadiness:
    return TableReadiness(table, "supabase_realtime", "realtime-dev", DB, "supabase_admin", facts or healthy_facts())


def healthy_readiness() -> TableReadiness:
    return readiness()


def by_name(r: TableReadiness) -> dict[str, Any]:
    return {check.name: check for check in table_checks(r)}


def with_change(path: str, value: Any) -> TableReadiness:
    facts = copy.deepcopy(healthy_facts())
    key, _, inner = path.partition(".")
    if inner:
        facts[key][inner] = value
    else:
        facts[key] = value
    return readiness(facts)


def test_a_ready_table_is_all_ticks_in_the_order_a_change_travels():
    checks = table_checks(healthy_readiness())
    assert [c.name for c in checks] == TABLE_CHECK_NAMES
    assert [c.status for c in checks] == [OK] * len(checks), "\n".join(f"{c.name}: {c.detail}" for c in checks)
    assert (
        "supabase_realtime_replication_slot_ active (realtime_rls 570)"
        in by_name(healthy_readiness())["realtime slot"].detail
    )


def test_table_outside_the_publication_names_it_and_the_add_table_sql_with_its_risk():
    check = by_name(with_change("table.member", False))["publication"]
    assert check.status == FAIL
    assert "public.wells is not in publication supabase_realtime" in check.detail
    assert check.fix.startswith("alter publication supabase_realtime add table public.wells;")
    assert "re-subscribes every channel" in check.fix


def test_adding_a_table_without_primary_key_warns_that_its_updates_would_fail():
    facts = copy.deepcopy(healthy_facts())
    facts["table"].update(member=False, pk=None)
    check = by_name(readiness(facts))["publication"]
    assert "has no primary key" in check.fix and "UPDATE and DELETE fail" in check.fix
    assert "replica identity full" in check.fix


def test_a_publication_without_update_and_delete_is_a_silent_loss():
    facts = copy.deepcopy(healthy_facts())
    facts["publication"].update(update=False, delete=False)
    check = by_name(readiness(facts))["publication"]
    assert check.status == FAIL and "UPDATE, DELETE events never arrive" in check.detail
    assert "set (publish = 'insert, update, delete, truncate')" in check.fix


def test_rls_without_a_select_policy_drops_changes_silently_and_names_the_policy_sql():
    check = by_name(with_change("policies", []))["rls"]
    assert check.status == FAIL
    assert "no SELECT policy lets anon or authenticated read public.wells" in check.detail
    assert 'create policy "Allow anonymous access" on public.wells for select to anon using (true);' in check.fix
    assert "risk:" in check.fix


def test_an_update_only_policy_is_no_select_policy():
    policies = [{"cmd": "UPDATE", "name": "p", "roles": ["anon"], "permissive": "PERMISSIVE"}]
    assert by_name(with_change("policies", policies))["rls"].status == FAIL
    restrictive = [{"cmd": "SELECT", "name": "p", "roles": ["public"], "permissive": "RESTRICTIVE"}]
    assert by_name(with_change("policies", restrictive))["rls"].status == FAIL
    everyone = [{"cmd": "ALL", "name": "p", "roles": ["public"], "permissive": "PERMISSIVE"}]
    assert by_name(with_change("policies", everyone))["rls"].status == OK


def test_rls_off_says_every_row_reaches_every_anon_subscriber():
    check = by_name(with_change("table.rls", False))["rls"]
    assert check.status == FAIL and "every subscriber with the anon key receives every row" in check.detail
    assert check.fix.startswith("alter table public.wells enable row level security;")


def test_revoked_select_is_error_401_with_the_grant_sql():
    grants = {"anon": {"usage": True, "select": False, "pk_select": False}}
    check = by_name(with_change("grants", grants))["select grant"]
    assert check.status == FAIL
    assert "anon cannot SELECT public.wells" in check.detail and "Error 401: Unauthorized" in check.detail
    assert "grant usage on schema public to anon; grant select on public.wells to anon;" in check.fix


def test_no_primary_key_is_error_400_and_no_replica_identity():
    facts = copy.deepcopy(healthy_facts())
    facts["table"].update(pk=None)
    checks = by_name(readiness(facts))
    assert "Error 400: Bad Request, no primary key" in checks["primary key"].detail
    assert checks["replica identity"].status == FAIL
    assert "replica identity full" in checks["replica identity"].fix and "more WAL" in checks["replica identity"].fix


def test_wal_level_replica_names_the_alter_system_and_the_restart():
    check = by_name(with_change("server.wal_level", "replica"))["wal_level"]
    assert check.status == FAIL and "wal_level is replica" in check.detail
    assert check.fix.startswith("alter system set wal_level = logical; then `docker restart supabase-db`")


def test_debian_15_20_without_wal2json_in_output_plugin_libraries_is_named():
    check = by_name(with_change("server.output_plugins", "pgoutput, test_decoding"))["wal_level"]
    assert check.status == FAIL and "output_plugin_libraries" in check.fix


def test_realtime_slot_gone_while_its_workers_run_names_the_exhausted_slots():
    facts = copy.deepcopy(healthy_facts())
    facts["slots"] = [
        {"name": f"stale_{n}", "active": False, "plugin": "test_decoding", "lag_bytes": 0} for n in range(5)
    ]
    facts["subscriptions"] = {"total": 1}
    checks = by_name(readiness(facts))
    assert checks["realtime slot"].status == FAIL
    assert "hold no supabase_realtime_replication_slot* slot" in checks["realtime slot"].detail
    assert checks["replication slots"].status == FAIL
    assert "5 of max_replication_slots=5 used" in checks["replication slots"].detail
    assert "select pg_drop_replication_slot('stale_0');" in checks["replication slots"].fix


def test_no_slot_and_no_workers_is_not_a_failure():
    facts = copy.deepcopy(healthy_facts())
    facts.update(slots=[], sessions={}, subscriptions={"total": 0})
    assert by_name(readiness(facts))["realtime slot"].status == SKIP


def test_a_lagging_realtime_slot_is_a_stuck_poller():
    facts = copy.deepcopy(healthy_facts())
    facts["slots"][0]["lag_bytes"] = 200 * 1024 * 1024
    check = by_name(readiness(facts))["realtime slot"]
    assert check.status == FAIL and "200 MiB behind" in check.detail


def test_tenant_row_missing_or_suspended():
    missing = by_name(with_change("tenants", []))["tenant row"]
    assert missing.status == FAIL and "no tenant 'realtime-dev'" in missing.detail
    suspended = copy.deepcopy(healthy_facts())
    suspended["tenants"][0]["suspend"] = True
    check = by_name(readiness(suspended))["tenant row"]
    assert "update _realtime.tenants set suspend = false where external_id = 'realtime-dev';" == check.fix


def test_without_a_verify_table_only_the_database_wide_checks_run():
    facts = {k: v for k, v in healthy_facts().items() if k not in ("table", "policies", "grants")}
    checks = table_checks(readiness(facts, table=""))
    assert [c.name for c in checks] == ["db container", "wal_level", "replication slots", "tenant row"]
    assert all(c.status == OK for c in checks)


def test_a_missing_table_skips_the_table_checks():
    checks = by_name(with_change("table", {"exists": False, "member": False}))
    assert checks["table"].status == FAIL and "public.wells does not exist" in checks["table"].detail
    assert all(checks[n].status == SKIP for n in ("publication", "primary key", "rls", "select grant"))


def test_a_query_that_did_not_answer_is_skipped_with_psqls_words():
    facts = healthy_facts()
    del facts["grants"]
    r = TableReadiness("public.wells", "supabase_realtime", "realtime-dev", DB, "postgres", facts, ("ERROR: boom",))
    check = by_name(r)["select grant"]
    assert check.status == SKIP and "ERROR: boom" in check.detail


def test_no_db_container_is_one_failed_row_with_the_inventory_key():
    r = TableReadiness("public.wells", "supabase_realtime", "realtime-dev", None, error="no Supabase db container")
    (check,) = table_checks(r)
    assert check.status == FAIL and "db_container" in check.fix


def test_event_cause_takes_the_most_basic_failed_check():
    facts = copy.deepcopy(healthy_facts())
    facts["server"]["wal_level"] = "replica"
    facts["policies"] = []
    cause = event_cause(table_checks(readiness(facts)))
    assert cause is not None and cause.cause.startswith("wal_level: wal_level is replica")
    assert event_cause(table_checks(healthy_readiness())) is None


def test_parse_keeps_lines_that_are_not_facts_as_errors():
    facts, errors = parse_readiness('@@server\t{"wal_level": "logical"}\nERROR:  permission denied\n@@bad\t{x\n')
    assert facts == {"server": {"wal_level": "logical"}}
    assert errors == ("ERROR:  permission denied", "@@bad\t{x")


def test_the_script_is_read_only_and_refuses_names_that_are_not_identifiers():
    script = readiness_script("public.wells")
    assert script.startswith("set default_transaction_read_only = on;")
    assert "'wells'" in script and "'public'" in script
    for statement in ("insert ", "update ", "delete ", "drop ", "alter ", "create "):
        assert statement not in script.lower()
    with pytest.raises(DeployError, match="expected schema.table"):
        readiness_script("public.wells'; drop table x; --")
    assert "@@table" not in readiness_script("")


def container(name: str, image: str, labels: dict[str, str] | None = None, state: str = "running") -> dict:
    return {"Names": [f"/{name}"], "Image": image, "Labels": labels or {}, "State": state}


def test_the_db_container_is_found_by_compose_service_or_image_preferring_realtimes_project():
    project = {"com.docker.compose.project": "supabase"}
    listing = [
        container("realtime-dev.supabase-realtime", "supabase/realtime:v2.78.15", project),
        container("other-db", "supabase/postgres:15.1", {"com.docker.compose.service": "db"}),
        container("supabase-db", "supabase/postgres:15.8.1.085", {**project, "com.docker.compose.service": "db"}),
        container("kong", "kong:2.8.1", project),
    ]
    found = find_db_container(listing, "realtime-dev.supabase-realtime")
    assert found is not None and found.name == "supabase-db" and found.reason == "compose service db"
    by_image = find_db_container([container("pg", "supabase/postgres:15.8.1.085")], "rt")
    assert by_image is not None and by_image.reason == "image supabase/postgres"
    assert find_db_container([container("kong", "kong:2.8.1")], "rt") is None
    pinned = find_db_container(listing, "rt", pinned="other-db")
    assert pinned is not None and pinned.name == "other-db" and pinned.reason == "inventory db_container"
    assert find_db_container(listing, "rt", pinned="nope") is None


def test_json_facts_round_trip_from_the_script_marker():
    line = "@@grants\t" + json.dumps({"anon": {"usage": True}})
    assert parse_readiness(line)[0]["grants"]["anon"]["usage"] is True
