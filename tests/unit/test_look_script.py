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
