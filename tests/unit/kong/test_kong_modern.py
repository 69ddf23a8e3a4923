"""Today's self-hosted Supabase: Kong 3.9 with the awk kong-entrypoint.sh, the expressions
router, request-transformer Lua templates and post-function."""

from __future__ import annotations

import pytest

from supakong.kong import Finding, KongTarget, validate_kong_config
from supakong.kong.target import SUPABASE_PLUGINS_3X

HEADER = "_format_version: '2.1'\n"
MODERN = KongTarget("3.9.3", router_flavor="expressions")


def validate(text: str, target: KongTarget) -> list[Finding]:
    """The findings, without the warning that these snippets have no Realtime route."""
    return [f for f in validate_kong_config(text, target) if "no Realtime websocket route" not in f.message]


def by_path(findings: list[Finding]) -> dict[str, Finding]:
    return {f.path: f for f in findings}


def transformer(add_headers: list[str], querystring: list[str] | None = None) -> str:
    lines = [HEADER, "plugins:\n  - name: request-transformer\n    config:\n      add:\n        headers:\n"]
    lines += [f"          - {value!r}\n" for value in add_headers]
    if querystring:
        lines.append("      replace:\n        querystring:\n")
        lines += [f"          - {value!r}\n" for value in querystring]
    return "".join(lines)


# ------------------------------------------------------------------ the target of each era
def test_kong_3_targets_default_to_the_awk_entrypoint_and_supabases_modern_plugins() -> None:
    target = KongTarget("3.9.3")
    assert (target.expansion, target.router_flavor) == ("awk", "traditional_compatible")
    assert target.plugins == SUPABASE_PLUGINS_3X and "post-function" in target.enabled_plugins
    assert target.substitutes("LUA_AUTH_EXPR") and target.substitutes("WELL_KNOWN_OAUTH_PATH")


def test_kong_2_8_targets_default_to_the_eval_entrypoint() -> None:
    target = KongTarget("2.8.1")
    assert (target.expansion, target.router_flavor) == ("eval", "traditional")
    assert "post-function" not in target.enabled_plugins
    assert target.substitutes("SUPABASE_ANON_KEY") and not target.substitutes("LUA_AUTH_EXPR")


def test_router_flavor_on_2_8_is_always_traditional() -> None:
    assert KongTarget("2.8.1", router_flavor="expressions").router_flavor == "traditional"


@pytest.mark.parametrize(("field", "value"), [("expansion", "bash"), ("router_flavor", "atc")])
def test_unknown_expansion_or_flavor_is_a_value_error(field: str, value: str) -> None:
    with pytest.raises(ValueError, match=field):
        KongTarget("3.9.3", **{field: value})


def test_the_host_container_can_set_everything() -> None:
    target = KongTarget.from_image(
        "kong/kong:3.9.3", "cors,post-function", expansion="none", router_flavor="expressions", env_names=("X",)
    )
    assert (target.expansion, target.router_flavor, target.env_names) == ("none", "expressions", ("X",))
    assert not target.substitutes("X")  # nothing is substituted without an entrypoint expansion


# ------------------------------------------------------------------ what the awk entrypoint does
def test_awk_keeps_double_quotes_and_backticks() -> None:
    text = HEADER + '# key-auth\'s `anonymous`\nconsumers:\n  - username: "anon"\n'
    assert validate(text, KongTarget("3.9.3")) == []


def test_a_name_the_container_does_not_have_stays_literal() -> None:
    text = HEADER + "consumers:\n  - username: anon\n    keyauth_credentials:\n      - key: $SUPABASE_ANON_KEYS\n"
    (finding,) = validate(text, KongTarget("3.9.3"))
    assert (finding.severity, finding.path) == ("warning", "consumers[0].keyauth_credentials[0].key")
    assert "leaves it as the text '$SUPABASE_ANON_KEYS'" in finding.message


