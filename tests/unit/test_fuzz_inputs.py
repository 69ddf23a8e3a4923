"""Bad input is refused before anything connects, and secrets never print: property tests.

- random inventory documents and values: loaded and safe, or one InventoryError line naming the file;
- random template text: rendered, or one RenderError line naming file:line;
- random container names and paths: refused, or safe in every remote command (argv lists,
  never interpolated into a script, round-tripping through shlex);
- mask(): a registered secret never survives, however it is embedded or encoded.

`pytest --hypothesis-show-statistics` prints how many inputs each property tried.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import re
import shlex
import tempfile
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from supakong import audit, hostlock, look, remote_file
from supakong import secrets as secrets_module
from supakong.errors import InventoryError, RenderError
from supakong.eval_expansion import expand_like_eval
from supakong.inventory import HostConfig, load_inventory
from supakong.kong.findings import has_errors
from supakong.kong.target import KongTarget
from supakong.kong.validate import validate_kong_config
from supakong.render import render_kong_config
from supakong.secrets import MASK, Secrets, mask, register_secret

REPO = Path(__file__).resolve().parents[2]


def fuzz(examples: int) -> settings:
    """Hypothesis settings of one fuzzer: ``examples`` inputs, no per-example deadline."""
    return settings(max_examples=examples, deadline=None, suppress_health_check=[HealthCheck.too_slow])


VALID_HOST = {
    "public_url": "http://10.0.0.1:8000",
    "kong_container": "supabase-kong",
    "realtime_container": "supabase-realtime",
    "kong_config_path": "/srv/supabase/volumes/api/kong-simple.yml",
}
#: Every variable the inventory validates, plus ones the template reads.
KEYS = [
    *VALID_HOST,
    "ansible_host",
    "ansible_port",
    "ansible_user",
    "ansible_ssh_private_key_file",
    "ssh_config_file",
    "kong_config_mount",
    "kong_config_mode",
    "backups_keep",
    "realtime_upstream_host",
    "realtime_upstream_port",
    "realtime_tenant",
    "kong_version",
    "kong_edition",
    "kong_plugins",
    "secrets_env_file",
    "kong_template",
    "verify_channel",
    "verify_table",
    "verify_vsn",
    "rest_upstream",
]
SHELLY = st.text(alphabet=st.sampled_from([*"az09/-._ $`;|&<>()'\"\\\n\t*?~!#%{}[]=:", "\x00", "é", "\u202e"]))
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.text(max_size=30)
    | SHELLY
)
YAML_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=12,
)


@contextlib.contextmanager
def inventory_file(document: object | bytes) -> Iterator[Path]:
    """A hosts.yml (with empty group_vars/ and host_vars/) holding ``document``."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "inventory" / "hosts.yml"
        (path.parent / "group_vars").mkdir(parents=True)
        (path.parent / "host_vars").mkdir()
        if isinstance(document, bytes):
            path.write_bytes(document)
        else:
            path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
        yield path


def assert_one_line_naming(error: Exception, *names: str) -> None:
    message = str(error)
    assert "\n" not in message and "\r" not in message, message
    for name in names:
        assert name in message, f"{name!r} not in {message!r}"


def remote_argvs(host: HostConfig) -> list[list[str]]:
    """Every remote command supakong builds from a host's names and paths."""
    path, stamp = host.kong_config_path, "20260101T000000000000Z"
    owner = hostlock.LockOwner.current("deploy-kong")
    return [
        remote_file.stat_argv(path),
        remote_file.replace_argv(
            path, remote_file.temp_path(path), remote_file.backup_path(path, stamp), "0" * 64, 0o640, 5, "1" * 64
        ),
        remote_file.restore_argv(path, remote_file.backup_path(path, stamp)),
        remote_file.list_backups_argv(path),
        look.look_argv(path, hostlock.lock_path(path), owner.to_json()),
        hostlock.release_argv(path, owner),
        audit.append_argv(path, "{}", hostlock.lock_path(path), owner.token),
        audit.read_audit_argv(path, 20),
    ]


SCRIPTS = {
    remote_file._STAT_SCRIPT,
    remote_file._REPLACE_SCRIPT,
    remote_file._RESTORE_SCRIPT,
    look._LOOK_SCRIPT,
    hostlock._RELEASE_SCRIPT,
    audit._APPEND_AND_RELEASE_SCRIPT,
}


