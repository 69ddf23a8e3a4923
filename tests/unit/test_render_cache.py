"""A run loads the compiled template from Jinja2's bytecode cache instead of compiling it;
the cache never holds a rendered value, follows an edited template, and is skipped when
there is no safe place for it."""

import dataclasses
import os
import stat
import tempfile
from pathlib import Path

import jinja2
import pytest

from supakong import render
from supakong.inventory import load_inventory
from supakong.render import render_kong_config
from supakong.secrets import load_secrets

REPO = Path(__file__).resolve().parents[2]

TEMPLATE = "anon: {{ secrets.SUPABASE_ANON_KEY | yaml_str }}\nhost: {{ inventory_hostname }}\n"
ANON = "eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoiYW5vbiJ9.c2VjcmV0LWluLXRoZS1jYWNoZQ"


@pytest.fixture
def temp_dir(tmp_path, monkeypatch):
    """Jinja2's default cache directory lives in the temp dir: give it a fresh one, and
    a fresh environment per render (as a new ``fab`` process has)."""
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    render._environment.cache_clear()
    yield temp
    render._environment.cache_clear()


@pytest.fixture
def template(tmp_path):
    path = tmp_path / "kong.yml.j2"
    path.write_text(TEMPLATE)
    return path


@pytest.fixture
def compiles(monkeypatch):
    """How many times Jinja2 compiled a template from source."""
    calls = []
    original = jinja2.Environment.compile

    def counting(self, *args, **kwargs):
        calls.append(args[1] if len(args) > 1 else kwargs.get("name"))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(jinja2.Environment, "compile", counting)
    return calls


def fresh_render(template):
    render._environment.cache_clear()
    # inline: the key's value is rendered, and must still never reach the cache
    host = dataclasses.replace(load_inventory(REPO / "inventory" / "hosts.yml").host("sandbox"), kong_secrets="inline")
    secrets = load_secrets(None, {"SUPABASE_ANON_KEY": ANON, "SUPABASE_SERVICE_KEY": "x"})
    return render_kong_config(host, secrets, template)


def test_a_second_run_loads_the_compiled_template_instead_of_compiling_it(temp_dir, template, compiles):
    first = fresh_render(template)
    second = fresh_render(template)
    assert first == second == f"anon: '{ANON}'\nhost: sandbox\n"
    assert compiles == ["kong.yml.j2"]  # the second environment found the code on disk
    cache = temp_dir / f"_jinja2-cache-{os.getuid()}"
    assert stat.S_IMODE(cache.stat().st_mode) == 0o700
    files = list(cache.iterdir())
    assert [f.name.startswith("__supakong_") for f in files] == [True]
    assert ANON.encode() not in files[0].read_bytes()  # compiled code, never a rendered value


def test_an_edited_template_is_compiled_again(temp_dir, template, compiles):
    fresh_render(template)
    template.write_text(TEMPLATE.replace("host:", "name:"))
    assert fresh_render(template).endswith("name: sandbox\n")
    assert len(compiles) == 2


def test_without_a_safe_cache_directory_the_template_is_compiled_as_before(temp_dir, template, compiles):
    (temp_dir / f"_jinja2-cache-{os.getuid()}").write_text("not a directory")  # Jinja2 refuses it
    assert render.bytecode_cache() is None
    assert fresh_render(template) == fresh_render(template)
    assert len(compiles) == 2


def test_a_cache_that_cannot_be_written_costs_only_the_compile(temp_dir, template, compiles, monkeypatch):
    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tempfile, "NamedTemporaryFile", disk_full)
    assert fresh_render(template) == fresh_render(template) == f"anon: '{ANON}'\nhost: sandbox\n"
    assert len(compiles) == 2


def test_the_cache_files_name_follows_the_environments_options(temp_dir, monkeypatch):
    before = render.bytecode_cache().pattern
    monkeypatch.setitem(render._OPTIONS, "trim_blocks", False)
    assert render.bytecode_cache().pattern != before
