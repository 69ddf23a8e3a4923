"""Parsing kong.yml text: syntax errors, duplicate keys, empty or odd documents."""

from __future__ import annotations

import pytest

from supakong.kong import KongTarget, validate_kong_config

SYNTAX_CASES = [
    pytest.param("services: [a, b\nroutes: []\n", "kong.yml:2:7", id="unclosed-flow-sequence"),
    pytest.param("services:\n\t- name: x\n", "kong.yml:2:1", id="tab-indentation"),
    pytest.param("a: b: c\n", "kong.yml:1:5", id="mapping-in-plain-scalar"),
    pytest.param("a: 1\n---\nb: 2\n", "kong.yml:2:1", id="two-documents"),
    pytest.param("a: 1\nb: \x00\n", "kong.yml:2:4", id="nul-character"),
]


@pytest.mark.parametrize(("text", "path"), SYNTAX_CASES)
def test_yaml_syntax_errors_give_line_and_column(text: str, path: str) -> None:
    (finding,) = validate_kong_config(text, KongTarget())
    assert (finding.severity, finding.path) == ("error", path)
    assert finding.message.startswith("YAML syntax error")


def test_the_source_name_is_used_in_locations() -> None:
    (finding,) = validate_kong_config("a: [\n", KongTarget(), source="volumes/api/kong.yml")
    assert finding.path.startswith("volumes/api/kong.yml:")


ODD_DOCUMENTS = [
    pytest.param("", "empty", id="empty-file"),
    pytest.param("# only a comment\n", "empty", id="comment-only"),
    pytest.param("- a\n- b\n", "expected a mapping", id="top-level-list"),
    pytest.param("just text\n", "expected a mapping", id="top-level-scalar"),
    pytest.param("a: &x [*x]\n", "contains itself", id="recursive-alias"),
]


@pytest.mark.parametrize(("text", "fragment"), ODD_DOCUMENTS)
def test_documents_that_are_not_a_config(text: str, fragment: str) -> None:
    (finding,) = validate_kong_config(text, KongTarget())
    assert finding.severity == "error" and fragment in finding.message


def test_duplicate_yaml_keys_are_warned_about() -> None:
    text = (
        "_format_version: '2.1'\n"
        "services:\n"
        "  - name: rest\n"
        "    url: http://rest:3000/\n"
        "    routes: [{name: a, paths: [/a]}]\n"
        "    routes: [{name: b, paths: [/b]}]\n"
    )
    findings = validate_kong_config(text, KongTarget())
    assert [f.severity for f in findings if f.path == "services[0].routes"] == ["warning"]


def test_json_input_is_accepted() -> None:
    text = '{"_format_version": "2.1", "services": []}'
    # Not on the eval entrypoint of Kong 2.8.1, whose shell would take its double quotes.
    findings = validate_kong_config(text, KongTarget("3.9.1"))
    assert [f for f in findings if f.severity == "error"] == []
