"""Templates per era: a legacy template over a modern host (kong-entrypoint.sh) is refused,
and a modern one over a legacy host (the eval entrypoint), each naming why."""

from __future__ import annotations

from pathlib import Path

import pytest

from supakong.eras import LEGACY, MODERN, refuse_era_mismatch, text_era
from supakong.errors import ValidationError
from supakong.hostprofile import AWK, EVAL, NO_EXPANSION, HostProfile
from supakong.packaged import templates_dir

MODERN_TEXT = (templates_dir() / "kong-2026.yml.j2").read_text()
LEGACY_TEXT = (templates_dir() / "kong-simple.yml.j2").read_text()
MODERN_HOST = HostProfile(
    "kong", "supabase-kong", "kong/kong:3.9.3", expansion=AWK, entrypoint_script="/home/kong/kong-entrypoint.sh"
)
LEGACY_HOST = HostProfile("kong", "supabase-kong", "kong:2.8.1", expansion=EVAL)


def test_the_shipped_templates_have_their_eras() -> None:
    assert (text_era(MODERN_TEXT), text_era(LEGACY_TEXT)) == (MODERN, LEGACY)


def test_a_legacy_template_over_a_modern_host_is_refused_naming_why() -> None:
    with pytest.raises(ValidationError) as err:
        refuse_era_mismatch("edge", Path("kong-simple.yml.j2"), LEGACY_TEXT, MODERN_HOST)
    message = str(err.value)
    assert message.startswith("hosts/edge/kong_template: kong-simple.yml.j2 is a legacy")
    assert "/home/kong/kong-entrypoint.sh" in message and "kong/kong:3.9.3" in message
    assert "publishable key" in message and "kong-2026.yml.j2" in message


def test_a_modern_template_over_a_legacy_host_is_refused_naming_why() -> None:
    with pytest.raises(ValidationError) as err:
        refuse_era_mismatch("old", Path("kong-2026.yml.j2"), MODERN_TEXT, LEGACY_HOST)
    assert "eval entrypoint (kong:2.8.1)" in str(err.value) and "kong-simple.yml.j2" in str(err.value)


@pytest.mark.parametrize(
    ("text", "profile"),
    [
        (MODERN_TEXT, MODERN_HOST),
        (LEGACY_TEXT, LEGACY_HOST),
        (LEGACY_TEXT, HostProfile("kong", "k", "kong:3.9.3", expansion=NO_EXPANSION)),
    ],
)
def test_matching_eras_and_hosts_without_expansion_pass(text: str, profile: HostProfile) -> None:
    refuse_era_mismatch("h", Path("t.j2"), text, profile)


@pytest.mark.parametrize(
    ("flavor", "version"), [("expressions", "3.9.3"), ("traditional_compatible", "3.9.1"), ("traditional", "3.9.1")]
)
def test_the_modern_template_fits_the_router_of_the_running_kong(flavor: str, version: str) -> None:
    """Upstream's expression route (2026-06) only where Kong runs the expressions router; on
    another router /rest/v1/ stays rest-v1's, as in upstream's 2026-03 file."""
    import dataclasses

    from supakong.inventory import load_inventory
    from supakong.kong.target import KongTarget
    from supakong.kong.validate import validate_kong_config
    from supakong.render import render_kong_config
    from supakong.secrets import Secrets

    repo = Path(__file__).resolve().parents[2]
    host = load_inventory(repo / "inventory" / "hosts.yml").host("sandbox-modern")
    host = dataclasses.replace(host, secrets_env_file=None)
    text = render_kong_config(host, Secrets({}), expansion=AWK, router_flavor=flavor)
    assert ("expression: " in text) == (flavor == "expressions")
    target = KongTarget(version=version, router_flavor=flavor)
    errors = [f for f in validate_kong_config(text, target) if f.severity == "error"]
    assert errors == [], errors
