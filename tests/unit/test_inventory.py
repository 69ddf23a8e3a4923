"""The inventory: Ansible's shape, merge order, validation errors that name the key."""

from pathlib import Path

import pytest

from supakong.errors import InventoryError
from supakong.inventory import check_allowed, load_inventory

REPO_INVENTORY = Path(__file__).resolve().parents[2] / "inventory" / "hosts.yml"


def write_inventory(tmp_path: Path, hosts_yml: str) -> Path:
    inv = tmp_path / "inventory"
    (inv / "group_vars").mkdir(parents=True)
    (inv / "host_vars").mkdir()
    (inv / "hosts.yml").write_text(hosts_yml)
    return inv / "hosts.yml"


MINIMAL = """
all:
  vars:
    kong_container: k
    realtime_container: r
    kong_config_path: /srv/kong.yml
    public_url: http://127.0.0.1:8000
  children:
    edge:
      vars:
        backups_keep: 7
      hosts:
        edge-1:
          ansible_host: 127.0.0.1
          ansible_port: 2222
        edge-2: {}
"""


def test_repo_inventory_holds_the_real_host_and_the_sandbox():
    inventory = load_inventory(REPO_INVENTORY)
    real = inventory.host("mudrock-enterprise")
    assert real.kong_container == "mudrock-supabase-kong"
    assert real.realtime_container == "mudrock-supabase-realtime"
    assert real.public_url == "http://91.99.166.223:8000"
    assert inventory.host("sandbox").groups == ("all", "sandbox")


def test_unknown_host_is_one_line_listing_known_hosts():
    inventory = load_inventory(REPO_INVENTORY)
    with pytest.raises(InventoryError) as err:
        inventory.host("mudrock")
    message = str(err.value)
    assert "\n" not in message
    assert "unknown host 'mudrock'" in message and "mudrock-enterprise, sandbox" in message


def test_vars_merge_in_ansible_precedence_order(tmp_path):
    path = write_inventory(
        tmp_path, MINIMAL.replace("ansible_port: 2222", "ansible_port: 2222\n          verify_channel: inline")
    )
    (path.parent / "group_vars" / "all.yml").write_text("backups_keep: 3\nverify_channel: from-all\n")
    (path.parent / "group_vars" / "edge.yml").write_text("backups_keep: 9\n")
    (path.parent / "host_vars" / "edge-2.yml").write_text("backups_keep: 11\n")
    inventory = load_inventory(path)
    assert inventory.host("edge-1").backups_keep == 9  # group_vars/edge.yml beats inline group vars (7)
    assert inventory.host("edge-2").backups_keep == 11  # host_vars beat everything
    assert inventory.host("edge-1").verify_channel == "inline"  # inline host vars beat group_vars files
    assert inventory.host("edge-2").verify_channel == "from-all"
    assert inventory.host("edge-1").ssh_port == 2222
    assert inventory.host("edge-2").ssh_host == "edge-2"


def test_each_vars_file_is_read_once_however_many_hosts_share_it(tmp_path, monkeypatch):
    import supakong.inventory

    path = write_inventory(tmp_path, MINIMAL)
    (path.parent / "group_vars" / "all.yml").write_text("backups_keep: 3\n")
    (path.parent / "group_vars" / "edge.yml").write_text("backups_keep: 9\n")
    (path.parent / "host_vars" / "edge-2.yml").write_text("backups_keep: 11\n")
    read: list[str] = []
    real = supakong.inventory._read_yaml
    monkeypatch.setattr(supakong.inventory, "_read_yaml", lambda p: read.append(p.name) or real(p))
    inventory = load_inventory(path)
    assert sorted(read) == ["all.yml", "edge-2.yml", "edge.yml", "hosts.yml"]
    assert [inventory.host(h).backups_keep for h in ("edge-1", "edge-2")] == [9, 11]


def test_group_selection_and_unknown_group(tmp_path):
    inventory = load_inventory(write_inventory(tmp_path, MINIMAL))
    assert [h.name for h in inventory.select(group="edge")] == ["edge-1", "edge-2"]
    with pytest.raises(InventoryError, match="unknown group 'nope'"):
        inventory.select(group="nope")


@pytest.mark.parametrize(
    "override, key",
    [
        ("ansible_port: abc", "hosts/edge-1/ansible_port"),
        ("ansible_port: 70000", "hosts/edge-1/ansible_port"),
        ("kong_container: 'kong; rm -rf /'", "hosts/edge-1/kong_container"),
        ("kong_config_path: 'relative/kong.yml'", "hosts/edge-1/kong_config_path"),
        ("kong_config_path: '/srv/$(reboot).yml'", "hosts/edge-1/kong_config_path"),
        ("public_url: 'ftp://x'", "hosts/edge-1/public_url"),
        ("ansible_host: 'a b'", "hosts/edge-1/ansible_host"),
    ],
    ids=[
        "port-not-int",
        "port-out-of-range",
        "container-shell-metachars",
        "relative-path",
        "path-substitution",
        "bad-url",
        "host-with-space",
    ],
)
def test_bad_values_are_refused_naming_the_key(tmp_path, override, key):
    text = MINIMAL.replace("ansible_port: 2222", override)
    with pytest.raises(InventoryError) as err:
        load_inventory(write_inventory(tmp_path, text))
    assert key in str(err.value)
    assert str(err.value).startswith(str(tmp_path))


def test_broken_yaml_names_file_and_line(tmp_path):
    with pytest.raises(InventoryError, match=r"hosts.yml:\d+:\d+: invalid YAML"):
        load_inventory(write_inventory(tmp_path, "all:\n  hosts:\n    a: [b\n    c: ]\n"))


def test_allowlist_refuses_hosts_outside_it():
    inventory = load_inventory(REPO_INVENTORY)
    check_allowed(inventory.host("sandbox"), {"SUPAKONG_HOST_ALLOWLIST": "sandbox*"})
    with pytest.raises(InventoryError, match="not allowed"):
        check_allowed(inventory.host("mudrock-enterprise"), {"SUPAKONG_HOST_ALLOWLIST": "sandbox*"})
