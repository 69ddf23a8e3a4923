"""Preflight: the running Kong parses the new file (after the entrypoint's $VAR expansion)
before anything is replaced; what it refuses never reaches the volume."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest

from supakong.deploy import DeployOptions, deploy_host
from supakong.errors import ValidationError
from supakong.render import render_kong_config
from supakong.transport import HostConnection


def test_a_file_the_offline_rules_accept_but_this_kong_refuses_is_stopped_by_preflight(
    fresh_sandbox, host, secrets, out, tmp_path
):
    # The inventory claims every bundled plugin is enabled; the container only enables
    # Supabase's list. The offline validator trusts the inventory, Kong does not.
    pinned = dataclasses.replace(host, kong_version="2.8.1", kong_plugins="bundled")
    text = render_kong_config(host, secrets).replace(
        "      - name: cors\n      - name: key-auth\n        config:\n          hide_credentials: true\n",
        "      - name: cors\n      - name: rate-limiting\n        config:\n          minute: 100\n"
        "      - name: key-auth\n        config:\n          hide_credentials: true\n",
        1,
    )
    assert "rate-limiting" in text
    candidate = tmp_path / "with-rate-limiting.yml"
    candidate.write_text(text)
    config = fresh_sandbox.kong_config_path
    before = hashlib.sha256(config.read_bytes()).hexdigest()

    with pytest.raises(ValidationError) as err:
        deploy_host(pinned, DeployOptions(file=candidate), out)

    assert "kong config parse" in str(err.value) and "rate-limiting" in str(err.value)
    assert "nothing was changed" in str(err.value)
    assert hashlib.sha256(config.read_bytes()).hexdigest() == before


def test_preflight_expands_placeholders_like_the_entrypoint(fresh_sandbox, host, secrets, out, tmp_path):
    # A hand-edited file in Supabase's style: keys as $VARS, expanded from the container's env.
    text = render_kong_config(host, secrets)
    text = text.replace(f"'{secrets.anon_key}'", "$SUPABASE_ANON_KEY").replace(
        f"'{secrets.service_key}'", "$SUPABASE_SERVICE_KEY"
    )
    candidate = tmp_path / "placeholders.yml"
    candidate.write_text(text)
    result = deploy_host(host, DeployOptions(file=candidate), out)
    assert "preflight: kong config parse: parse successful" in out.text
    assert result.verify_state == "SUBSCRIBED"


def test_preflight_leaves_no_copy_of_the_file_in_the_container_whether_kong_accepts_it_or_not(
    fresh_sandbox, host, secrets, out, tmp_path
):
    refused = tmp_path / "refused.yml"
    refused.write_text(render_kong_config(host, secrets).replace("- name: cors\n", "- name: rate-limiting\n", 1))
    with pytest.raises(ValidationError, match="kong config parse"):
        deploy_host(dataclasses.replace(host, kong_plugins="bundled"), DeployOptions(file=refused), out)
    deploy_host(host, DeployOptions(verify=False), out)
    assert "preflight: kong config parse: parse successful" in out.text

    with HostConnection(host) as conn:
        code, listing = conn.engine().exec(host.kong_container, ["ls", "-a", "/tmp"])
    assert code == 0
    assert "supakong-preflight" not in listing.decode()