def test_a_lua_template_name_the_entrypoint_does_not_define_cannot_work() -> None:
    text = transformer(["Authorization: $LUA_AUTH_EXPRESSION"])
    found = by_path(validate(text, KongTarget("3.9.3")))
    finding = found["plugins[0].config.add.headers[0]"]
    assert finding.severity == "error" and "this Lua template cannot work" in finding.message


def test_the_eval_entrypoint_has_no_lua_templates() -> None:
    text = transformer(["Authorization: $LUA_AUTH_EXPR"])
    finding = by_path(validate(text, KongTarget("2.8.1")))["plugins[0].config.add.headers[0]"]
    assert (
        "$LUA_AUTH_EXPR is set only by Supabase's kong-entrypoint.sh of Kong 3.9, so here it becomes empty"
        in finding.message
    )


def test_a_container_variable_in_a_value_is_substituted_too() -> None:
    target = KongTarget("3.9.3", env_names=(*KongTarget("3.9.3").env_names, "HOME"))  # type: ignore[misc]
    text = HEADER + "consumers:\n  - username: anon\n    custom_id: price$HOME\n"
    (finding,) = validate(text, target)
    assert finding.severity == "warning" and "$HOME is a variable of the kong container" in finding.message


def test_a_placeholder_route_path_is_left_to_the_entrypoint() -> None:
    text = HEADER + "routes:\n  - name: well-known-oauth\n    paths:\n      - $WELL_KNOWN_OAUTH_PATH\n"
    assert [f for f in validate(text, MODERN) if f.severity == "error"] == []
    refused = validate(text, KongTarget("3.9.3", expansion="none"))
    assert "routes[0].paths[0]" in by_path(refused)


# ------------------------------------------------------------------ request-transformer templates
def test_supabases_own_templates_pass() -> None:
    text = transformer(
        ["Authorization: $((headers.authorization ~= nil and headers.authorization) or headers.apikey)"],
        ["apikey:$((query_params.apikey == 'sb_x' and 'eyJ') or query_params.apikey)"],
    )
    assert validate(text, MODERN) == []


def test_an_unbalanced_template_is_sent_as_text() -> None:
    (finding,) = validate(transformer(["x-api-key:$((query_params.apikey)"]), MODERN)
    assert finding.severity == "warning" and "Kong sends this text as it is" in finding.message


def test_a_header_template_that_does_not_compile_answers_500() -> None:
    (finding,) = validate(transformer(["x-api-key:$(query_params.apikey ==)"]), MODERN)
    assert finding.severity == "error" and "answers 500 to every request" in finding.message


def test_a_querystring_template_that_does_not_compile_is_refused() -> None:
    findings = validate(transformer([], ["apikey:$(query_params.apikey ==)"]), MODERN)
    assert any(f.severity == "error" and "refuses the file" in f.message for f in findings)


def test_a_template_reading_a_table_kong_does_not_provide_evaluates_to_nil() -> None:
    (finding,) = validate(transformer(["x-api-key:$(header.apikey)"]), MODERN)
    assert finding.severity == "warning" and "reads header" in finding.message


# ------------------------------------------------------------------ post-function
def post_function(config: str) -> str:
    return HEADER + "plugins:\n  - name: post-function\n    config:\n" + config


def test_post_function_code_that_does_not_compile_is_refused() -> None:
    (finding,) = validate(post_function("      access:\n        - 'local x ='\n"), MODERN)
    assert (finding.severity, finding.path) == ("error", "plugins[0].config.access[0]")
    assert "does not compile" in finding.message


def test_post_function_without_code_for_any_phase_is_refused() -> None:
    (finding,) = validate(post_function("      access: []\n"), MODERN)
    assert finding.severity == "error" and "one of the phases" in finding.message


def test_post_function_is_not_enabled_on_kong_2_8s_supabase_list() -> None:
    findings = validate(post_function("      access: ['return']\n"), KongTarget("2.8.1"))
    assert "not enabled" in by_path(findings)["plugins[0].name"].message
