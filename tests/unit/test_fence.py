"""The host allowlist (supakong.fence) is checked where every socket is dialled: by inventory
name and by the address actually dialled (after the ssh config's HostName and ProxyJump),
for every task, not only those that go through the fleet runner. An empty value is an error.

Nothing here reaches a server: the fence refuses before a socket exists, and the suite's
socket guard (tests/guard) would refuse anything that got past it; the `fab` runs below may
open no connection at all (SUPAKONG_TEST_NO_NETWORK)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from supakong import fence
from supakong.errors import FenceError, InventoryError
from supakong.inventory import HostConfig, load_inventory
from supakong.sandbox.inventory import spec_for
from supakong.transport import HostConnection
from supakong.verify import verify_realtime
from supakong.verify_model import ChannelSpec, ProbeOptions
from supakong.verify_transport import open_websocket, parse_target

REPO = Path(__file__).resolve().parents[2]
FAB = str(Path(sys.executable).parent / "fab")
PRODUCTION = "91.99.166.223"  # mudrock-enterprise in inventory/hosts.yml
REFUSED_PRODUCTION = (
    "host 'mudrock-enterprise' is not allowed by SUPAKONG_HOST_ALLOWLIST='sandbox*'; refusing to connect"
)


# =========================================================================== the list itself


def test_entries_are_name_globs_or_addresses_and_networks():
    allow = fence.parse_allowlist(" sandbox*, edge-?,203.0.113.7 , 10.1.0.0/16,::1 ")
    assert allow.names == ("sandbox*", "edge-?")
    assert [str(n) for n in allow.networks] == ["203.0.113.7/32", "10.1.0.0/16", "::1/128"]
    assert allow.allows_name("sandbox-a") and allow.allows_name("edge-1") and not allow.allows_name("edge-10")
    assert allow.allows_address("10.1.200.3") and allow.allows_address("203.0.113.7")
    assert not allow.allows_address("127.0.0.1"), "listed addresses replace the local default"


def test_a_list_of_names_only_allows_this_machine_and_the_sandbox_network():
    allow = fence.parse_allowlist("sandbox*")
    for address in ("127.0.0.1", "127.9.9.9", "::1", "10.203.110.2", spec_for("sandbox-x", 254).vps_addr):
        assert allow.allows_address(address), address
    for address in (PRODUCTION, "10.204.0.1", "192.168.1.1", f"::ffff:{PRODUCTION}", "not-an-ip"):
        assert not allow.allows_address(address), address


def test_a_list_of_addresses_only_leaves_names_unfenced():
    allow = fence.parse_allowlist("10.9.0.0/24")
    assert allow.allows_name("anything") and allow.allows_address("10.9.0.200")


@pytest.mark.parametrize("value", ["", "  ", ",", " , ,"])
def test_an_empty_allowlist_is_an_error_not_everything(value):
    with pytest.raises(FenceError, match="SUPAKONG_HOST_ALLOWLIST is set but empty") as err:
        fence.check_host("mudrock-enterprise", {"SUPAKONG_HOST_ALLOWLIST": value})
    assert "unset it" in str(err.value) and "\n" not in str(err.value)


def test_unset_means_no_fence():
    fence.check_host("mudrock-enterprise", {})
    fence.check_address("host 'mudrock-enterprise'", PRODUCTION, 22, {})
    fence.check_url("http://anything:1", [], {})


def test_the_refusal_names_host_address_and_variable():
    with pytest.raises(FenceError) as err:
        fence.check_address("host 'sandbox-evil'", PRODUCTION, 22, {"SUPAKONG_HOST_ALLOWLIST": "sandbox*"})
    assert str(err.value) == (
        f"host 'sandbox-evil' ({PRODUCTION}:22) is not allowed by SUPAKONG_HOST_ALLOWLIST='sandbox*';"
        " refusing to connect"
    )
    assert isinstance(err.value, InventoryError)


# =========================================================================== where it is dialled


def inventory(tmp_path: Path, ssh_config: str = "", **hosts: dict[str, str]) -> dict[str, HostConfig]:
    """An inventory of ``hosts`` (their vars), with ``ssh_config`` as their ssh config."""
    config = tmp_path / "ssh_config"
    config.write_text(ssh_config)
    lines = ["all:", "  vars:", f"    ssh_config_file: {config}", "  hosts:"]
    for name, values in hosts.items():
        base = {"public_url": "http://127.0.0.1:8000", "kong_container": "k", "realtime_container": "r"}
        lines += [f"    {name}:"] + [f"      {k}: {v}" for k, v in {**base, **values}.items()]
        lines.append("      kong_config_path: /srv/kong.yml")
    path = tmp_path / "hosts.yml"
    path.write_text("\n".join(lines) + "\n")
    return dict(load_inventory(path).hosts)


def test_a_sandbox_named_host_pointed_at_production_is_refused_by_its_address(tmp_path):
    hosts = inventory(tmp_path, **{"sandbox-evil": {"ansible_host": PRODUCTION}})
    with pytest.raises(FenceError, match=rf"host 'sandbox-evil' \({PRODUCTION}:22\) is not allowed"):
        HostConnection(hosts["sandbox-evil"]).open()


def test_the_address_is_the_one_the_ssh_config_resolves(tmp_path):
    ssh_config = f"Host supakong-sandbox-evil\n  HostName {PRODUCTION}\n  Port 2222\n"
    hosts = inventory(tmp_path, ssh_config, **{"sandbox-evil": {"ansible_host": "supakong-sandbox-evil"}})
    with pytest.raises(FenceError, match=rf"host 'sandbox-evil' \({PRODUCTION}:2222\) is not allowed"):
        HostConnection(hosts["sandbox-evil"]).open()


def test_a_jump_host_outside_the_fence_is_refused(tmp_path):
    ssh_config = f"Host target\n  HostName 10.203.250.2\n  ProxyJump jump\nHost jump\n  HostName {PRODUCTION}\n"
    hosts = inventory(tmp_path, ssh_config, **{"sandbox-jumped": {"ansible_host": "target"}})
    with pytest.raises(FenceError, match=rf"host 'sandbox-jumped' \({PRODUCTION}:22\) is not allowed"):
        HostConnection(hosts["sandbox-jumped"]).open()


def test_a_host_reached_through_an_allowed_jump_host_is_checked_too(tmp_path):
    ssh_config = f"Host target\n  HostName {PRODUCTION}\n  ProxyJump jump\nHost jump\n  HostName 10.203.250.2\n"
    hosts = inventory(tmp_path, ssh_config, **{"sandbox-jumped": {"ansible_host": "target"}})
    with pytest.raises(FenceError, match=rf"through the jump host 10.203.250.2\) \({PRODUCTION}:22\) is not allowed"):
        HostConnection(hosts["sandbox-jumped"]).open()


def test_a_proxy_command_cannot_be_checked_so_it_is_refused(tmp_path):
    ssh_config = "Host target\n  HostName 10.203.250.2\n  ProxyCommand nc %h %p\n"
    hosts = inventory(tmp_path, ssh_config, **{"sandbox-proxied": {"ansible_host": "target"}})
    with pytest.raises(FenceError, match="through ProxyCommand 'nc 10.203.250.2 22', which cannot be checked"):
        HostConnection(hosts["sandbox-proxied"]).open()


def test_a_host_outside_the_names_is_refused_before_its_address_is_even_resolved(tmp_path, monkeypatch):
    hosts = inventory(tmp_path, **{"mudrock-enterprise": {"ansible_host": "never-resolved.invalid"}})
    monkeypatch.setattr("socket.getaddrinfo", lambda *a, **k: pytest.fail("resolved a refused host"))
    with pytest.raises(FenceError, match="host 'mudrock-enterprise' is not allowed"):
        HostConnection(hosts["mudrock-enterprise"]).open()


def test_the_realtime_probe_dials_through_the_fence(refused_connections):
    with pytest.raises(FenceError, match=r"the Realtime URL's host '192.0.2.1' \(192.0.2.1:8000\) is not allowed"):
        verify_realtime("http://192.0.2.1:8000", "key", timeout=1.0)
    assert refused_connections() == []


def test_the_websocket_dial_itself_is_fenced_not_only_the_tcp_stage():
    async def open_only() -> None:
        target = parse_target("ws://192.0.2.1:8000/realtime/v1/websocket")
        await open_websocket(target.url, target, ProbeOptions(ChannelSpec(), "2.0.0", 1.0, False, None))

    with pytest.raises(FenceError, match=r"\(192.0.2.1:8000\) is not allowed"):
        asyncio.run(open_only())


def test_a_public_url_outside_the_fence_is_refused_before_the_run(tmp_path):
    hosts = inventory(tmp_path, **{"sandbox-a": {"public_url": f"http://{PRODUCTION}:8000"}})
    with pytest.raises(FenceError, match=rf"host 'sandbox-a' \(its public_url http://{PRODUCTION}:8000\)"):
        fence.check_public_url("sandbox-a", hosts["sandbox-a"].public_url)


# =========================================================================== every task, as a user runs it


def fab(*args: str, allowlist: str = "sandbox*", inventory: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "SUPAKONG_HOST_ALLOWLIST": allowlist,
        "SUPAKONG_TEST_NO_NETWORK": "1",  # the process may open no connection at all
        "SUPABASE_ANON_KEY": "anon-key-0123456789abcdef",
        "SUPABASE_SERVICE_KEY": "svc-key-0123456789abcdef",
    }
    if inventory is not None:
        env["SUPAKONG_INVENTORY"] = str(inventory)
    return subprocess.run([FAB, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    "task",
    [["check-kong"], ["logs"], ["backups"], ["audit"], ["deploy-kong"], ["doctor"], ["verify-realtime"]],
    ids=lambda t: t[0],
)
def test_every_task_refuses_the_production_host_before_opening_a_socket(task, refused_connections):
    proc = fab(*task, "-H", "mudrock-enterprise")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert REFUSED_PRODUCTION in proc.stdout + proc.stderr
    assert refused_connections() == [], "a socket was opened"


@pytest.mark.parametrize("task", ["logs", "check-kong", "deploy-kong"])
def test_an_empty_allowlist_refuses_every_host(task, refused_connections):
    proc = fab(task, "-H", "mudrock-enterprise", allowlist="")
    assert proc.returncode == 1
    assert "SUPAKONG_HOST_ALLOWLIST is set but empty" in proc.stdout + proc.stderr
    assert refused_connections() == []


def test_logs_of_a_sandbox_named_host_at_the_production_address_is_refused(tmp_path, refused_connections):
    inventory(tmp_path, **{"sandbox-evil": {"ansible_host": PRODUCTION}})
    proc = fab("logs", "-H", "sandbox-evil", inventory=tmp_path / "hosts.yml")
    assert proc.returncode == 1
    assert f"host 'sandbox-evil' ({PRODUCTION}:22) is not allowed by SUPAKONG_HOST_ALLOWLIST='sandbox*'" in proc.stderr
    assert refused_connections() == []
