"""Finding values and their text / JSON forms."""

from __future__ import annotations

import json

import pytest

from supakong.kong import Finding, findings_to_json, has_errors
from supakong.kong.findings import sort_findings


def test_line_form_carries_severity_path_message_and_hint() -> None:
    finding = Finding("error", "services[1].routes[0].protocols[2]", "'ws' is bad", "remove it")
    assert finding.as_line() == ("error services[1].routes[0].protocols[2]: 'ws' is bad (hint: remove it)")


def test_line_form_without_hint_has_no_hint_suffix() -> None:
    assert Finding("info", "services", "note").as_line() == "info services: note"


def test_json_form() -> None:
    payload = json.loads(findings_to_json([Finding("warning", "a", "m", "h")]))
    assert payload == {"findings": [{"severity": "warning", "path": "a", "message": "m", "hint": "h"}]}


def test_unknown_severity_is_refused() -> None:
    with pytest.raises(ValueError):
        Finding("fatal", "a", "m")


def test_has_errors() -> None:
    assert has_errors([Finding("info", "a", "m"), Finding("error", "b", "m")])
    assert not has_errors([Finding("warning", "a", "m")])


def test_sorted_by_severity_then_natural_path() -> None:
    findings = [
        Finding("info", "services[0]", "m"),
        Finding("error", "services[10].name", "m"),
        Finding("warning", "services[1]", "m"),
        Finding("error", "services[2].name", "m"),
    ]
    assert [(f.severity, f.path) for f in sort_findings(findings)] == [
        ("error", "services[2].name"),
        ("error", "services[10].name"),
        ("warning", "services[1]"),
        ("info", "services[0]"),
    ]


def test_a_path_with_other_unicode_digits_sorts_without_raising() -> None:
    """Found by hypothesis: "¹" is a digit to str.isdigit() but not a number to int()."""
    findings = [Finding("error", "0¹", "m"), Finding("error", "services[2]", "m"), Finding("error", "x١٠", "m")]
    assert [f.path for f in sort_findings(findings)] == ["0¹", "services[2]", "x١٠"]
