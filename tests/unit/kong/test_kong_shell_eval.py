"""Supabase's Kong 2.8.1 entrypoint expands kong.yml with a shell eval; only the variables of
that container (SUPABASE_ANON_KEY, SUPABASE_SERVICE_KEY, DASHBOARD_*) are meant to be expanded."""

from __future__ import annotations

import pytest

from supakong.kong import Finding, KongTarget, validate_kong_config, validate_kong_document

HEADER = "_format_version: '2.1'\n"


def shell_warnings(findings: list[Finding]) -> dict[str, Finding]:
    return {f.path: f for f in findings if "entrypoint" in f.message}


PLACEHOLDER_CASES = [
    pytest.param("$SUPABASE_ANON_KEY", id="anon-key"),
    pytest.param("${SUPABASE_SERVICE_KEY}", id="braced-service-key"),
    pytest.param("$DASHBOARD_PASSWORD", id="dashboard-password"),
    pytest.param("price in $", id="dollar-before-space-is-literal"),
    pytest.param("'~/rest/v1/items$'", id="dollar-before-quote-is-literal"),
]


@pytest.mark.parametrize("value", PLACEHOLDER_CASES)
def test_known_placeholders_and_literal_dollars_are_fine(value: str) -> None:
    text = HEADER + f"consumers:\n  - username: anon\n    custom_id: {value}\n"
    assert shell_warnings(validate_kong_config(text, KongTarget())) == {}


CHANGED_CASES = [
    pytest.param(
        "custom_id: $HOME",
        "consumers[0].custom_id",
        "$HOME becomes the kong container's variable of that name, or nothing if it has none",
        id="unknown-variable-is-expanded",
    ),
    pytest.param(
        "custom_id: ${JWT_SECRET:-x}",
        "consumers[0].custom_id",
        "or nothing if it has none",
        id="braced-unknown-variable",
    ),
    pytest.param(
        "custom_id: $SUPABASE_PUBLISHABLE_KEY",
        "consumers[0].custom_id",
        "$SUPABASE_PUBLISHABLE_KEY is set only by Supabase's kong-entrypoint.sh of Kong 3.9",
        id="opaque-key-variable-of-the-2026-stack",
    ),
    pytest.param(
        "custom_id: $LUA_AUTH_EXPR",
        "consumers[0].custom_id",
        "$LUA_AUTH_EXPR is set only by Supabase's kong-entrypoint.sh of Kong 3.9",
        id="lua-expression-of-the-awk-entrypoint",
    ),
    pytest.param(
        "custom_id: a`id`b",
        "consumers[0].custom_id",
        "runs a shell command",
        id="backticks-run-a-command",
    ),
    pytest.param(
        "custom_id: $(whoami)",
        "consumers[0].custom_id",
        "runs a shell command",
        id="command-substitution",
    ),
    pytest.param(
        'custom_id: "anon"',
        "consumers[0].custom_id",
        "double quotes are removed",
        id="double-quoted-yaml-scalar-loses-its-quotes",
    ),
    pytest.param(
        "custom_id: 'say \"hi\"'",
        "consumers[0].custom_id",
        "double quotes",
        id="double-quotes-inside-a-value",
    ),
    pytest.param(
        "custom_id: 'a\\$b'",
        "consumers[0].custom_id",
        "backslash",
        id="backslash-before-dollar-is-removed",
    ),
    pytest.param("custom_id: $1", "consumers[0].custom_id", "shell parameter", id="positional-parameter"),
]


@pytest.mark.parametrize(("line", "path", "fragment"), CHANGED_CASES)
def test_values_the_entrypoint_would_change_are_reported(line: str, path: str, fragment: str) -> None:
    text = HEADER + f"consumers:\n  - username: anon\n    {line}\n"
    found = shell_warnings(validate_kong_config(text, KongTarget()))
    assert list(found) == [path]
    # A command the entrypoint's eval would run (as root in the Kong container), a double quote
    # that ends its quoting, a $NAME the container does not hold: each is an error.
    assert found[path].severity == "error" and fragment in found[path].message


def test_a_double_quote_in_a_value_is_refused_as_shell_code() -> None:
    # `x"; touch /pwn; echo "` closes the eval's quoted argument: the rest runs as shell.
    text = HEADER + "consumers:\n  - username: anon\n    custom_id: 'x\"; touch /pwn; echo \"'\n"
    [finding] = shell_warnings(validate_kong_config(text, KongTarget()))
    assert "run as shell code" in found_message(text) and finding == "consumers[0].custom_id"


def found_message(text: str) -> str:
    return " ".join(f.message for f in validate_kong_config(text, KongTarget()) if f.severity == "error")


def test_quoted_format_version_is_reported_at_its_path() -> None:
    found = shell_warnings(validate_kong_config('_format_version: "2.1"\n', KongTarget()))
    assert list(found) == ["_format_version"]


def test_backticks_in_comments_are_reported_at_line_and_column() -> None:
    text = HEADER + "# key-auth's `anonymous` fallback\nconsumers: []\n"
    found = shell_warnings(validate_kong_config(text, KongTarget(), source="api/kong.yml"))
    assert list(found) == ["api/kong.yml:2:14"]
    assert found["api/kong.yml:2:14"].severity == "error"  # the eval runs backticks in comments too


def test_parsed_documents_are_checked_on_their_values() -> None:
    doc = {"_format_version": "2.1", "consumers": [{"username": "a", "custom_id": 'x"y'}]}
    found = shell_warnings(validate_kong_document(doc, KongTarget()))
    assert list(found) == ["consumers[0].custom_id"]


def test_a_comment_is_an_error_only_where_the_shell_would_run_part_of_it() -> None:
    # Kong never reads a comment; the shell still runs what a double quote leaves outside
    # the eval's quoting when that is shell syntax.
    inert = HEADER + '# edited after "CHANNEL_ERROR" (a forum answer)\nconsumers: []\n'
    runs = HEADER + '# x"; touch /pwn; echo "\nconsumers: []\n'
    [kept] = shell_warnings(validate_kong_config(inert, KongTarget(), source="k.yml")).values()
    [refused] = shell_warnings(validate_kong_config(runs, KongTarget(), source="k.yml")).values()
    assert kept.severity == "warning" and refused.severity == "error"
    assert "run as shell code" in refused.message
