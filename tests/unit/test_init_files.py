"""`supakong init`'s pure parts: the live file as a template (byte for byte), `--fix` on the
user's own text (only the offending lines), and local files written idempotently with the
user's comments kept."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from supakong.adopt.hostvars import SshTarget, connection_vars
from supakong.adopt.importer import as_template, escape_jinja
from supakong.adopt.localfiles import CREATED, UNCHANGED, UPDATED, Entry, add_host, update_vars
from supakong.adopt.remedies import FixContext, apply_remedies
from supakong.errors import InventoryError
from supakong.inventory import load_inventory
from supakong.render import render_string

CUSTOM_SEED = (Path(__file__).resolve().parents[2] / "supakong" / "sandbox" / "seed-kong-custom.yml").read_text()

# ----------------------------------------------------------------------------- the template


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("{}%#-+ \n'\"ab$\\`:[]")), max_size=120))
def test_an_escaped_file_renders_back_byte_for_byte(text):
    assert render_string(escape_jinja(text)) == text


def test_jinja_in_the_users_file_is_kept_as_text():
    text = "# {{ not a variable }} {% if x %}\nkey: '{#x#}'\n"
    assert render_string(as_template(text, "kong.yml")) == text


def test_windows_line_endings_are_one_line_naming_the_file():
    with pytest.raises(InventoryError, match=r"kong.yml: the file has Windows line endings"):
        as_template("a: 1\r\nb: 2\r\n", "/srv/kong.yml")


# ----------------------------------------------------------------------------- --fix


def test_the_seed_mistakes_are_fixed_line_by_line_and_the_rest_is_untouched():
    fixed = apply_remedies(CUSTOM_SEED, FixContext())
    expected = (
        CUSTOM_SEED.replace("        preserve_host: true   # keep the browser's Host\n", "")
        .replace("protocols: [http, https, ws, wss]", "protocols: [http, https]")
        .replace(
            "        config:\n          headers:\n            - Sec-WebSocket-Key\n"
            "            - Sec-WebSocket-Version\n            - Sec-WebSocket-Extensions\n",
            "",
        )
        .replace("          anonymous: anon\n", "")
    )
    assert fixed.text == expected
    assert [r.where for r in fixed.remedies] == [
        "services[1].routes[0].protocols",
        "services[1].routes[0].preserve_host",
        "services[1].plugins[0].config.headers",
        "services[1].plugins[1].config.anonymous",
    ]
    assert all(r.applied and "(" in r.why for r in fixed.remedies)
    assert "# office and VPN only" in fixed.text and "name: my-api" in fixed.text
    assert apply_remedies(fixed.text, FixContext()).remedies == ()  # nothing left to fix


ROUTE = """services:
  - name: realtime-v1-ws
    url: http://realtime-dev.supabase-realtime:4000/socket
    routes:
      - name: realtime-v1-ws
        paths:
          - /realtime/v1/
        protocols:
          - ws
          - http
          - wss
    plugins:
      - name: cors
        config:
          max_age: 3600
          headers:
            - apikey
            - sec-websocket-protocol
      - name: key-auth
        config:
          anonymous: anon
"""


def test_block_lists_lose_only_the_offending_items_and_emptied_configs_go():
    fixed = apply_remedies(ROUTE, FixContext())
    doc = yaml.safe_load(fixed.text)
    service = doc["services"][0]
    assert service["routes"][0]["protocols"] == ["http"]
    assert service["plugins"][0]["config"] == {"max_age": 3600, "headers": ["apikey"]}
    assert service["plugins"][1] == {"name": "key-auth"}  # config held anonymous only


def test_enterprise_keeps_ws_protocols():
    fixed = apply_remedies(ROUTE, FixContext(enterprise=True))
    assert yaml.safe_load(fixed.text)["services"][0]["routes"][0]["protocols"] == ["ws", "http", "wss"]


def test_a_key_that_is_not_a_line_of_its_own_is_reported_not_edited():
    text = ROUTE.replace(
        "      - name: realtime-v1-ws\n        paths:",
        "      - preserve_host: true\n        name: realtime-v1-ws\n        paths:",
    )
    fixed = apply_remedies(text, FixContext())
    remedy = next(r for r in fixed.remedies if r.where.endswith("preserve_host"))
    assert not remedy.applied and "by hand" in remedy.as_line() and "NOT fixed" in remedy.as_line()
    assert "- preserve_host: true" in fixed.text


def test_an_upstream_that_misses_the_tenant_points_at_a_name_of_the_realtime_container():
    text = ROUTE.replace("realtime-dev.supabase-realtime", "realtime")
    fixed = apply_remedies(text, FixContext(realtime_names=("acme-realtime-1", "realtime-dev.acme-realtime")))
    assert "url: http://realtime-dev.acme-realtime:4000/socket" in fixed.text
    without = apply_remedies(text, FixContext(realtime_names=("acme-realtime-1",)))
    remedy = next(r for r in without.remedies if r.where.endswith(".url"))
    assert not remedy.applied and "SELF_HOST_TENANT_NAME=realtime" in remedy.what
    assert "url: http://realtime:4000/socket" in without.text


def test_a_file_that_is_not_yaml_is_left_alone():
    assert apply_remedies("a: [\n", FixContext()).text == "a: [\n"


# ----------------------------------------------------------------------------- local files

HOSTS = """# Our servers. Keep this comment.
all:
  children:
    production:  # the real ones
      hosts:
        edge-1:
          ansible_host: 203.0.113.7   # office VPN address
