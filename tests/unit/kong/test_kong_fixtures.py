"""The two reference files: Supabase's own kong.yml and the seed's reported "fix"."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from supakong.kong import (
    Finding,
    KongTarget,
    findings_to_json,
    has_errors,
    validate_kong_config,
    validate_kong_document,
)

FIXTURES = Path(__file__).parent / "fixtures"
ALL_TARGETS = [
    pytest.param(version, edition, id=f"{version}-{edition}")
    for version in ("2.8.1", "3.0", "3.4", "3.5", "3.9.1")
    for edition in ("oss", "enterprise")
]


def at(findings: list[Finding], severity: str) -> dict[str, Finding]:
    return {f.path: f for f in findings if f.severity == severity}


@pytest.mark.parametrize(("version", "edition"), ALL_TARGETS)
def test_supabase_upstream_file_has_no_errors_or_warnings(upstream_text: str, version: str, edition: str) -> None:
    findings = validate_kong_config(upstream_text, KongTarget(version, edition))
    assert not has_errors(findings), [f.as_line() for f in findings]
    assert [f for f in findings if f.severity == "warning"] == []


def test_supabase_upstream_protocol_ws_is_reported_as_overridden_by_url(upstream_text: str) -> None:
    findings = validate_kong_config(upstream_text, KongTarget("2.8.1"))
    (note,) = findings
    assert (note.severity, note.path) == ("info", "services[6].protocol")
    assert "url shorthand sets protocol to 'http'" in note.message


@pytest.mark.parametrize("version", ["2.8.1", "3.9.1"])
def test_parsed_upstream_document_is_clean_too(upstream_text: str, version: str) -> None:
    findings = validate_kong_document(yaml.safe_load(upstream_text), KongTarget(version))
    assert not has_errors(findings)


@pytest.mark.parametrize("version", ["2.8.1", "3.9.1"])
def test_seed_fix_is_refused_on_oss_with_understandable_errors(seed_text: str, version: str) -> None:
    findings = validate_kong_config(seed_text, KongTarget(version, "oss"))
    errors = at(findings, "error")
    route = "services[6].routes[0]"
    assert set(errors) == {
        f"{route}.protocols[2]",
        f"{route}.protocols[3]",
        f"{route}.preserve_host",
    }
    assert "'ws' is not a Kong OSS protocol" in errors[f"{route}.protocols[2]"].message
    assert "refuses to start" in errors[f"{route}.protocols[2]"].message
    assert "http/https routes" in errors[f"{route}.protocols[2]"].hint
    assert "Tenant not found" in errors[f"{route}.preserve_host"].message
    warnings = at(findings, "warning")
    assert "Sec-WebSocket-Key" in warnings["services[6].plugins[0].config.headers"].message
    assert "missing OR invalid" in warnings["services[6].plugins[1].config.anonymous"].message


@pytest.mark.parametrize("version", ["2.8.1", "3.9.1"])
def test_seed_fix_on_enterprise_keeps_only_the_preserve_host_error(seed_text: str, version: str) -> None:
    findings = validate_kong_config(seed_text, KongTarget(version, "enterprise"))
    assert set(at(findings, "error")) == {"services[6].routes[0].preserve_host"}
    assert "services[6].routes[0].protocols" in at(findings, "warning")  # mixing: unverified


def test_text_output_is_one_line_per_finding_with_the_hint(seed_text: str) -> None:
    findings = validate_kong_config(seed_text, KongTarget("2.8.1"))
    line = next(f.as_line() for f in findings if f.path.endswith("protocols[2]"))
    assert line.startswith("error services[6].routes[0].protocols[2]: 'ws' is not a Kong OSS protocol")
    assert "(hint: remove ws/wss" in line
    assert all("\n" not in f.as_line() for f in findings)


def test_json_output_lists_severity_path_message_hint(seed_text: str) -> None:
    findings = validate_kong_config(seed_text, KongTarget("3.9.1"))
    payload = json.loads(findings_to_json(findings))
    assert [item["path"] for item in payload["findings"]] == [f.path for f in findings]
    assert set(payload["findings"][0]) == {"severity", "path", "message", "hint"}


def test_findings_come_sorted_errors_first(seed_text: str) -> None:
    severities = [f.severity for f in validate_kong_config(seed_text, KongTarget("2.8.1"))]
    order = {"error": 0, "warning": 1, "info": 2}
    assert severities == sorted(severities, key=order.__getitem__)


def test_supabase_2026_file_is_clean_for_kong_3_9_with_the_expressions_router() -> None:
    text = (FIXTURES / "supabase_2026_kong.yml").read_text()
    findings = validate_kong_config(text, KongTarget("3.9.3", router_flavor="expressions"))
    assert [f.severity for f in findings] == ["info"], [f.as_line() for f in findings]  # protocol ws beside url


def test_supabase_2026_file_cannot_load_on_kong_2_8() -> None:
    text = (FIXTURES / "supabase_2026_kong.yml").read_text()
    errors = at(validate_kong_config(text, KongTarget("2.8.1")), "error")
    assert "services[7].routes[0].expression" in errors  # no expression routes before 3.x
    assert any(path.endswith(".name") and "post-function" in f.message for path, f in errors.items())
