"""Secrets are loaded from the env file and masked everywhere; rendering is strict."""

import dataclasses
from pathlib import Path

import pytest
import yaml

from supakong.errors import InventoryError, RenderError
from supakong.inventory import load_inventory
from supakong.render import render_kong_config, yaml_single_quoted
from supakong.secrets import load_secrets, mask, parse_env_file, register_secret

REPO = Path(__file__).resolve().parents[2]
ANON = "eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoiYW5vbiJ9.c2lnbmF0dXJlLWFub24"
SERVICE = "eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoic2VydmljZV9yb2xlIn0.c2lnbmF0dXJlLXN2Yw"
ENV = {"SUPABASE_ANON_KEY": ANON, "SUPABASE_SERVICE_KEY": SERVICE}


def sandbox_host(kong_secrets: str = "reference"):
    host = load_inventory(REPO / "inventory" / "hosts.yml").host("sandbox")
    return dataclasses.replace(host, kong_secrets=kong_secrets)


def test_env_file_parsing_handles_export_quotes_and_comments():
    values = parse_env_file("# c\nexport A='x y'\nB=\"z\"\n\nC=plain\n", "f.env")
    assert values == {"A": "x y", "B": "z", "C": "plain"}


def test_env_file_syntax_error_names_file_and_line():
    with pytest.raises(InventoryError, match=r"f.env:2: expected NAME=value"):
        parse_env_file("A=1\nnot a line\n", "f.env")


def test_missing_secret_names_the_variable(tmp_path):
    env_file = tmp_path / "s.env"
    env_file.write_text(f"SUPABASE_ANON_KEY={ANON}\n")
    with pytest.raises(InventoryError, match="SUPABASE_SERVICE_KEY is not set"):
        load_secrets(env_file, environ={})


def test_missing_secrets_file_is_named(tmp_path):
    with pytest.raises(InventoryError, match=r"missing.env: secrets file not found"):
        load_secrets(tmp_path / "missing.env", environ={})


def test_secrets_from_the_environment_alone_need_no_file(tmp_path):
    secrets = load_secrets(tmp_path / "missing.env", environ=ENV)
    assert secrets.anon_key == ANON and secrets.source == "environment"


def test_mask_hides_registered_values_jwts_and_key_params():
    register_secret("hunter2-dashboard")
    text = f"pw=hunter2-dashboard key={ANON} GET /x?apikey=abc123&vsn=1 apikey: sb_publishable_rawkey42abcdef"
    masked = mask(text)
    for secret in ("hunter2-dashboard", ANON, "abc123", "sb_publishable_rawkey42abcdef"):
        assert secret not in masked
    assert "vsn=1" in masked


def test_inline_render_puts_keys_in_consumers_and_keeps_realtime_route_safe():
    doc = yaml.safe_load(render_kong_config(sandbox_host("inline"), load_secrets(None, ENV)))
    consumers = {c["username"]: c for c in doc["consumers"]}
    assert consumers["anon"]["keyauth_credentials"][0]["key"] == ANON
    realtime = next(s for s in doc["services"] if s["name"] == "realtime-v1-ws")
    assert realtime["url"] == "http://realtime-dev.supabase-realtime:4000/socket"
    route = realtime["routes"][0]
    assert route["paths"] == ["/realtime/v1/"] and "preserve_host" not in route and "protocols" not in route
    assert doc["_format_version"] == "2.1"


def test_by_default_the_file_references_the_keys_kong_holds_and_writes_none():
    text = render_kong_config(
        sandbox_host(), load_secrets(None, ENV), held={"SUPABASE_ANON_KEY", "SUPABASE_SERVICE_KEY"}
    )
    assert ANON not in text and SERVICE not in text
    consumers = {c["username"]: c for c in yaml.safe_load(text)["consumers"]}
    assert consumers["anon"]["keyauth_credentials"] == [{"key": "$SUPABASE_ANON_KEY"}]
    assert consumers["service_role"]["keyauth_credentials"] == [{"key": "$SUPABASE_SERVICE_KEY"}]
    assert "DASHBOARD" not in consumers  # Kong holds no DASHBOARD_PASSWORD: no basic-auth consumer


def test_the_dashboard_consumer_appears_when_kong_holds_its_credentials():
    held = {"SUPABASE_ANON_KEY", "SUPABASE_SERVICE_KEY", "DASHBOARD_USERNAME", "DASHBOARD_PASSWORD", "KONG_PLUGINS"}
    doc = yaml.safe_load(render_kong_config(sandbox_host(), load_secrets(None, {}, required=()), held=held))
    assert doc["basicauth_credentials"] == [
        {"consumer": "DASHBOARD", "username": "$DASHBOARD_USERNAME", "password": "$DASHBOARD_PASSWORD"}
    ]


def test_a_key_kong_does_not_hold_is_one_line_naming_it_and_the_container():
    with pytest.raises(RenderError) as err:
        render_kong_config(sandbox_host(), load_secrets(None, ENV), held={"SUPABASE_ANON_KEY"})
    message = str(err.value)
    assert "\n" not in message and "SUPABASE_SERVICE_KEY" in message and "sandbox-supabase-kong" in message
    assert "kong_secrets: inline" in message


@pytest.mark.parametrize("kong_secrets", ["reference", "inline"])
def test_rendered_file_survives_the_entrypoint_shell_eval(kong_secrets):
    # Supabase's entrypoint runs the file through `eval "echo \"...\""`: no backticks or
    # double quotes may appear in what we upload, and no $ but the references it expands.
    text = render_kong_config(sandbox_host(kong_secrets), load_secrets(None, ENV))
    for name in ("SUPABASE_ANON_KEY", "SUPABASE_SERVICE_KEY"):
        text = text.replace(f"${name}", "")
    assert not any(ch in text for ch in '$`"\\')


def test_undefined_variable_names_template_line(tmp_path):
    template = tmp_path / "t.yml.j2"
    template.write_text("a: 1\nb: {{ no_such_var }}\n")
    with pytest.raises(RenderError) as err:
        render_kong_config(sandbox_host(), load_secrets(None, ENV), template)
    assert f"{template}:2:" in str(err.value) and "no_such_var" in str(err.value)


def test_template_syntax_error_names_line(tmp_path):
    template = tmp_path / "t.yml.j2"
    template.write_text("a: 1\n{% if %}\n")
    with pytest.raises(RenderError, match=r"t.yml.j2:2: template syntax error"):
        render_kong_config(sandbox_host(), load_secrets(None, ENV), template)


@pytest.mark.parametrize("value", ["plain", "it's", "a'b''c", "x: y # z"])
def test_yaml_single_quoted_round_trips(value):
    assert yaml.safe_load(f"k: {yaml_single_quoted(value)}")["k"] == value
