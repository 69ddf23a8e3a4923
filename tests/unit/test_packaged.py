"""What ships in the package: an inventory of the user's own, anywhere, renders without a
copy of the checkout's templates/ or group_vars/all.yml."""

from pathlib import Path

import pytest

from supakong.errors import RenderError
from supakong.inventory import load_inventory
from supakong.packaged import templates_dir
from supakong.render import render_kong_config
from supakong.secrets import load_secrets

SECRETS = load_secrets(None, {"SUPABASE_ANON_KEY": "anon-key-value", "SUPABASE_SERVICE_KEY": "service-key-value"})
HOST = """
all:
  hosts:
    edge:
      public_url: http://127.0.0.1:8000
      kong_container: k
      realtime_container: r
      kong_config_path: /srv/kong.yml
      kong_secrets: inline
"""


def own_inventory(root: Path, extra: str = "") -> Path:
    """DIR/inventory/hosts.yml with nothing else beside it (no group_vars/)."""
    path = root / "inventory" / "hosts.yml"
    path.parent.mkdir(parents=True)
    path.write_text(HOST + extra)
    return path


def test_an_inventory_of_its_own_renders_the_shipped_template_with_the_shipped_upstreams(tmp_path):
    host = load_inventory(own_inventory(tmp_path)).host("edge")
    assert host.template == templates_dir() / "kong-simple.yml.j2"
    rendered = render_kong_config(host, SECRETS)
    assert "url: http://storage:5000/" in rendered and "url: http://rest:3000/" in rendered


def test_a_template_in_the_project_directory_wins_over_the_shipped_one(tmp_path):
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "kong-simple.yml.j2").write_text("_format_version: '2.1'\n# {{ storage_upstream }}\n")
    host = load_inventory(own_inventory(tmp_path)).host("edge")
    assert host.template == tmp_path / "templates" / "kong-simple.yml.j2"
    assert render_kong_config(host, SECRETS) == "_format_version: '2.1'\n# http://storage:5000\n"


def test_inventory_variables_override_the_shipped_defaults(tmp_path):
    host = load_inventory(own_inventory(tmp_path, "      storage_upstream: http://files:5000\n")).host("edge")
    assert "url: http://files:5000/" in render_kong_config(host, SECRETS)


def test_a_missing_template_names_every_place_searched(tmp_path):
    host = load_inventory(own_inventory(tmp_path, "      kong_template: templates/edge/kong.yml.j2\n")).host("edge")
    with pytest.raises(RenderError) as err:
        render_kong_config(host, SECRETS)
    message = str(err.value)
    assert "template not found" in message and "\n" not in message
    assert str(tmp_path / "templates" / "edge" / "kong.yml.j2") in message
    assert str(templates_dir() / "edge" / "kong.yml.j2") in message
