"""`fab check-kong` as a user runs it: verdicts, exit codes, JSON, and no secret in the output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "unit" / "kong" / "fixtures"
FAB = str(Path(sys.executable).parent / "fab")


def check_kong(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "SUPAKONG_HOST_ALLOWLIST": "sandbox*", **(env or {})}
    return subprocess.run([FAB, "check-kong", *args], cwd=REPO, env=environ, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("version", ["2.8.1", "3.9.1"])
def test_seed_fix_is_refused_on_oss_with_an_explanation(version):
    proc = check_kong("--file", str(FIXTURES / "seed_user_fix.yml"), "--kong-version", version)
    assert proc.returncode == 1
    assert "REFUSED" in proc.stdout
    assert "ws" in proc.stdout and "preserve_host" in proc.stdout


def test_supabase_upstream_file_passes_on_both_versions():
    for version in ("2.8.1", "3.9.1"):
        proc = check_kong("--file", str(FIXTURES / "supabase_upstream_kong.yml"), "--kong-version", version)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert ": ok for Kong" in proc.stdout


def test_enterprise_accepts_ws_but_still_refuses_preserve_host():
    proc = check_kong(
        "--file", str(FIXTURES / "seed_user_fix.yml"), "--kong-version", "3.9.1", "--edition", "enterprise"
    )
    assert proc.returncode == 1
    errors = [line for line in proc.stdout.splitlines() if line.startswith("error")]
    assert errors and all("preserve_host" in line for line in errors)


def test_json_output_lists_findings_with_severity_path_message_hint():
    proc = check_kong("--file", str(FIXTURES / "seed_user_fix.yml"), "--json")
    assert proc.returncode == 1
    findings = json.loads(proc.stdout)["findings"]
    assert findings and set(findings[0]) == {"severity", "path", "message", "hint"}
    assert any(f["path"].endswith("protocols[2]") for f in findings)


def test_check_kong_for_a_host_renders_offline_without_printing_secrets():
    proc = check_kong(
        "-H",
        "mudrock-enterprise",
        "--offline",
        env={
            "SUPABASE_ANON_KEY": "anon-key-0123456789abcdef",
            "SUPABASE_SERVICE_KEY": "svc-key-0123456789abcdef",
            "SUPAKONG_HOST_ALLOWLIST": "",
        },
    )
    # --offline reads nothing from the host: it only renders and validates locally.
    assert "anon-key-0123456789abcdef" not in proc.stdout + proc.stderr
    assert proc.returncode == 0, proc.stderr
    assert "ok for Kong 2.8.1" in proc.stdout


def test_unknown_kong_version_is_one_line():
    proc = check_kong("--file", str(FIXTURES / "seed_user_fix.yml"), "--kong-version", "1.4.0")
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1 and "--kong-version" in proc.stderr


UPSTREAM_2026 = str(FIXTURES / "supabase_2026_kong.yml")


def test_supabases_2026_file_passes_on_kong_3_9_3_with_the_expressions_router():
    proc = check_kong("--file", UPSTREAM_2026, "--kong-version", "3.9.3", "--router-flavor", "expressions")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ok for Kong 3.9.3 oss (router expressions, awk entrypoint)" in proc.stdout
    assert not [line for line in proc.stdout.splitlines() if line.startswith(("error", "warning"))]


def test_supabases_2026_file_needs_the_expressions_router():
    proc = check_kong("--file", UPSTREAM_2026, "--kong-version", "3.9.3")
    assert proc.returncode == 1
    (expression,) = [line for line in proc.stdout.splitlines() if line.startswith("error") and "expression:" in line]
    assert "KONG_ROUTER_FLAVOR=expressions" in expression and "--router-flavor expressions" in expression


def test_supabases_2026_file_under_the_eval_entrypoint_runs_its_comments_backticks():
    proc = check_kong(
        "--file", UPSTREAM_2026, "--kong-version", "3.9.3", "--router-flavor", "expressions", "--expansion", "eval"
    )
    assert proc.returncode == 1
    assert (
        "runs a shell command" in proc.stdout
        and "$LUA_AUTH_EXPR is set only by Supabase's kong-entrypoint.sh" in proc.stdout
    )


def test_unknown_router_flavor_is_one_line_naming_the_flag():
    proc = check_kong("--file", UPSTREAM_2026, "--kong-version", "3.9.3", "--router-flavor", "atc")
    assert (
        proc.returncode == 1 and proc.stderr.count("\n") == 1 and proc.stderr.startswith("supakong: --router-flavor:")
    )