def assert_safe_on_the_host(host: HostConfig) -> None:
    """What an accepted host can never do: inject an option, a word or a command remotely."""
    for name in (host.kong_container, host.realtime_container):
        assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name), name
    for path in (host.kong_config_path, host.kong_config_mount):
        assert re.fullmatch(r"(/[A-Za-z0-9._+][A-Za-z0-9._+-]*)+", path), path
    assert not host.ssh_host.startswith("-")
    for argv in remote_argvs(host):
        assert isinstance(argv, list) and all(isinstance(a, str) and "\x00" not in a for a in argv)
        assert shlex.split(shlex.join(argv)) == argv
        # The script is a fixed constant; values only ever travel as its positional arguments.
        if argv[:2] == ["sh", "-c"]:
            assert argv[2] in SCRIPTS or argv[2].startswith(("cd ", "tail ")), argv[2]
            assert all(not a.startswith("-") for a in argv[4:]), argv


# -- inventories -------------------------------------------------------------------------


@fuzz(200)
@given(document=YAML_VALUES)
def test_any_yaml_document_loads_or_is_refused_in_one_line_naming_the_file(document):
    with inventory_file(document) as path:
        try:
            inventory = load_inventory(path)
        except InventoryError as err:
            assert_one_line_naming(err, str(path.parent))
            return
        for host in inventory.hosts.values():
            assert_safe_on_the_host(host)


@fuzz(200)
@given(
    shape=st.fixed_dictionaries(
        {},
        optional={
            "vars": YAML_VALUES,
            "hosts": st.dictionaries(st.text(max_size=8) | SHELLY, YAML_VALUES, max_size=3) | YAML_VALUES,
            "children": st.dictionaries(st.text(max_size=8) | SHELLY, YAML_VALUES, max_size=3) | YAML_VALUES,
            "other": YAML_VALUES,
        },
    )
)
def test_any_inventory_shaped_document_loads_or_is_refused_in_one_line(shape):
    with inventory_file({"all": shape}) as path:
        try:
            inventory = load_inventory(path)
        except InventoryError as err:
            assert_one_line_naming(err, str(path.parent))
            return
        for host in inventory.hosts.values():
            assert_safe_on_the_host(host)


