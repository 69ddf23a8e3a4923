"""supakong's Fabric tasks. Thin adapters: parse flags, call the library, print.

Run them with ``fab TASK`` in the checkout (the root fabfile.py re-exports ``ns``) or with
the ``supakong`` console script anywhere. ``-H a,b`` names inventory hosts.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from fabric import task
from invoke import Collection, Context

from supakong.deploy import DeployOptions, deploy_host
from supakong.fleet import Rollout
from supakong.report import HostResult, Output
from supakong.runner import Task, cli_hosts, exits_cleanly, fail, run_task, select_hosts

from . import adopt_tasks, doctor_tasks, fleet_tasks, kong_tasks, ops_tasks, sandbox_tasks


@task(
    help={
        "group": "Run on the hosts of this inventory group (instead of -H)",
        "check": "Show the plan and a masked diff; change nothing (exit 2 if changes are pending)",
        "diff": "Show a masked unified diff of the file on a real run",
        "file": "Deploy this hand-edited file instead of rendering the template",
        "skip-validate": "Experts only: do not validate the file against Kong's schema",
        "skip-preflight": "Deploy without the running Kong's own check (kong config parse), e.g. when it cannot run",
        "verify": "Verify Realtime through Kong after the change (default: on)",
        "rollback": "Restore the previous file if Kong or the verification fails (default: on)",
        "restart": "Restart Kong even where its Admin API can load the new config without a restart",
        "accept-new": "Trust an unknown SSH host key on first use (OpenSSH accept-new)",
        "parallel": "Hosts at once (default 10)",
        "serial": "Rolling deploy: hosts per batch",
        "max-fail": "Stop the rollout after this many (or this percentage of) failed hosts",
        "report": "Write a JSON report of the run to this file",
        "lock-wait": "Wait up to this many seconds for another deploy's host lock (default: fail at once)",
        "vsn": "Phoenix serializer of the verification: 2.0.0 or 1.0.0 (default: the inventory's verify_vsn)",
        "channel": "Channel the verification joins (default: the inventory's verify_channel)",
        "table": "postgres_changes schema.table of the verification ('' for none; default: verify_table)",
        "direct": "A Dokploy file mount without API access: write it in place over SSH anyway (its copy goes stale)",
    },
    klass=Task,
)
@exits_cleanly
def deploy_kong(
    c: Context,
    group: str | None = None,
    check: bool = False,
    diff: bool = False,
    file: str | None = None,
    skip_validate: bool = False,
    skip_preflight: bool = False,
    verify: bool = True,
    rollback: bool = True,
    restart: bool = False,
    accept_new: bool = False,
    parallel: int = 10,
    serial: int | None = None,
    max_fail: str | None = None,
    report: str | None = None,
    lock_wait: float = 0.0,
    vsn: str | None = None,
    channel: str | None = None,
    table: str | None = None,
    direct: bool = False,
) -> None:
    """Render, validate, diff, replace, reload (or restart), verify Kong's config (rolls back on failure)."""
    hosts = select_hosts(c, group, require=True)
    if (vsn, channel, table) != (None, None, None):
        # verify-realtime's overrides, for this run's verification (and its re-verification
        # after a rollback); doctor's module is loaded only then
        from supakong.verify_run import VerifyOptions

        overrides = VerifyOptions(vsn=vsn, channel=channel, table=table)
        hosts = [overrides.applied_to(host) for host in hosts]
    options = DeployOptions(
        check=check,
        diff=diff,
        verify=verify,
        rollback=rollback,
        skip_validate=skip_validate,
        skip_preflight=skip_preflight,
        file=Path(file) if file else None,
        accept_new=accept_new,
        lock_wait=float(lock_wait),
        restart=restart,
        direct=direct,
    )

    def action(host, out: Output) -> HostResult:  # type: ignore[no-untyped-def]
        out.line(f"deploy-kong {host.name}", host.name)
        return deploy_host(host, options, out)

    run_task("deploy-kong", hosts, action, rollout=Rollout(parallel, serial, max_fail), report=report)


@task(
    help={
        "group": "Verify the hosts of this inventory group",
        "url": "Check this Supabase URL (http(s)://host:port) instead of inventory hosts",
        "apikey-env": "With --url: the environment variable holding the anon key (default SUPABASE_ANON_KEY)",
        "json": "Print a JSON document (per host: state, stages with timings, diagnosis, logs) on stdout",
        "vsn": "Phoenix serializer: 2.0.0 (default, as supabase-js) or 1.0.0",
        "channel": "Channel to join (default: the inventory's verify_channel)",
        "table": "postgres_changes table schema.table ('' for none; default: the inventory's verify_table)",
        "event": "Also write a row to supakong.probe (made on first use, SQL shown) and wait for its INSERT event",
        "parallel": "Hosts at once (default 10)",
        "report": "Write a JSON report to this file",
    }
)
@exits_cleanly
def verify_realtime(
    c: Context,
    group: str | None = None,
    url: str | None = None,
    apikey_env: str = "SUPABASE_ANON_KEY",
    json: bool = False,
    vsn: str | None = None,
    channel: str | None = None,
    table: str | None = None,
    event: bool = False,
    parallel: int = 10,
    report: str | None = None,
) -> None:
    """Verify the Realtime WebSocket path as supabase-js walks it (no -H: all hosts; --url: any URL)."""
    # lazy: websockets and jwt only when verifying (keeps `fab` start-up fast)
    from supakong.verify_run import VerifyOptions, not_run_entries, run_url_check, verify_action, verify_document

    options = VerifyOptions(vsn=vsn, channel=channel, table=table, event=event)
    if url:
        if cli_hosts(c) or group:
            fail("--url checks one URL without the inventory: drop -H/--group")
        if event:
            fail("--event writes through the host's db container: use -H HOST, not --url")
        run_url_check(url, apikey_env, options, as_json=json, hosts=lambda: select_hosts(c))
        return
    hosts = select_hosts(c, group)
    collected: dict[str, dict[str, Any]] = {}
    try:
        run_task(
            "verify-realtime",
            hosts,
            verify_action(options, collected),
            rollout=Rollout(parallel),
            report=report,
            out=Output(sys.stderr, prefix_hosts=len(hosts) > 1) if json else None,
        )
    finally:
        if json:
            Output().line(verify_document(not_run_entries(hosts, collected)))


ns = Collection(
    adopt_tasks.init,
    deploy_kong,
    verify_realtime,
    doctor_tasks.doctor,
    kong_tasks.check_kong,
    kong_tasks.render_kong,
    ops_tasks.logs,
    ops_tasks.backups,
    ops_tasks.rollback_kong,
    ops_tasks.hosts,
    ops_tasks.audit,
    fleet_tasks.redeploy,
    fleet_tasks.schedule_redeploy,
    sandbox_tasks.sandbox_up,
    sandbox_tasks.sandbox_down,
    sandbox_tasks.sandbox_reset,
)
