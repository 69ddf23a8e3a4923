"""Tests of supakong.doctor's pure half: the checklist built from gathered facts, the
verify-realtime options, lines and JSON document, and the --url allowlist fence. No host,
no network: facts are values made here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import jwt
import pytest
from test_doctor_tables import TABLE_CHECK_NAMES, healthy_readiness

from supakong.checks import FAIL, OK, SKIP, Check
from supakong.container import ContainerState
from supakong.doctor_checks import (
    build_checklist,
    check_anon_key,
    check_config_loaded,
    check_container,
    check_keys,
    check_kong_target,
    check_live_config,
    check_tenant,
    check_verification,
    checklist_lines,
    checklist_ok,
)
from supakong.doctor_facts import DoctorFacts, expand_placeholders
from supakong.errors import InventoryError, VerifyError
from supakong.inventory import load_inventory
from supakong.kong.target import KongTarget
from supakong.remote_file import RemoteFile
from supakong.secrets import mask
from supakong.verify import CHANNEL_ERROR, SUBSCRIBED, Diagnosis, StageResult, VerifyReport
from supakong.verify_run import (
    HostVerification,
    VerifyOptions,
    apikey_from_env,
    channel_spec,
    check_url_allowed,
    not_run_entries,
    verification_json,
    verification_lines,
    verification_result,
    verify_document,
)

REPO = Path(__file__).resolve().parents[2]
FAB = str(Path(sys.executable).parent / "fab")
NOW = 2_000_000_000.0
JWT_SECRET = "unit-test-realtime-jwt-secret-0123456789abcdef"
STARTED = NOW - 100


def key(role: str, secret: str = JWT_SECRET, exp: float | None = NOW + 3600, **claims: Any) -> str:
    body: dict[str, Any] = {"role": role, "iss": "supabase", **claims}
    if exp is not None:
        body["exp"] = int(exp)
    return jwt.encode(body, secret, algorithm="HS256")


ANON = key("anon")
SERVICE = key("service_role")

CONFIG = """_format_version: '2.1'
_transform: true
consumers:
  - username: anon
    keyauth_credentials:
      - key: '{anon}'
  - username: service_role
    keyauth_credentials:
      - key: '{service}'
acls:
  - consumer: anon
    group: anon
  - consumer: service_role
    group: admin
services:
  - name: realtime-v1-ws
    url: http://realtime-dev.supabase-realtime:4000/socket
    routes:
      - name: realtime-v1-ws
        strip_path: true
        paths:
          - /realtime/v1/
    plugins:
      - name: cors
      - name: key-auth
        config:
          hide_credentials: false
      - name: acl
        config:
          hide_groups_header: true
          allow:
            - admin
            - anon
