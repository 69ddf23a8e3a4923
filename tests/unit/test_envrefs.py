"""Keys as ``$NAME`` references: refused before anything is written when the host's Kong
cannot expand them; an imported file's keys turned back into references."""

from __future__ import annotations

import pytest
from test_hostprofile import SUPABASE_2_8, SUPABASE_3_9, inspect

from supakong.container import state_from_inspect
from supakong.envrefs import (
    check_references,
    referenced_names,
    references_for_secrets,
    register_file_credentials,
)
from supakong.errors import ValidationError
from supakong.hostprofile import build_profile
from supakong.secrets import mask

ANON = "eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoiYW5vbiJ9.c2lnbmF0dXJlLWFub24"
SERVICE = "eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoic2VydmljZV9yb2xlIn0.c2lnbmF0dXJlLXN2Yw"


def test_references_are_upper_case_env_names_not_escaped_dollars_or_regex_anchors():
    text = "key: $SUPABASE_ANON_KEY\nh: 'x-api-key:${LUA_RT_WS_EXPR}'\np: ~/api/v1$\nq: \\$NOT_ME\nr: $lower\n"
    assert referenced_names(text) == ["SUPABASE_ANON_KEY", "LUA_RT_WS_EXPR"]


def test_a_reference_kong_holds_passes():
    check_references("key: $SUPABASE_ANON_KEY\n", build_profile(SUPABASE_2_8), source="t.j2", host="edge")


def test_a_reference_kong_does_not_hold_is_refused_naming_the_variable_and_the_container():
    with pytest.raises(ValidationError) as err:
        check_references("key: $SUPABASE_SECRET_KEY\n", build_profile(SUPABASE_2_8), source="t.j2", host="edge")
    message = str(err.value)
    assert "\n" not in message and "$SUPABASE_SECRET_KEY" in message and "supabase-kong" in message
    assert "nothing was changed on edge" in message


def test_a_reference_in_a_comment_expands_harmlessly_and_is_not_refused():
    text = "# keys are $VARS the entrypoint fills in\nkey: $SUPABASE_ANON_KEY  # not $THIS_ONE either\n"
    check_references(text, build_profile(SUPABASE_2_8), source="t.j2", host="edge")


def test_the_2026_entrypoints_own_lua_expressions_are_not_kongs_business():
    check_references("h: $LUA_AUTH_EXPR\n", build_profile(SUPABASE_3_9), source="t.j2", host="edge")


def test_a_kong_that_loads_the_file_as_is_refuses_any_credential_reference():
    as_is = state_from_inspect(
        "gw",
        inspect(
            "gw",
            "kong:2.8.1",
            env={"KONG_DECLARATIVE_CONFIG": "/k.yml", "SUPABASE_ANON_KEY": ANON},
            mounts={"/k.yml": "/srv/k.yml"},
        ),
    )
    with pytest.raises(ValidationError, match=r"loads /k.yml as is.*kong_secrets: inline"):
        check_references("key: $SUPABASE_ANON_KEY\n", build_profile(as_is), source="t.j2", host="edge")


def test_imported_keys_become_references_and_nothing_else_changes():
    text = (
        "# our gateway\n"
        "consumers:\n"
        "  - username: anon\n"
        "    keyauth_credentials:\n"
        f"      - key: {ANON}   # the anon key\n"
        "  - username: service_role\n"
        "    keyauth_credentials:\n"
        f"      - key: '{SERVICE}'\n"
        "basicauth_credentials:\n"
        "  - consumer: DASHBOARD\n"
        "    username: supabase\n"
        "    password: 'hunter2'\n"
        "services:\n"
        "  - name: hunter2-docs   # a name containing the password is not a password\n"
        "  - name: supabase   # nor is a service named like the dashboard user\n"
        "    url: http://supabase:3000/\n"
        "    plugins:\n"
        "      - name: request-transformer\n"
        "        config: {add: {headers: ['apikey:" + ANON + "']}}\n"
    )
    env = {
        "SUPABASE_ANON_KEY": ANON,
        "SUPABASE_SERVICE_KEY": SERVICE,
        "DASHBOARD_USERNAME": "supabase",
        "DASHBOARD_PASSWORD": "hunter2",
        "KONG_PLUGINS": "cors",
    }
    imported = references_for_secrets(text, env)
    assert imported.replaced == (
        "DASHBOARD_PASSWORD",
        "DASHBOARD_USERNAME",
        "SUPABASE_ANON_KEY",
        "SUPABASE_SERVICE_KEY",
    )
    assert imported.text == (
        text.replace(ANON, "$SUPABASE_ANON_KEY")
        .replace(SERVICE, "$SUPABASE_SERVICE_KEY")
        .replace("password: 'hunter2'", "password: '$DASHBOARD_PASSWORD'")
        .replace("username: supabase\n", "username: $DASHBOARD_USERNAME\n")
    )
    assert "hunter2-docs" in imported.text and "http://supabase:3000/" in imported.text
    assert "  - name: supabase   #" in imported.text
    assert imported.left_in_clear == ()


def test_a_key_no_env_variable_holds_is_reported_by_line():
    imported = references_for_secrets(f"a: 1\nkey: {ANON}\n", {"SUPABASE_ANON_KEY": "another-key-entirely"})
    assert imported.replaced == () and imported.left_in_clear == ("line 2",)


def test_credentials_in_clear_are_named_by_path_and_masked_wherever_they_print():
    text = (
        "consumers:\n  - username: anon\n    keyauth_credentials:\n      - key: $SUPABASE_ANON_KEY\n"
        "basicauth_credentials:\n  - consumer: DASHBOARD\n    username: admin\n    password: 'Pw-only-in-the-file'\n"
    )
    imported = references_for_secrets(text, {"SUPABASE_ANON_KEY": ANON})
    assert imported.left_in_clear == ("basicauth_credentials[0].password",)
    register_file_credentials(text)
    assert "Pw-only-in-the-file" not in mask("-    password: 'Pw-only-in-the-file'\n")
    assert "$SUPABASE_ANON_KEY" in mask(text)  # a reference is not a secret
