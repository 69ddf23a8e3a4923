"""The modern sandbox: its spec, the repository inventory's sandbox-modern host, and
`fab sandbox-up --name` agree (index 25 = the tests' related_spec("modern", 5) by default)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from supakong.errors import InventoryError
from supakong.sandbox.inventory import MODERN_TEMPLATE, host_vars, spec_for
from tasks.sandbox_tasks import _spec

INVENTORY = Path(__file__).resolve().parents[2] / "inventory" / "hosts.yml"


def test_sandbox_modern_is_kong_3_9_3_with_opaque_keys_and_a_jwks() -> None:
    spec = _spec("sandbox-modern")
    assert (spec.name, spec.index, spec.vps_addr) == ("sandbox-modern", 25, "10.203.25.2")
    assert (spec.kong_era, spec.kong_image, spec.kong_file) == ("2026", "kong/kong:3.9.3", "kong.yml")
    assert spec.api_keys and spec.realtime_jwks


def test_the_repository_inventory_names_the_modern_sandbox_as_it_is() -> None:
    hosts = yaml.safe_load(INVENTORY.read_text())["all"]["children"]["sandbox"]["hosts"]
    written = host_vars(spec_for("sandbox-modern", 25))
    entry = hosts["sandbox-modern"]
    for key in ("public_url", "kong_container", "realtime_container", "kong_config_path", "docker_socket"):
        assert entry[key] == written[key], key
    assert entry["kong_template"] == f"templates/{MODERN_TEMPLATE.name}"


@pytest.mark.parametrize("name", ["other", "sandbox-x", "sandbox-x:1", "sandbox-x:999", "sandbox-x:a"])
def test_unknown_or_malformed_sandbox_names_are_refused(name: str) -> None:
    with pytest.raises(InventoryError):
        _spec(name)


def test_name_and_index_give_any_sandbox() -> None:
    spec = _spec("sandbox-mine-modern:140")
    assert (spec.index, spec.kong_era) == (140, "2026")
    assert _spec("sandbox-plain:30").kong_era == "legacy"