"""


def test_a_new_host_is_added_and_the_users_comments_stay(tmp_path):
    path = tmp_path / "hosts.yml"
    path.write_text(HOSTS)
    assert add_host(path, "sandbox-new", {"ansible_host": "10.0.0.2"}) == UPDATED
    text = path.read_text()
    assert text.startswith(HOSTS) and "# office VPN address" in text and "# the real ones" in text
    assert yaml.safe_load(text)["all"]["hosts"] == {"sandbox-new": {"ansible_host": "10.0.0.2"}}
    assert add_host(path, "sandbox-new", {"ansible_host": "10.0.0.2"}) == UNCHANGED


def test_an_existing_host_is_updated_where_it_is_never_duplicated(tmp_path):
    path = tmp_path / "hosts.yml"
    path.write_text(HOSTS)
    assert add_host(path, "edge-1", {"ansible_host": "203.0.113.8", "ansible_user": "deploy"}) == UPDATED
    doc = yaml.safe_load(path.read_text())
    assert doc["all"]["children"]["production"]["hosts"]["edge-1"] == {
        "ansible_host": "203.0.113.8",
        "ansible_user": "deploy",
    }
    assert "hosts" not in doc["all"] and "# the real ones" in path.read_text()


def test_host_vars_keep_the_users_own_variables_and_a_second_write_changes_nothing(tmp_path):
    path = tmp_path / "host_vars" / "edge-1.yml"
    entries = [Entry("kong_container", "supabase-kong", "image kong:2.8.1"), Entry("db_container", None, "none found")]
    assert (
        update_vars(path, "found by init", entries, {"supakong_discovered": [Entry("names", ["A", "B"], "x")]})
        == CREATED
    )
    path.write_text(path.read_text() + "verify_table: public.orders   # ours\n")
    assert (
        update_vars(path, "found by init", entries, {"supakong_discovered": [Entry("names", ["A", "B"], "x")]})
        == UNCHANGED
    )
    changed = [Entry("kong_container", "api-gw", "image kong/kong:3.9.1"), entries[1]]
    assert update_vars(path, "found by init", changed, {}) == UPDATED
    text = path.read_text()
    assert "kong_container: api-gw" in text and "# image kong/kong:3.9.1" in text and "kong:2.8.1" not in text
    assert "verify_table: public.orders   # ours" in text and "names: [A, B]" in text
    assert yaml.safe_load(text)["db_container"] is None


def test_an_inventory_written_by_init_loads(tmp_path):
    inventory = tmp_path / "inventory"
    add_host(
        inventory / "hosts.yml", "sandbox-x", connection_vars("sandbox-x", SshTarget.parse("root@10.0.0.9:2222"), None)
    )
    update_vars(
        inventory / "host_vars" / "sandbox-x.yml",
        "h",
        [
            Entry("public_url", "http://10.0.0.9:8000"),
            Entry("kong_container", "k"),
            Entry("realtime_container", "r"),
            Entry("kong_config_path", "/srv/k.yml"),
        ],
        {},
    )
    host = load_inventory(inventory / "hosts.yml").host("sandbox-x")
    assert (host.ssh_host, host.ssh_user, host.ssh_port, host.kong_container) == ("10.0.0.9", "root", 2222, "k")


@pytest.mark.parametrize("bad", ["", "a b", "host:port", "@"])
def test_a_bad_ssh_target_is_refused(bad):
    with pytest.raises(ValueError, match="--ssh"):
        SshTarget.parse(bad)
