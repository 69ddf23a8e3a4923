"""A sandbox host's ssh config, copied with another known_hosts file (and address)."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from supakong.inventory import HostConfig


def with_known_hosts(
    host: HostConfig, tmp_path: Path, known_hosts: str, *, hostname: str | None = None
) -> tuple[HostConfig, Path]:
    """A copy of ``host`` whose ssh config reads its host keys from a new file holding
    ``known_hosts`` (and, with ``hostname``, dials that address); the host and that file."""
    assert host.ssh_config_file is not None
    known = tmp_path / "known_hosts"
    known.write_text(known_hosts)
    text = re.sub(r"UserKnownHostsFile .*", f"UserKnownHostsFile {known}", host.ssh_config_file.read_text())
    if hostname is not None:
        text = re.sub(r"HostName .*", f"HostName {hostname}", text)
    config = tmp_path / "ssh_config"
    config.write_text(text)
    return dataclasses.replace(host, ssh_config_file=config), known


def dialling_local_port(host: HostConfig, known_hosts_path: Path, tmp_path: Path, port: int) -> HostConfig:
    """A copy of ``host`` that dials 127.0.0.1:``port`` (where bench's delaying proxy listens
    in front of it) and trusts there the host key recorded in ``known_hosts_path``."""
    key = known_hosts_path.read_text().split(None, 1)[1]
    proxied, _ = with_known_hosts(host, tmp_path, f"[127.0.0.1]:{port} {key}", hostname="127.0.0.1")
    return dataclasses.replace(proxied, ssh_port=port)
