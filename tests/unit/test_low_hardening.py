"""The low items of the security read (issue #24), each a behaviour: no symlink followed by
render-kong --out, --accept-new making ~/.ssh 0700, control characters in container logs
shown not obeyed, kong_config_mode bounded and a world-readable file with keys warned."""

from __future__ import annotations

import dataclasses
import io
import os

import paramiko
import pytest
from test_inventory import MINIMAL, write_inventory

from supakong.errors import InventoryError, RenderError
from supakong.inventory import file_mode_warning, load_inventory
from supakong.logs import LogLine, format_log_lines
from supakong.render import write_private_file
from supakong.report import Output
from supakong.transport import _AcceptNewPolicy


def test_render_out_never_writes_through_a_symbolic_link(tmp_path):
    target = tmp_path / "elsewhere"
    target.write_text("untouched\n")
    link = tmp_path / "kong.yml"
    link.symlink_to(target)
    with pytest.raises(RenderError, match="is a symbolic link"):
        write_private_file(link, "key: secret\n")
    assert target.read_text() == "untouched\n"
    write_private_file(tmp_path / "real.yml", "key: secret\n")
    assert (tmp_path / "real.yml").stat().st_mode & 0o777 == 0o600


def test_accept_new_creates_the_ssh_directory_0700(tmp_path):
    known = tmp_path / "home" / ".ssh" / "known_hosts"
    (tmp_path / "home").mkdir()
    old = os.umask(0o022)
    try:
        _AcceptNewPolicy(known).missing_host_key(paramiko.SSHClient(), "[h]:22", paramiko.RSAKey.generate(1024))
    finally:
        os.umask(old)
    assert known.parent.stat().st_mode & 0o777 == 0o700 and "[h]:22 ssh-rsa " in known.read_text()


def test_control_characters_in_container_logs_are_shown_not_obeyed():
    stream = io.StringIO()
    line = LogLine(time=0.0, container="kong", text="ok \x1b]0;owned\x07 \x1b[2J\x9b tab\tstays")
    Output(stream=stream).lines(format_log_lines([line]))
    printed = stream.getvalue()
    assert "\x1b" not in printed and "\x07" not in printed and "\x9b" not in printed
    assert "\\x1b]0;owned\\x07" in printed and "tab\tstays" in printed


@pytest.mark.parametrize("mode", ["0666", "0662", "0750", "0700"])
def test_a_config_mode_others_could_write_or_run_is_refused(tmp_path, mode):
    text = MINIMAL.replace("backups_keep: 7", f"backups_keep: 7\n        kong_config_mode: '{mode}'")
    with pytest.raises(InventoryError, match="kong_config_mode"):
        load_inventory(write_inventory(tmp_path, text))


def test_a_world_readable_file_holding_keys_in_clear_is_warned(tmp_path):
    text = MINIMAL.replace("backups_keep: 7", "backups_keep: 7\n        kong_config_mode: '0644'")
    hosts = load_inventory(write_inventory(tmp_path, text)).hosts
    inline = dataclasses.replace(hosts["edge-1"], kong_secrets="inline")
    assert "readable by every user" in file_mode_warning(inline)
    assert file_mode_warning(hosts["edge-1"]) == "", "references hold no key"
