"""Each host's Fabric connection is built from the one shared, read-only Fabric config
(supakong.transport): it resolves the host through the ssh config as Fabric does, and
building it never writes that config, which every host's thread reads."""

from __future__ import annotations

import threading
from pathlib import Path

import fabric
import pytest

from supakong.inventory import load_inventory
from supakong.transport import HostConnection, _fabric_config

SSH_CONFIG = """\
Host gw-*
  User deploy
  Port 2222
  IdentityFile ~/.ssh/gateway_ed25519
  ConnectTimeout 7
Host gw-1
  HostName 10.20.0.1
Host gw-2
  HostName 10.20.0.2
  ForwardAgent yes
"""


@pytest.fixture
def hosts(tmp_path: Path):
    ssh_config = tmp_path / "ssh_config"
    ssh_config.write_text(SSH_CONFIG)
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(
        "all:\n  vars:\n    ssh_config_file: " + str(ssh_config) + "\n  hosts:\n"
        + "".join(
            f"    {name}:\n      public_url: http://{name}:8000\n      kong_container: kong\n"
            f"      realtime_container: realtime\n      kong_config_path: /srv/kong.yml\n"
            for name in ("gw-1", "gw-2")
        )
    )  # fmt: skip
    return load_inventory(inventory).hosts


ATTRIBUTES = ("host", "original_host", "user", "port", "connect_timeout", "forward_agent", "gateway", "inline_ssh_env")


def test_the_connection_resolves_the_host_as_fabric_does(hosts) -> None:
    for host in hosts.values():
        ours = HostConnection(host, connect_timeout=5)._fabric
        config = _fabric_config(str(host.ssh_config_file))
        theirs = fabric.Connection(host.ssh_host, config=config, connect_timeout=5, connect_kwargs={})
        assert {a: getattr(ours, a) for a in ATTRIBUTES} == {a: getattr(theirs, a) for a in ATTRIBUTES}
        assert ours.ssh_config == theirs.ssh_config
    gw2 = HostConnection(hosts["gw-2"])._fabric
    assert (gw2.host, gw2.user, gw2.port, gw2.forward_agent) == ("10.20.0.2", "deploy", 2222, True)
    assert gw2.connect_kwargs["key_filename"][-1].endswith("/.ssh/gateway_ed25519")


def test_building_connections_never_writes_the_shared_config(hosts, monkeypatch) -> None:
    config = _fabric_config(str(hosts["gw-1"].ssh_config_file))
    before = dict(config)
    writes: list[str] = []
    original = fabric.Config.__setitem__

    def recording(self, key, value):  # noqa: ANN001 - Invoke's own signature
        writes.append(key)
        original(self, key, value)

    monkeypatch.setattr(fabric.Config, "__setitem__", recording)
    threads = [threading.Thread(target=HostConnection, args=(hosts[name],)) for name in ("gw-1", "gw-2") * 10]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert writes == []
    assert dict(config) == before
