"""The Realtime stand-in's postgres_changes pieces that need no database: Realtime's filter
syntax, the slot name, and the shape of a change's frame data (supabase/realtime
lib/realtime/adapters/changes.ex; the database side runs on the sandbox, see
tests/integration/test_realtime_events.py)."""

from __future__ import annotations

import pytest

from supakong.sandbox.standins.realtime_server.cdc import FilterError, change_data, parse_filter, slot_name


@pytest.mark.parametrize(
    ("text", "filters"),
    [
        (None, []),
        ("", []),
        (
            "nonce=eq.6f1c1d3e-8d1a-4a5e-9d49-3b7f0c2a9e11",
            [{"column": "nonce", "op": "eq", "value": "6f1c1d3e-8d1a-4a5e-9d49-3b7f0c2a9e11"}],
        ),
        ("id=in.(1,2,3)", [{"column": "id", "op": "in", "value": "{1,2,3}"}]),
        ("name=neq.a.b", [{"column": "name", "op": "neq", "value": "a.b"}]),
    ],
)
def test_realtime_filters_become_subscription_filters(text, filters):
    assert parse_filter(text) == filters


@pytest.mark.parametrize("text", ["nonce", "nonce=eq", "=eq.1", "id=like.a%", "id=in.1,2"])
def test_filters_realtime_cannot_parse_are_refused_with_its_words(text):
    with pytest.raises(FilterError, match="Error parsing `filter` params"):
        parse_filter(text)


def test_slot_name_takes_the_suffix_only_when_set():
    assert slot_name("supabase_realtime_replication_slot", None) == "supabase_realtime_replication_slot"
    assert slot_name("supabase_realtime_replication_slot", "") == "supabase_realtime_replication_slot_"
    assert slot_name("supabase_realtime_replication_slot", "2_129") == "supabase_realtime_replication_slot_2_129"


def test_change_data_has_realtimes_fields_per_type():
    wal = {
        "schema": "public",
        "table": "wells",
        "type": "INSERT",
        "commit_timestamp": "2026-12-05T23:10:46.083Z",
        "columns": [{"name": "id", "type": "int8"}],
        "record": {"id": 1},
    }
    assert change_data(wal, []) == {**wal, "errors": None}
    update = change_data({**wal, "type": "UPDATE", "old_record": {"id": 1}}, None)
    assert update["old_record"] == {"id": 1} and update["record"] == {"id": 1}
    delete = change_data({"schema": "public", "table": "wells", "type": "DELETE", "old_record": {"id": 1}}, None)
    assert "record" not in delete and delete["old_record"] == {"id": 1} and delete["columns"] == []
    error = change_data({"schema": "public", "table": "wells", "type": "INSERT"}, ["Error 401: Unauthorized"])
    assert error["errors"] == ["Error 401: Unauthorized"] and error["record"] == {}
