"""Day-2 tasks: logs, backups, rollback-kong, hosts."""

from __future__ import annotations

import json as _json
import time

from fabric import task
from invoke import Context

from supakong.audit import audit_path, read_audit
from supakong.fleet import Rollout
from supakong.inventory import HostConfig, load_inventory
from supakong.logs import fetch_interleaved, format_log_lines
from supakong.logs import grep as grep_lines
from supakong.remote_file import list_backups
from supakong.report import HostResult, Output
from supakong.rollback import rollback_host
from supakong.runner import exits_cleanly, fail, inventory_path, run_task, select_hosts
from supakong.transport import ENGINE_CHANNEL, SESSION_CHANNEL, HostConnection

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _seconds(text: str) -> float:
    try:
        return float(text[:-1]) * _UNITS[text[-1]] if text[-1] in _UNITS else float(text)
    except (ValueError, IndexError):
        fail(f"--since: expected a duration like 90s, 10m, 2h; got {text!r}")


@task(
    help={
        "since": "How far back, e.g. 10m (default 10m)",
        "grep": "Only lines matching this regular expression",
        "follow": "Keep printing new lines until Ctrl-C",
        "tail": "At most this many lines per container (default 200)",
    }
)
@exits_cleanly
def logs(c: Context, since: str = "10m", grep: str | None = None, follow: bool = False, tail: int = 200) -> None:
    """Kong and Realtime logs of -H HOST, interleaved by time, secrets masked."""
    [host] = select_hosts(c, require=True)[:1]
    window = _seconds(since)
    with HostConnection(host, early=(ENGINE_CHANNEL,)) as conn:  # no command: only the engine
        api = conn.engine()
        start = time.time() - window
        containers = (host.kong_container, host.realtime_container)
        while True:
            lines = grep_lines(fetch_interleaved(api, containers, since=start, tail=tail), grep)
            for row in format_log_lines(lines):
                Output().line(row)
            if not follow:
                return
            start = (lines[-1].time + 1e-6) if lines else start
            time.sleep(1.0)


@task
@exits_cleanly
def backups(c: Context) -> None:
    """List the backups of kong-simple.yml on -H HOST, newest first."""
    for host in select_hosts(c, require=True):
        with HostConnection(host, early=(SESSION_CHANNEL,)) as conn:  # one command, no engine
            found = list_backups(conn, host.kong_config_path)
        print(f"{host.name}: {len(found)} backups of {host.kong_config_path}")
        for path in found:
            print(f"  {path.rsplit('.', 1)[-1]}  {path}")


@task(help={"to": "The backup stamp to restore (default: the newest)", "verify": "Verify after (default on)"})
@exits_cleanly
def rollback_kong(c: Context, to: str | None = None, verify: bool = True) -> None:
    """Restore a backup of kong-simple.yml on -H HOST, restart Kong and verify."""
    hosts = select_hosts(c, require=True)

    def action(host: HostConfig, out: Output) -> HostResult:
        return rollback_host(host, to, verify, out)

    run_task("rollback-kong", hosts, action, rollout=Rollout(parallel=10))


@task(help={"lines": "How many entries (default 20)", "json": "Print the raw JSON lines"})
@exits_cleanly
def audit(c: Context, lines: int = 20, json: bool = False) -> None:
    """The audit log on -H HOST: one line per deploy (when, who, from where, sha256, result)."""
    for host in select_hosts(c, require=True):
        with HostConnection(host, early=(SESSION_CHANNEL,)) as conn:  # one command, no engine
            entries = read_audit(conn, host.kong_config_path, lines)
        print(f"{host.name}: last {len(entries)} runs ({audit_path(host.kong_config_path)})")
        for e in entries:
            if json or "raw" in e:
                Output().line(_json.dumps(e, sort_keys=True))
                continue
            sha = f"{(e.get('old_sha256') or '')[:8]}→{(e.get('new_sha256') or '')[:8]}"
            Output().line(
                f"  {e.get('when')} {e.get('who')}@{e.get('from')} {e.get('task')} {e.get('result'):<11}"
                f" {sha} {e.get('seconds')}s {e.get('message') or e.get('plan')}"
            )


@task
@exits_cleanly
def hosts(c: Context) -> None:
    """List the inventory's hosts and groups (reads nothing remote)."""
    inventory = load_inventory(inventory_path())
    for name, host in inventory.hosts.items():
        groups = ",".join(g for g in host.groups if g != "all")
        print(f"{name:<24} {host.public_url:<32} groups={groups}")
