"""The look's command, run by a real /bin/sh on real files: it reports, then holds for the
run's audit line and appends exactly what it is sent (nothing on EOF)."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

from supakong.look import END_MARKER, look_argv, split_sections


def run_look(config: Path, stdin: bytes | None) -> tuple[str, Path]:
    log = config.parent / ".supakong" / "audit.log"
    argv = look_argv(str(config), str(config.parent / ".supakong" / "lock"), "", str(log))
    proc = subprocess.run(argv, input=stdin, capture_output=True, check=True)
    return proc.stdout.decode(), log


def test_the_held_look_reports_then_appends_the_audit_line_it_is_sent(tmp_path):
    config = tmp_path / "kong.yml"
    config.write_text("_format_version: '2.1'\n")
    out, log = run_look(config, b'{"result": "ok"}\n')
    head, marker, rest = out.partition(END_MARKER.decode() + "\n")
    assert marker and not rest
    sections = split_sections(head)
    assert sections["file"].split()[0] == hashlib.sha256(config.read_bytes()).hexdigest()
    assert sections["lock"] == "free"
    assert log.read_text() == '{"result": "ok"}\n'


def test_the_held_look_writes_nothing_when_released(tmp_path):
    config = tmp_path / "kong.yml"
    config.write_text("x: 1\n")
    _, log = run_look(config, b"")
    assert not log.parent.exists(), "no audit directory for a released look"


def test_the_audit_line_never_creates_the_config_directory(tmp_path):
    config = tmp_path / "missing" / "kong.yml"
    out, log = run_look(config, b'{"result": "failed"}\n')
    assert split_sections(out)["file"].strip() == "absent"
    assert not (tmp_path / "missing").exists()


def test_without_an_audit_log_the_look_does_not_hold(tmp_path):
    config = tmp_path / "kong.yml"
    config.write_text("x: 1\n")
    proc = subprocess.run(look_argv(str(config)), capture_output=True, check=True, timeout=10)
    assert END_MARKER not in proc.stdout


def realpath_section(config: Path) -> str:
    proc = subprocess.run(look_argv(str(config)), capture_output=True, check=True, timeout=10)
    return split_sections(proc.stdout.decode())["realpath"]


def test_the_realpath_resolves_a_symlinked_directory_and_a_symlinked_file_like_readlink_f(tmp_path):
    real = tmp_path / "data" / "volumes" / "api"
    real.mkdir(parents=True)
    (real / "kong.yml").write_text("x: 1\n")
    (tmp_path / "srv").symlink_to(tmp_path / "data")
    (real / "link.yml").symlink_to("kong.yml")
    cases = {
        tmp_path / "srv" / "volumes" / "api" / "kong.yml": real / "kong.yml",  # directory link
        tmp_path / "srv" / "volumes" / "api" / "new.yml": real / "new.yml",  # not there yet
        tmp_path / "srv" / "volumes" / "api" / "link.yml": real / "kong.yml",  # file link
        real / "kong.yml": real / "kong.yml",
        tmp_path / "missing" / "kong.yml": tmp_path / "missing" / "kong.yml",  # as given
    }
    for given, expected in cases.items():
        assert realpath_section(given) == str(expected), given
        readlink = subprocess.run(["readlink", "-f", str(given)], capture_output=True, text=True).stdout.strip()
        assert str(expected) == (readlink or str(given)), "the same answer as readlink -f"


def test_the_realpath_leaves_the_lock_section_in_the_login_directory(tmp_path):
    """The lock path is used after the realpath section changed directory and back."""
    (tmp_path / "d").mkdir()
    config = tmp_path / "d" / "kong.yml"
    config.write_text("x: 1\n")
    proc = subprocess.run(
        look_argv(str(config), "lock-here", '{"by": "test"}'), capture_output=True, check=True, cwd=tmp_path
    )
    assert split_sections(proc.stdout.decode())["lock"] == "acquired"
    assert (tmp_path / "lock-here" / "details").read_text() == '{"by": "test"}\n'
