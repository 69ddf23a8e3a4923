"""The scheduled redeploy is not a way to root: installed as root it runs as a non-root user
(default $SUDO_USER) unless --as-root, which first checks that every file it runs is root's
alone; the service is hardened; the templates are rendered in Jinja2's sandbox; control
characters never reach a unit field or a cron line."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import jinja2.exceptions
import pytest

from supakong.errors import RenderError
from supakong.render import render_kong_config
from supakong.schedule import (
    Schedule,
    ScheduleError,
    cron_line,
    install_units,
    not_root_owned,
    render_units,
    service_user,
)
from supakong.secrets import load_secrets

REPO = Path(__file__).resolve().parents[2]
ARGV = ("/usr/bin/env", "SUPAKONG_INVENTORY=/srv/hosts.yml", "/opt/supakong/bin/supakong", "redeploy")
ESCAPE = "{{ ''.__class__.__mro__[1].__subclasses__() }}"


def test_as_root_the_unit_runs_as_the_sudo_user_or_is_refused():
    def user(environ, run_as=None, as_root=False):
        return service_user(user_mode=False, euid=0, environ=environ, run_as=run_as, as_root=as_root)

    assert user({"SUDO_USER": "alice"}) == "alice"
    assert user({"SUDO_USER": "alice"}, run_as="deploy") == "deploy"
    assert user({}, as_root=True) is None
    for environ in ({}, {"SUDO_USER": "root"}):
        with pytest.raises(ScheduleError, match="non-root user"):
            user(environ)
    with pytest.raises(ScheduleError, match="not a user name"):
        user({}, run_as="alice\nExecStartPre=/bin/sh")


def test_install_as_root_without_a_user_is_refused_and_writes_nothing(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "SUDO_USER"}
    env["SUPAKONG_INVENTORY"] = str(REPO / "inventory" / "hosts.yml")
    fab = Path(sys.executable).parent / "fab"
    argv = [str(fab), "schedule-redeploy", "--install", "--root", str(tmp_path), "--log", str(tmp_path / "r.log")]
    proc = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    if os.geteuid() != 0:
        pytest.skip("needs root")
    assert proc.returncode == 1 and "non-root user" in proc.stdout + proc.stderr
    assert not (tmp_path / "etc").exists()


def test_as_root_needs_every_path_root_owned_and_not_writable_by_others(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root to chown")
    venv = tmp_path / "venv"
    venv.mkdir()
    script = venv / "supakong"
    script.write_text("#!/bin/sh\n")
    assert not_root_owned([script]) == []
    script.chmod(0o646)
    assert not_root_owned([script]) == [f"{script} is writable by others"]
    script.chmod(0o755)
    shutil.chown(venv, "nobody")
    assert not_root_owned([script]) == [f"{venv} is owned by uid {venv.stat().st_uid}"]


def test_the_service_is_hardened_and_writes_only_its_log_directory(tmp_path):
    argv = (*ARGV, "--log", "/var/lib/alice/.local/state/supakong/redeploy.log")
    service = render_units(Schedule(argv=argv, every=900, user="alice"))["supakong-redeploy.service"].splitlines()
    for line in (
        "User=alice",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "UMask=0077",
        "ReadWritePaths=/var/lib/alice/.local/state/supakong",
    ):
        assert line in service
    if shutil.which("systemd-analyze"):
        paths = install_units(render_units(Schedule(argv=argv, every=900, user="root")), tmp_path)
        proc = subprocess.run(["systemd-analyze", "verify", *map(str, paths)], capture_output=True, text=True)
        assert proc.returncode == 0 and proc.stderr.strip() == "", proc.stderr


def test_unit_templates_are_rendered_in_the_sandbox(tmp_path):
    for name in ("supakong-redeploy.service.j2", "supakong-redeploy.timer.j2"):
        (tmp_path / name).write_text(ESCAPE + "\n")
    with pytest.raises(jinja2.exceptions.SecurityError):
        render_units(Schedule(argv=ARGV, every=900), tmp_path)


def test_the_kong_template_is_rendered_in_the_sandbox(tmp_path):
    from supakong.inventory import load_inventory

    host = load_inventory(REPO / "inventory" / "hosts.yml").host("sandbox")
    template = tmp_path / "kong.yml.j2"
    template.write_text("a: 1\nb: " + ESCAPE + "\n")
    with pytest.raises(RenderError, match=r"kong.yml.j2:2: SecurityError"):
        render_kong_config(host, load_secrets(None, {}, required=()), template)


@pytest.mark.parametrize("field", [{"user": "alice\nExecStartPre=/bin/sh"}, {"description": "x\rExecStartPre=/bin/sh"}])
def test_control_characters_are_refused_in_unit_fields(field):
    with pytest.raises(ScheduleError, match="control character"):
        Schedule(argv=ARGV, every=900, **field)


def test_control_characters_are_refused_in_cron_lines():
    with pytest.raises(ScheduleError, match="control character"):
        cron_line(900, ["/x/supakong", "redeploy", "--log", "/tmp/a\n* * * * * root /bin/sh -c id"], Path("/l"))