"""


def config(anon: str = ANON, service: str = SERVICE) -> str:
    return CONFIG.format(anon=anon, service=service)


def stages(*failed: str) -> tuple[StageResult, ...]:
    names = ("tcp", "upgrade", "join", "postgres_changes", "heartbeat", "broadcast", "negative_key")
    return tuple(StageResult(n, n not in failed, 0.0025, f"{n} detail") for n in names)


HEALTHY_REPORT = VerifyReport("ws://h:8000/realtime/v1/websocket?apikey=***&vsn=2.0.0", SUBSCRIBED, stages(), None)
TENANT_REPORT = VerifyReport(
    HEALTHY_REPORT.url,
    CHANNEL_ERROR,
    (StageResult("tcp", True, 0.001, "connected"), StageResult("upgrade", False, 0.006, "404 Not Found")),
    Diagnosis("Realtime found no tenant", "keep preserve_host false", 404, '{"error":"Tenant not found"}'),
)


def kong_state(**changes: Any) -> ContainerState:
    base = ContainerState(
        name="kong",
        exists=True,
        status="running",
        running=True,
        started_at=STARTED,
        health="healthy",
        image="kong:2.8.1",
        env={
            "KONG_DECLARATIVE_CONFIG": "/home/kong/kong.yml",
            "SUPABASE_ANON_KEY": ANON,
            "SUPABASE_SERVICE_KEY": SERVICE,
        },
    )
    return replace(base, **changes)


def realtime_state(**changes: Any) -> ContainerState:
    base = ContainerState(
        name="realtime",
        exists=True,
        status="running",
        running=True,
        started_at=STARTED,
        image="supabase/realtime:v2.129.8",
        env={"API_JWT_SECRET": JWT_SECRET, "SELF_HOST_TENANT_NAME": "realtime-dev"},
    )
    return replace(base, **changes)


def facts(**changes: Any) -> DoctorFacts:
    """A healthy host, with `changes` applied."""
    text = config()
    base = DoctorFacts(
        host="edge-1",
        public_url="http://203.0.113.7:8000",
        config_path="/srv/api/kong-simple.yml",
        config_mount="/home/kong/temp.yml",
        kong_container="kong",
        realtime_container="realtime",
        inventory_keys={"anon": ANON, "service_role": SERVICE},
        file=RemoteFile("/srv/api/kong-simple.yml", True, "f" * 64, len(text), 0o640, 0, 0, int(STARTED - 50)),
        kong=kong_state(),
        realtime=realtime_state(),
        live_text=text,
        effective_text=text,
        effective_source="/home/kong/kong.yml in kong",
        mount_sha256="f" * 64,
        target=KongTarget(),
        verification=HostVerification("edge-1", HEALTHY_REPORT),
        now=NOW,
        tables=healthy_readiness(),
    )
    return replace(base, **changes)


def everything(checks: list[Check]) -> str:
    return "\n".join(checklist_lines(checks))


# =========================================================================== the whole checklist


def test_healthy_host_is_all_ticks():
    checks = build_checklist(facts())
    assert [c.status for c in checks] == [OK] * len(checks), everything(checks)
    assert checklist_ok(checks)
    assert [c.name for c in checks] == [
        "ssh",
        "live config",
        "config loaded",
        "kong container",
        "realtime container",
        "kong version",
        "realtime tenant",
        "anon key",
        "keys",
        *TABLE_CHECK_NAMES,
        "realtime path",
    ]
    assert all(line.startswith("✓ ") or line.startswith("    ") for line in checklist_lines(checks))


def test_no_secret_ever_appears_in_the_checklist_of_a_broken_host():
    stale, wrong = key("anon", secret="another-secret-another-secret-0123"), "wrong-jwt-secret-wrong-jwt-secret-42"
    broken = facts(
        inventory_keys={"anon": stale, "service_role": SERVICE},
        realtime=realtime_state(env={"API_JWT_SECRET": wrong}),
    )
    text = everything(build_checklist(broken))
    for secret in (ANON, SERVICE, stale, wrong, JWT_SECRET):
        assert secret not in text


def test_unreachable_host_skips_host_checks_but_still_reports_the_probe():
    checks = build_checklist(
        facts(ssh_error="edge-1 (h:22): cannot connect: Connection refused", kong=None, realtime=None, file=None)
    )
    by_name = {c.name: c for c in checks}
    assert by_name["ssh"].status == FAIL and "Connection refused" in by_name["ssh"].detail
    assert by_name["live config"].status == SKIP and by_name["keys"].status == SKIP
    assert by_name["realtime path"].status == OK
    assert not checklist_ok(checks)


def test_checklist_lines_put_notes_and_the_fix_under_a_cross_only():
    rows = checklist_lines(
        [
            Check("first", OK, "fine", fix="never shown"),
            Check("second", FAIL, "broken", fix="do this", notes=("a note",)),
            Check("third", SKIP, "not checked", fix="not shown either"),
        ]
    )
    assert rows == [
        "✓ first   fine",
        "✗ second  broken",
        "    a note",
        "    fix: do this",
        "- third   not checked",
    ]


# =========================================================================== live config


def test_refused_ws_protocols_are_listed_with_the_fix():
    broken = config().replace(
        "        strip_path: true\n", "        strip_path: true\n        protocols: [http, https, ws, wss]\n"
    )
    check = check_live_config(facts(effective_text=broken))
    assert check.status == FAIL and "2 error(s) for Kong 2.8.1 OSS" in check.detail
    assert any("'ws' is not a Kong OSS protocol" in note for note in check.notes)
    assert any("'wss' is not a Kong OSS protocol" in note for note in check.notes)
    assert "fab deploy-kong -H edge-1" in check.fix


def test_host_file_is_validated_when_kong_is_not_running_and_says_so():
    note = "kong is not running: validated /srv/api/kong-simple.yml on the host instead"
    seed = config(anon="$SUPABASE_ANON_KEY", service="$SUPABASE_SERVICE_KEY")
    check = check_live_config(facts(effective_text=None, live_text=seed, effective_note=note))
    assert check.status == OK and "/srv/api/kong-simple.yml on the host is valid" in check.detail
    assert check.notes[0] == note


def test_missing_config_file_fails_with_the_inventory_key_to_check():
    check = check_live_config(facts(effective_text=None, live_text=None))
    assert check.status == FAIL and "does not exist" in check.detail and "kong_config_path" in check.fix


def test_warnings_are_shown_under_a_valid_config():
    anonymous = config().replace("hide_credentials: false\n", "hide_credentials: false\n          anonymous: anon\n")
    check = check_live_config(facts(effective_text=anonymous))
    assert check.status == OK and "1 warning(s)" in check.detail
    assert any("anonymous: 'anon'" in note for note in check.notes)


def test_unknown_kong_version_skips_validation_and_fails_the_version_check():
    error = "image 'kong:latest' does not name a Kong version: pin kong_version in the inventory"
    broken = facts(target=None, target_error=error)
    assert check_live_config(broken).status == SKIP
    version = check_kong_target(broken)
    assert version.status == FAIL and version.detail == error and "pin kong_version" in version.fix


def test_kong_version_names_edition_image_and_plugins():
    check = check_kong_target(facts())
    assert check.status == OK and check.detail.startswith("Kong 2.8.1 OSS (kong:2.8.1), plugins: request-transformer")


def test_kong_version_names_the_entrypoint_and_router_flavor_from_the_profile():
    kong = kong_state(
        command=("/bin/sh", "/home/kong/kong-entrypoint.sh"), mounts=(("/x/e.sh", "/home/kong/kong-entrypoint.sh"),)
    )
    check = check_kong_target(facts(kong=kong))
    assert "entrypoint awk, router traditional (Kong 2.8.1's default)" in check.detail


def test_a_dokploy_stack_is_noted_not_failed():
    labels = {
        "com.docker.compose.project": "app-x",
        "com.docker.compose.project.working_dir": "/etc/dokploy/compose/app-x/code",
    }
    check = check_kong_target(facts(kong=kong_state(labels=labels)))
    assert check.status == OK and any("Dokploy" in note and "/etc/dokploy/compose/" in note for note in check.notes)


# =========================================================================== config loaded


def test_kong_seeing_another_file_than_the_host_is_a_pending_restart():
    check = check_config_loaded(facts(mount_sha256="0" * 64))
    assert check.status == FAIL and "bind mount keeps the old inode" in check.detail
    assert "fab deploy-kong -H edge-1" in check.fix


def test_file_changed_after_kong_started_is_a_pending_restart():
    newer = replace(facts().file, mtime=int(STARTED + 30))
    check = check_config_loaded(facts(file=newer))
    assert check.status == FAIL and "Kong still runs the previous config" in check.detail


def test_a_file_reloaded_into_this_kong_is_loaded_although_the_mount_shows_the_old_inode():
    newer = replace(facts().file, mtime=int(STARTED + 30))
    check = check_config_loaded(facts(file=newer, mount_sha256="0" * 64, reloaded=True))
    assert check.status == OK and "reloaded into" in check.detail and "Admin API" in check.detail


def test_config_loaded_is_skipped_while_kong_is_down():
    assert check_config_loaded(facts(kong=kong_state(running=False, status="exited"))).status == SKIP


# =========================================================================== containers


@pytest.mark.parametrize(
    ("changes", "in_detail", "in_fix"),
    [
        ({"exists": False}, "kong does not exist", "kong_container"),
        ({"running": False, "status": "exited", "exit_code": 0}, "exited", "docker start kong"),
        ({"restarting": True, "status": "restarting", "restart_count": 4}, "crash loop", "error parsing"),
        ({"restart_count": 2, "health": "starting"}, "crash loop", "fab logs -H edge-1"),
        ({"health": "starting"}, "still starting", "again"),
        ({"health": "unhealthy"}, "unhealthy", "fab logs"),
    ],
)
def test_kong_container_problems_say_what_to_do(changes: dict[str, Any], in_detail: str, in_fix: str):
    check = check_container(facts(kong=kong_state(**changes)), "kong")
    assert check.status == FAIL and in_detail in check.detail and in_fix in check.fix


def test_stopped_realtime_says_kong_answers_502_meanwhile():
    check = check_container(facts(realtime=realtime_state(running=False, status="exited")), "realtime")
    assert check.status == FAIL and "docker start realtime" in check.fix and "502" in check.fix


def test_running_containers_show_health_and_restarts():
    assert check_container(facts(), "kong").detail == "kong running (healthy), 0 restarts"
    assert check_container(facts(), "realtime").detail == "realtime running, 0 restarts"


# =========================================================================== tenant


def test_preserve_host_sends_the_browsers_host_as_tenant():
    seed = config().replace("        strip_path: true\n", "        strip_path: true\n        preserve_host: true\n")
    check = check_tenant(facts(effective_text=seed))
    assert check.status == FAIL
    assert "preserve_host: true on route realtime-v1-ws" in check.detail
    assert "browser's Host 203.0.113.7 → tenant '203'" in check.detail and "'realtime-dev'" in check.detail
    assert "remove preserve_host" in check.fix


def test_the_preserve_host_fix_names_the_upstream_of_the_hosts_own_file():
    own = config().replace("realtime-dev.supabase-realtime", "realtime-dev.acme-realtime")
    own = own.replace("        strip_path: true\n", "        strip_path: true\n        preserve_host: true\n")
    check = check_tenant(facts(effective_text=own))
    assert "sends the service host realtime-dev.acme-realtime;" in check.fix
    assert "supabase-realtime" not in check.fix and "facts" not in check.fix


def test_tenant_mismatch_names_both_sides_and_both_fixes():
    other = realtime_state(env={"API_JWT_SECRET": JWT_SECRET, "SELF_HOST_TENANT_NAME": "other"})
    check = check_tenant(facts(realtime=other))
    assert check.status == FAIL
    assert "tenant 'realtime-dev', but Realtime's tenant is 'other' (SELF_HOST_TENANT_NAME of realtime)" in check.detail
    assert "SELF_HOST_TENANT_NAME=realtime-dev on realtime" in check.fix and "first label is other" in check.fix
    assert "supabase/realtime lib/realtime/database.ex" in check.fix


def test_unset_tenant_env_means_realtime_dev():
    check = check_tenant(facts(realtime=realtime_state(env={"API_JWT_SECRET": JWT_SECRET})))
    assert check.status == OK and "SELF_HOST_TENANT_NAME is not set" in check.detail


def test_config_without_realtime_route_is_a_404():
    without = config().split("services:")[0] + "services: []\n"
    check = check_tenant(facts(effective_text=without))
    assert check.status == FAIL and "no Realtime route" in check.detail and "realtime-v1-ws" in check.fix


def test_unparsable_config_skips_tenant_and_keys():
    broken = facts(effective_text="services: [unclosed\n")
    assert check_tenant(broken).status == SKIP and check_keys(broken).status == SKIP


# =========================================================================== anon key


def with_anon(value: str) -> DoctorFacts:
    return facts(inventory_keys={"anon": value, "service_role": SERVICE})


@pytest.mark.parametrize(
    ("anon", "in_detail", "in_fix"),
    [
        (key("anon", secret="not-the-realtime-secret-0123456789abc"), "is not signed with API_JWT_SECRET of realtime",
         "regenerate ANON_KEY from the current JWT_SECRET"),
        (key("anon", exp=NOW - 60), "expired at", "later `exp`"),
        (key("anon", exp=None), "lacks the `exp` or `role` claim", "claims role and exp"),
        (key("service_role"), "carries role 'service_role'", "role anon"),
        ("sb_publishable_not_a_jwt_at_all", "is not a JWT", "anon key"),
    ],
)  # fmt: skip
def test_anon_key_problems_are_named(anon: str, in_detail: str, in_fix: str):
    check = check_anon_key(with_anon(anon))
    assert check.status == FAIL and in_detail in check.detail and in_fix in check.fix
    assert anon not in check.detail + check.fix and JWT_SECRET not in check.detail + check.fix


def test_anon_key_signed_with_realtimes_secret_shows_its_expiry():
    check = check_anon_key(facts())
    assert check.status == OK
    assert check.detail == "signed with API_JWT_SECRET of realtime, role anon, expires 2033-05-18 04:33 UTC"


def test_realtime_without_api_jwt_secret_fails():
    check = check_anon_key(facts(realtime=realtime_state(env={})))
    assert check.status == FAIL and "no API_JWT_SECRET" in check.detail


# =========================================================================== keys


def test_stale_inventory_key_is_not_among_the_live_keys():
    check = check_keys(with_anon(key("anon", iat=12345)))
    assert check.status == FAIL
    assert "SUPABASE_ANON_KEY is not among the 1 key(s) of consumer anon" in check.detail
    assert "fab deploy-kong -H edge-1" in check.fix


def test_swapped_keys_name_the_consumer_that_holds_them():
    check = check_keys(facts(effective_text=config(anon=SERVICE, service=ANON)))
    assert check.status == FAIL
    assert "SUPABASE_ANON_KEY is a key of consumer service_role, not anon" in check.detail


def test_missing_consumer_credentials_are_named():
    only_anon = config().replace(
        f"  - username: service_role\n    keyauth_credentials:\n      - key: '{SERVICE}'\n",
        "  - username: service_role\n",
    )
    check = check_keys(facts(effective_text=only_anon))
    assert check.status == FAIL and "consumer service_role" in check.detail


def test_placeholders_in_the_host_file_are_expanded_from_kongs_env():
    seed = config(anon="$SUPABASE_ANON_KEY", service="${SUPABASE_SERVICE_KEY}")
    assert check_keys(facts(effective_text=None, live_text=seed)).status == OK


def test_keys_are_not_guessed_when_only_the_entrypoints_shell_could_tell():
    # An unescaped double quote ends the quoting of the entrypoint's eval: words are split
    # and joined again, which only running its shell would show.
    live = config(anon="$SUPABASE_ANON_KEY") + 'x: "a  b"\n'
    check = check_keys(facts(effective_text=None, live_text=live))
    assert check.status == SKIP and "without its shell" in check.detail


def test_expand_placeholders_substitutes_known_and_empties_unknown():
    assert expand_placeholders("a: $A, b: ${B}, c: $C.\n\n", {"A": "1", "B": "2"}) == "a: 1, b: 2, c: .\n"


# =========================================================================== realtime path


def test_failed_probe_carries_its_cause_and_fix():
    check = check_verification(facts(verification=HostVerification("edge-1", TENANT_REPORT)))
    assert check.status == FAIL
    assert (
        check.detail == "CHANNEL_ERROR (upgrade): Realtime found no tenant" and check.fix == "keep preserve_host false"
    )


# =========================================================================== verify-realtime


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"vsn": "3.0.0"}, "--vsn: expected 1.0.0 or 2.0.0"),
        ({"channel": "bad channel"}, "--channel"),
        ({"table": "public.wells; drop"}, "--table"),
    ],
)
def test_bad_overrides_are_one_line_errors(options: dict[str, str], message: str):
    with pytest.raises(VerifyError, match=message) as err:
        VerifyOptions(**options)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("table", "expected"),
    [(None, ("public", "wells")), ("", ("public", "")), ("notes", ("public", "notes")), ("app.jobs", ("app", "jobs"))],
)
def test_channel_overrides(table: str | None, expected: tuple[str, str]):
    spec = channel_spec("supakong-probe", "public.wells", VerifyOptions(channel="mine", table=table))
    assert (spec.name, spec.schema, spec.table) == ("mine", *expected)
    assert spec.has_postgres_changes == bool(expected[1])


def test_logs_of_a_failed_attempt_come_under_the_diagnosis():
    logs = ("! [realtime] TenantNotFound: Tenant not found: 203   <- Realtime tenant mismatch",)
    rows = verification_lines(HostVerification("edge-1", TENANT_REPORT, logs))
    assert rows.index("  fix:   keep preserve_host false") < rows.index("  logs around the attempt (1 lines):")
    assert rows[-1] == "    " + logs[0]
    unreachable = verification_lines(HostVerification("edge-1", TENANT_REPORT, logs_note="no logs: ssh refused"))
    assert unreachable[-1] == "  (no logs: ssh refused)"


def test_recap_result_fails_with_the_cause_and_keeps_stage_timings():
    result = verification_result(HostVerification("edge-1", TENANT_REPORT))
    assert (result.status, result.verify_state, result.message) == ("failed", CHANNEL_ERROR, "Realtime found no tenant")
    assert result.timings == {"tcp": 0.001, "upgrade": 0.006}
    assert verification_result(HostVerification("edge-1", HEALTHY_REPORT)).status == "ok"


def test_json_document_has_states_stage_milliseconds_and_diagnosis_masked():
    leaky = replace(TENANT_REPORT, diagnosis=replace(TENANT_REPORT.diagnosis, body=f"echo apikey={ANON}"))
    document = json.loads(
        verify_document(
            {
                "edge-1": verification_json(HostVerification("edge-1", HEALTHY_REPORT)),
                "edge-2": verification_json(HostVerification("edge-2", leaky, ("[kong] GET /?apikey=x",))),
            }
        )
    )
    assert document["ok"] is False and document["task"] == "verify-realtime"
    healthy, broken = document["hosts"]["edge-1"], document["hosts"]["edge-2"]
    assert healthy["state"] == SUBSCRIBED and healthy["diagnosis"] is None and healthy["stages"][0]["ms"] == 2.5
    assert broken["diagnosis"]["status"] == 404 and broken["diagnosis"]["cause"] == "Realtime found no tenant"
    assert ANON not in json.dumps(document) and broken["diagnosis"]["body"] == "echo apikey=***"
    assert broken["logs"] == ["[kong] GET /?apikey=***"]


def test_hosts_never_probed_get_an_entry_saying_why(tmp_path, monkeypatch):
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(
        "all:\n  hosts:\n"
        + "".join(
            f"    {name}:\n      public_url: http://{addr}:8000\n      kong_container: k\n"
            f"      realtime_container: r\n      kong_config_path: /srv/kong.yml\n"
            for name, addr in (("sandbox-a", "10.0.0.1"), ("prod", "192.0.2.1"))
        )
    )
    hosts = list(load_inventory(inventory).hosts.values())
    monkeypatch.setenv("SUPAKONG_HOST_ALLOWLIST", "sandbox*")
    entries = not_run_entries(hosts, {})
    assert "not allowed by SUPAKONG_HOST_ALLOWLIST" in entries["prod"]["error"]
    assert entries["sandbox-a"]["state"] is None and entries["sandbox-a"]["ok"] is False

    check_url_allowed("http://10.0.0.1:8000/", hosts)
    with pytest.raises(InventoryError, match="not allowed by SUPAKONG_HOST_ALLOWLIST"):
        check_url_allowed("http://192.0.2.1:8000", hosts)
    with pytest.raises(InventoryError, match="refusing to contact it"):
        check_url_allowed("http://10.0.0.1:8001", hosts)
    check_url_allowed("http://anything:1", hosts, environ={})


def test_apikey_env_is_read_registered_and_required():
    value = "opaque-publishable-key-0123456789"
    assert apikey_from_env("MY_KEY", {"MY_KEY": f" {value}\n"}) == value
    assert mask(f"the key {value}") == "the key ***"
    with pytest.raises(InventoryError, match="--apikey-env NOPE: that environment variable is not set"):
        apikey_from_env("NOPE", {})


# =========================================================================== the tasks' flags (nothing is contacted)


def fab(*args: str) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "SUPAKONG_HOST_ALLOWLIST": "sandbox*"}
    return subprocess.run([FAB, *args], cwd=REPO, env=environ, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("verify-realtime", "--vsn", "3.0.0"), "supakong: --vsn: expected 1.0.0 or 2.0.0, got '3.0.0'"),
        (("verify-realtime", "-H", "sandbox", "--url", "http://10.203.1.2:8000"), "drop -H/--group"),
        (("doctor",), "name the hosts with -H HOST"),
        (("doctor", "-H", "sandbox", "--table", "x;y"), "supakong: --table: expected schema.table"),
        (("verify-realtime", "--url", "http://10.203.1.2:8000", "--event"), "use -H HOST, not --url"),
    ],
)
def test_bad_flags_are_one_line_errors_before_anything_is_contacted(args: tuple[str, ...], message: str):
    proc = fab(*args)
    assert proc.returncode == 1 and message in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr
