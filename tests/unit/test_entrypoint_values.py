"""Rendered values that the host's Kong entrypoint would run or silently change are refused
when rendering, before anything connects, naming the template line and the secret (never its
value). The 2.8-era entrypoint is a shell eval; the 2026 one only substitutes known $NAMEs."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from supakong.deploy import DeployOptions, deploy_host
from supakong.errors import RenderError, TransportError, ValidationError
from supakong.eval_expansion import expand_like_eval
from supakong.inventory import load_inventory
from supakong.render import render_kong_config
from supakong.report import BufferOutput
from supakong.secrets import load_secrets

REPO = Path(__file__).resolve().parents[2]
ANON = "eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoiYW5vbiJ9.c2lnbmF0dXJlLWFub24"
SERVICE = "eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoic2VydmljZV9yb2xlIn0.c2lnbmF0dXJlLXN2Yw"
INJECTION = 'x"; touch /pwn; echo "'


def host(kong_secrets: str = "inline", kong_version: str | None = None, **values: str):
    base = load_inventory(REPO / "inventory" / "hosts.yml").host("sandbox")
    return dataclasses.replace(base, kong_secrets=kong_secrets, kong_version=kong_version, vars={**base.vars, **values})


def secrets(password: str):
    env = {"SUPABASE_ANON_KEY": ANON, "SUPABASE_SERVICE_KEY": SERVICE, "DASHBOARD_PASSWORD": password}
    return load_secrets(None, env)


def test_a_password_that_closes_the_eval_quote_is_refused_naming_the_secret_not_its_value():
    with pytest.raises(RenderError) as error:
        render_kong_config(host(), secrets(INJECTION))
    message = str(error.value)
    assert "secret DASHBOARD_PASSWORD cannot be written safely" in message and "double quote" in message
    assert "touch /pwn" not in message and "\n" not in message
    assert "kong_secrets: reference" in message


@pytest.mark.parametrize(
    ("password", "why"),
    [("pa$word", "$word"), ("a\\b", "backslash"), ("`id`", "backtick"), ("x${HOME}", "${HOME}")],
)
def test_a_password_the_eval_would_change_or_run_is_refused(password, why):
    # `pa$word` would silently become `pa` in the file Kong reads.
    with pytest.raises(RenderError, match="DASHBOARD_PASSWORD cannot be written safely") as error:
        render_kong_config(host(), secrets(password))
    assert why in str(error.value) and password not in str(error.value)


def test_an_inventory_value_with_a_double_quote_is_refused_with_its_template_line():
    with pytest.raises(RenderError) as error:
        render_kong_config(host(rest_upstream='http://rest:3000/" ; id ; "'), secrets("pw"))
    assert f"{host().template}:" in str(error.value) and "double quote" in str(error.value)


def test_the_references_we_render_are_meant_and_pass_through_the_eval_as_written():
    text = render_kong_config(host("reference"), secrets("pw"), held={"SUPABASE_ANON_KEY", "SUPABASE_SERVICE_KEY"})
    env = {"SUPABASE_ANON_KEY": "$SUPABASE_ANON_KEY", "SUPABASE_SERVICE_KEY": "$SUPABASE_SERVICE_KEY"}
    assert "$SUPABASE_ANON_KEY" in text and expand_like_eval(text, env) == text.rstrip("\n") + "\n"


def test_the_2026_entrypoint_takes_double_quotes_but_not_a_name_it_substitutes():
    # kong-entrypoint.sh only replaces the $NAMEs the container knows: quotes are fine there.
    text = render_kong_config(host(kong_version="3.9.1"), secrets(INJECTION))
    assert INJECTION.replace("'", "''") in text
    with pytest.raises(RenderError, match=r"\$SUPABASE_ANON_KEY would be replaced"):
        render_kong_config(host(kong_version="3.9.1"), secrets("pw$SUPABASE_ANON_KEY"))
    assert "pa$word" in render_kong_config(host(kong_version="3.9.1"), secrets("pa$word"))


def test_the_looked_at_expansion_decides_after_the_look():
    rendered = render_kong_config(host(), secrets(INJECTION), expansion="awk")
    assert "touch /pwn" in rendered
    with pytest.raises(RenderError):
        render_kong_config(host(kong_version="3.9.1"), secrets(INJECTION), expansion="eval")


def test_deploy_refuses_the_value_before_anything_connects():
    # Port 9 on loopback (nothing listens): any attempt to connect would be a TransportError.
    unreachable = dataclasses.replace(host(), ssh_host="127.0.0.1", ssh_port=9)
    env = {"SUPABASE_ANON_KEY": ANON, "SUPABASE_SERVICE_KEY": SERVICE, "DASHBOARD_PASSWORD": INJECTION}
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        patch.setattr("supakong.deploy.load_host_secrets", lambda _host: load_secrets(None, env))
        with pytest.raises(RenderError, match="DASHBOARD_PASSWORD"):
            deploy_host(unreachable, DeployOptions(), BufferOutput())


def test_a_file_the_eval_entrypoint_would_run_is_refused_before_anything_connects(tmp_path):
    # kong_version 2.8.1 in the inventory: the eval entrypoint, known without a look.
    unreachable = dataclasses.replace(host(kong_version="2.8.1"), ssh_host="127.0.0.1", ssh_port=9)
    file = tmp_path / "kong.yml"
    file.write_text("_format_version: '2.1'\nconsumers:\n  - username: 'x\"; touch /pwn; echo \"'\n")
    with pytest.raises(ValidationError) as error:
        deploy_host(unreachable, DeployOptions(file=file), BufferOutput())
    assert "consumers[0].username" in str(error.value) and "run as shell code" in str(error.value)
    file.write_text("_format_version: '2.1'\nconsumers:\n  - username: anon\n")
    with pytest.raises(TransportError):  # a clean file goes on to connect (nothing listens)
        deploy_host(unreachable, DeployOptions(file=file), BufferOutput())