@fuzz(200)
@given(raw=st.binary(max_size=200) | st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass")))
def test_any_bytes_as_inventory_are_refused_or_loaded_never_a_crash(raw):
    with inventory_file(raw) as path:
        try:
            load_inventory(path)
        except InventoryError as err:
            assert_one_line_naming(err, str(path))


@fuzz(400)
@given(key=st.sampled_from(KEYS), value=YAML_VALUES, where=st.sampled_from(["host", "group", "all"]))
def test_any_value_for_any_variable_is_refused_naming_the_key_or_is_safe(key, value, where):
    host_vars, group_vars, all_vars = dict(VALID_HOST), {}, {}
    {"host": host_vars, "group": group_vars, "all": all_vars}[where][key] = value
    document = {"all": {"vars": all_vars, "children": {"edge": {"vars": group_vars, "hosts": {"edge-1": host_vars}}}}}
    with inventory_file(document) as path:
        try:
            inventory = load_inventory(path)
        except InventoryError as err:
            assert_one_line_naming(err, str(path), f"hosts/edge-1/{key}")
            return
        host = inventory.host("edge-1")
        assert_safe_on_the_host(host)
        if where == "host" and key in ("kong_container", "realtime_container", "kong_config_path"):
            assert str(value) in (host.kong_container, host.realtime_container, host.kong_config_path)


@fuzz(150)
@given(name=SHELLY | st.text(max_size=40))
def test_container_names_and_paths_with_shell_metacharacters_are_refused(name):
    for key, value in (("kong_container", name), ("realtime_container", name), ("kong_config_path", "/srv/" + name)):
        with inventory_file({"all": {"hosts": {"edge-1": {**VALID_HOST, key: value}}}}) as path:
            try:
                host = load_inventory(path).host("edge-1")
            except InventoryError as err:
                assert_one_line_naming(err, str(path), f"hosts/edge-1/{key}")
                continue
            assert not set(value) & set(" \t\n$`;|&<>()'\"\\*?~!#%{}[]=:\x00"), value
            assert_safe_on_the_host(host)


@fuzz(300)
@given(values=st.lists(st.text(), min_size=6, max_size=6))
def test_remote_commands_are_argv_lists_whatever_the_values(values):
    path, tmp, backup, sha, kong, realtime = values
    built = [
        remote_file.stat_argv(path),
        remote_file.replace_argv(path, tmp, backup, sha, 0o640, 3, sha),
        remote_file.restore_argv(path, backup),
        remote_file.list_backups_argv(path),
        look.look_argv(path, tmp, sha),
    ]
    fixed = [remote_file.list_backups_argv("/x")[2], *SCRIPTS]
    for argv in built:
        assert isinstance(argv, list) and argv[:2] == ["sh", "-c"] and argv[2] in fixed, "a value got into a script"
        assert shlex.split(shlex.join(argv)) == argv


# -- templates ---------------------------------------------------------------------------

NAMES = st.sampled_from(
    ["inventory_hostname", "secrets", "secrets.SUPABASE_ANON_KEY", "nope", "rest_upstream", "x.y", "loop", "range(3)"]
    + ["1", "0", "'s'", "'`'", "'$('", "[1]", "{}", "none", "true", "kong_container", "secrets.nope", "-1", "1.5"]
)
OPS = st.sampled_from([" + ", " - ", " / ", " // ", " % ", " ~ ", " and ", " or ", " if ", " else ", " is ", " in "])
PUNCT = st.sampled_from(["|", ".", "[", "]", "(", ")", ",", " not ", "=", ":"])
FILTERS = st.sampled_from(
    ["int", "upper", "yaml_str", "join", "first", "last", "attr('x')", "nofilter", "default(1)", "length", "tojson"]
    + ["replace(1)", "indent", "batch(0)", "slice(0)", "round", "sum", "map(attribute='a')", "list", "dictsort"]
)
EXPR = st.lists(NAMES | OPS | PUNCT | FILTERS, max_size=7).map("".join)
TAGS = st.sampled_from(
    ["{% if x %}", "{% if 1 %}", "{% else %}", "{% endif %}", "{% for i in ", "{% endfor %}", "{% set a = ", "%}"]
    + ["{{", "}}", "{#", "#}", "{% raw %}", "{% endraw %}", "{% macro m() %}", "{% endmacro %}", "{{ m() }}"]
    + ["{% include 'x.j2' %}", "{% extends 'y.j2' %}", "{% block b %}", "{% endblock %}", "{% filter upper %}"]
    + ["{% endfilter %}", "{% nope %}", "\n", "text: ", "  - ", "{%- ", " -%}", "{{ secrets.JWT_SECRET }}"]
)
TEMPLATES = st.lists(TAGS | EXPR.map(lambda e: "{{ " + e + " }}") | EXPR | st.text(max_size=8), max_size=14).map(
    "".join
)
FUZZ_SECRETS = Secrets(
    {
        "SUPABASE_ANON_KEY": "eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoiYW5vbiJ9.ZnV6ei1hbm9uLXNpZw",
        "SUPABASE_SERVICE_KEY": "eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoic2VydmljZSJ9.ZnV6ei1zdmMtc2ln",
        "JWT_SECRET": "fuzz-jwt-secret-0123456789",
    }
)


@functools.cache
def fuzz_host() -> HostConfig:
    return load_inventory(REPO / "inventory" / "hosts.yml").host("sandbox")


@fuzz(400)
@given(text=TEMPLATES)
def test_any_template_renders_or_fails_with_one_line_naming_file_and_line(text):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "kong.yml.j2"
        path.write_text(text, encoding="utf-8")
        try:
            rendered = render_kong_config(fuzz_host(), FUZZ_SECRETS, path)
        except RenderError as err:
            assert_one_line_naming(err)
            assert re.match(re.escape(str(path)) + r":(\d+|\?): ", str(err)), str(err)
            assert FUZZ_SECRETS.get("JWT_SECRET") not in str(err)
            return
        assert isinstance(rendered, str)


@fuzz(150)
@given(key=st.sampled_from(["rest_upstream", "auth_upstream", "meta_upstream"]), value=SHELLY)
def test_no_inventory_value_can_make_the_entrypoint_run_a_command(key, value):
    host = fuzz_host()
    host = dataclasses.replace(host, vars={**host.vars, key: value})
    try:
        rendered = render_kong_config(host, FUZZ_SECRETS)
    except RenderError as err:
        assert_one_line_naming(err, str(host.template))
        assert any(c in value for c in '$`"\\'), "refused only for what the shell eval takes"
        return
    # What the entrypoint's eval writes is what we rendered: nothing ran, nothing changed
    # but the references we meant (each expanded here to itself).
    meant = {name: f"${name}" for name in ("SUPABASE_ANON_KEY", "SUPABASE_SERVICE_KEY", "DASHBOARD_PASSWORD")}
    assert expand_like_eval(rendered, {**meant, "DASHBOARD_USERNAME": "$DASHBOARD_USERNAME"}) == (
        rendered.rstrip("\n") + "\n"
    )


def test_an_upstream_that_would_run_a_command_in_kongs_entrypoint_is_refused_with_its_line():
    host = fuzz_host()
    host = dataclasses.replace(host, vars={**host.vars, "rest_upstream": "http://rest:3000/$(id)"})
    try:
        render_kong_config(host, FUZZ_SECRETS)
    except RenderError as err:
        assert re.match(re.escape(str(host.template)) + r":\d+: a value cannot be written safely", str(err))
        assert "it contains $( or a backtick" in str(err)
    else:
        raise AssertionError("rendered a file whose shell expansion runs `id` in the Kong container")


def test_a_runtime_error_in_template_code_is_a_render_error_with_its_line(tmp_path):
    path = tmp_path / "t.j2"
    path.write_text("a: 1\nb: {{ 1 / 0 }}\n")
    try:
        render_kong_config(fuzz_host(), FUZZ_SECRETS, path)
    except RenderError as err:
        assert str(err) == f"{path}:2: ZeroDivisionError: division by zero"
    else:
        raise AssertionError("no error")


# -- mask ----------------------------------------------------------------------------------


@contextlib.contextmanager
def isolated_secrets() -> Iterator[None]:
    """Register secrets for one example only (mask's registry is process-wide)."""
    saved = set(secrets_module._known)
    try:
        yield
    finally:
        secrets_module._known.clear()
        secrets_module._known.update(saved)


ENCODINGS = {
    "plain": lambda s: s,
    "percent": lambda s: urllib.parse.quote(s, safe=""),
    "percent-form": lambda s: urllib.parse.quote_plus(s),
    "percent-url": lambda s: urllib.parse.quote(s),
    "json": lambda s: json.dumps(s)[1:-1],
    "json-utf8": lambda s: json.dumps(s, ensure_ascii=False)[1:-1],
}
SECRET_TEXT = st.text(min_size=6, max_size=40).filter(lambda s: s.strip() and MASK not in s)


@fuzz(1000)
@given(
    secret=SECRET_TEXT | SHELLY.filter(lambda s: len(s) >= 6 and MASK not in s),
    encoding=st.sampled_from(sorted(ENCODINGS)),
    before=st.text(max_size=30),
    after=st.text(max_size=30),
    times=st.integers(1, 3),
)
def test_mask_never_leaves_a_registered_secret_however_it_is_embedded(secret, encoding, before, after, times):
    embedded = ENCODINGS[encoding](secret)
    with isolated_secrets():
        register_secret(secret)
        masked = mask(before + (embedded + after) * times)
    assert secret not in masked and embedded not in masked


@fuzz(300)
@given(payload=st.dictionaries(st.text(max_size=8), st.text(max_size=20), max_size=4), secret=SECRET_TEXT)
def test_mask_hides_a_secret_inside_a_json_report(payload, secret):
    with isolated_secrets():
        register_secret(secret)
        masked = mask(json.dumps({**payload, "message": f"failed with {secret}"}))
    assert json.dumps(secret)[1:-1] not in masked and secret not in masked


def test_a_hand_edited_file_whose_entrypoint_expansion_runs_a_command_is_refused():
    rendered = render_kong_config(fuzz_host(), FUZZ_SECRETS)
    for payload in ("$(touch /tmp/pwned)", "`touch /tmp/pwned`"):
        text = rendered.replace("url: http://rest:3000/", f"url: http://rest:3000/{payload}", 1)
        assert payload in text
        findings = validate_kong_config(text, KongTarget.from_image("kong:2.8.1", None, "realtime-dev"), source="f.yml")
        assert has_errors(findings), payload
