"""The repository inventory's ``sandbox-dokploy`` host is the Dokploy sandbox the tests bring
up as ``related_spec("dokploy", 6)`` in the default run (index 26)."""

from __future__ import annotations

from pathlib import Path

import yaml

from supakong.inventory import load_inventory
from supakong.sandbox.dokploy import app_name, compose_text
from supakong.sandbox.inventory import host_vars, spec_for

INVENTORY = Path(__file__).resolve().parents[2] / "inventory" / "hosts.yml"


def test_the_inventory_host_matches_the_sandbox_spec() -> None:
    spec = spec_for("sandbox-dokploy", 26)
    expected = host_vars(spec)
    host = load_inventory(INVENTORY).host("sandbox-dokploy")
    assert spec.dokploy and spec.index == 26
    assert host.kong_container == expected["kong_container"] == f"{app_name(spec)}-kong-1"
    assert host.realtime_container == expected["realtime_container"]
    assert host.kong_config_path == expected["kong_config_path"]
    assert host.kong_config_path.startswith(f"/etc/dokploy/compose/{app_name(spec)}/files/")
    assert host.public_url == expected["public_url"]
    assert host.dokploy_url == expected["dokploy_url"] and host.dokploy_api_key_env == "DOKPLOY_API_KEY"
    assert host.docker_socket == expected["docker_socket"]
    assert host.template.name == Path(str(expected["kong_template"])).name == "kong-2026.yml.j2"


def test_the_compose_text_mounts_the_files_like_dokploys_template() -> None:
    services = yaml.safe_load(compose_text(spec_for("sandbox-dokploy", 26)))["services"]
    assert "../files/volumes/api/kong.yml:/home/kong/temp.yml:ro,z" in services["kong"]["volumes"]
    assert "container_name" not in services["kong"]
