"""Diagnosis tasks: doctor (a read-only checklist of one or more hosts)."""

from __future__ import annotations

from fabric import task
from invoke import Context

from supakong.fleet import Rollout
from supakong.inventory import HostConfig
from supakong.report import HostResult, Output
from supakong.runner import exits_cleanly, run_task, select_hosts


@task(
    help={
        "group": "Diagnose the hosts of this inventory group (instead of -H)",
        "vsn": "Phoenix serializer of the probe: 2.0.0 (default) or 1.0.0",
        "channel": "Channel the probe joins (default: the inventory's verify_channel)",
        "table": "schema.table of the probe's postgres_changes binding and of the table checks ('' for none)",
        "parallel": "Hosts at once (default 10)",
        "report": "Write a JSON report to this file",
    }
)
@exits_cleanly
def doctor(
    c: Context,
    group: str | None = None,
    vsn: str | None = None,
    channel: str | None = None,
    table: str | None = None,
    parallel: int = 10,
    report: str | None = None,
) -> None:
    """Read-only diagnosis of -H HOST: live config, containers, Kong, tenant, keys, the db's table checks, the probe."""
    from supakong.doctor import doctor_host
    from supakong.verify_run import VerifyOptions  # lazy: keeps `fab` start-up fast

    hosts = select_hosts(c, group, require=True)
    options = VerifyOptions(vsn=vsn, channel=channel, table=table)

    def action(host: HostConfig, out: Output) -> HostResult:
        return doctor_host(host, options, out)

    run_task("doctor", hosts, action, rollout=Rollout(parallel), report=report)
