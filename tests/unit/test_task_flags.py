"""The tasks' command lines: flags a user types from muscle memory keep their meaning."""

from __future__ import annotations

import pytest

from supakong.errors import VerifyError
from supakong.inventory import load_inventory
from supakong.sandbox.inventory import spec_for, write_sandbox_inventory
from supakong.verify_run import VerifyOptions
from tasks import ns


def every_task_argument():
    for name in ns.task_names:
        for argument in ns[name].get_arguments():
            yield name, argument


def test_no_task_flag_takes_dash_h_or_a_bare_dash():
    """``fab TASK -h`` is the task's help; Invoke would give ``-h`` to the first flag whose
    first letter is taken (``--channel`` after ``--check``) and ``-`` to a dashed name."""
    stolen = [(task, sorted(arg.names)) for task, arg in every_task_argument() if {"h", "-"} & set(arg.names)]
    assert stolen == []


def test_deploy_kong_takes_verify_realtimes_overrides_and_keeps_its_short_flags():
    names = {arg.name: set(arg.names) for _, arg in every_task_argument() if _ == "deploy-kong"}
    assert names["channel"] == {"channel"}  # long only: its letters c and h are taken / reserved
    assert names["table"] == {"table", "t"} and names["vsn"] == {"vsn", "n"}
    assert names["check"] == {"check", "c"} and names["parallel"] == {"parallel", "p"}


@pytest.fixture
def host(tmp_path):
    path = write_sandbox_inventory(tmp_path / "hosts.yml", [spec_for("sandbox-t1", 240)])
    return load_inventory(path).host("sandbox-t1")


def test_verify_overrides_become_the_hosts_verify_settings(host):
    changed = VerifyOptions(vsn="1.0.0", channel="deploy-probe", table="messages").applied_to(host)
    assert (changed.verify_vsn, changed.verify_channel, changed.verify_table) == (
        "1.0.0",
        "deploy-probe",
        "public.messages",  # a bare table is in schema public, as verify-realtime reads it
    )
    assert VerifyOptions(table="").applied_to(host).verify_table == ""  # no postgres_changes
    assert VerifyOptions().applied_to(host) == host


@pytest.mark.parametrize("kwargs, flag", [({"vsn": "3.0.0"}, "--vsn"), ({"channel": "a b"}, "--channel")])
def test_a_bad_override_is_one_line_naming_the_flag(kwargs, flag):
    with pytest.raises(VerifyError, match=f"^{flag}: expected"):
        VerifyOptions(**kwargs)
