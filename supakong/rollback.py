"""rollback-kong: put a backup of the config back, by hand, with the deploy's guarantees
(host lock, atomic restore, restart, wait, content check, verification, audit line)."""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime

from .audit import append_argv, audit_line
from .container import inspect_container, restart_container, wait_until_running
from .deploy import DeployOptions, _confirm_content, run_verification
from .dokploy.apply import make_writer
from .dokploy.policy import choose_writer
from .errors import DeployError
from .hostlock import LockOwner, acquire, lock_path
from .hostprofile import build_profile
from .inventory import HostConfig
from .plan import HostState
from .remote_file import list_backups, read_remote_text, restore_backup
from .report import HostResult, Output
from .secrets import load_host_secrets
from .transport import HostConnection


def choose_backup(found: list[str], stamp: str | None, host: HostConfig) -> str:
    """The newest backup, or the one with ``stamp``; a missing one is an error naming it."""
    chosen = [p for p in found if stamp is None or p.endswith(f".{stamp}")]
    if not chosen:
        which = f"backup {stamp}" if stamp else "backup"
        raise DeployError(f"{host.name}: no {which} of {host.kong_config_path} ({len(found)} backups)")
    return chosen[0]


def restore_as_owner_wants(conn: HostConnection, host: HostConfig, state: HostState, backup: str, out: Output) -> str:
    """Put ``backup`` back: on a Dokploy file mount through Dokploy's API (refused without
    it, as deploy-kong refuses), else atomically over SSH. Returns the restored sha256."""
    stack = build_profile(state.kong).dokploy
    kind = choose_writer(stack, host, direct=False)
    writer = make_writer(kind, conn, host, stack)
    if writer is None:
        return restore_backup(conn, host.kong_config_path, backup)
    content = read_remote_text(conn, backup)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    out.line(f"  {writer.write(content, state.file.sha256, stamp)}", host.name)
    return hashlib.sha256(content.encode("utf-8")).hexdigest()


def rollback_host(host: HostConfig, stamp: str | None, verify: bool, out: Output) -> HostResult:
    """Restore a backup on one host under the host lock; audit the run."""
    started = time.monotonic()
    result = HostResult(host=host.name, status="changed", plan="restore a backup + restart Kong")
    options = DeployOptions()
    with HostConnection(host) as conn:
        owner = LockOwner.current("rollback-kong")
        locked = False
        try:
            state = acquire(
                conn,
                host.kong_config_path,
                host.kong_container,
                host.realtime_container,
                owner,
                notify=lambda msg: out.line(f"  {msg}", host.name),
            )
            locked = True
            backup = choose_backup(list_backups(conn, host.kong_config_path), stamp, host)
            result.old_sha256, result.backup = state.file.sha256, backup
            api = conn.engine()
            result.new_sha256 = restore_as_owner_wants(conn, host, state, backup, out)
            out.line(f"  restored {backup}", host.name)
            before = inspect_container(api, host.kong_container)
            restart_container(api, host.kong_container)
            after = wait_until_running(
                api,
                host.kong_container,
                since=before.started_at,
                restarts_before=before.restart_count,
                timeout=options.wait_timeout,
            )
            _confirm_content(api, host, result.new_sha256)
            out.line(f"  {host.kong_container} is up: {after.describe()}", host.name)
            if verify:
                report = run_verification(host, load_host_secrets(host), out, after.env)
                result.verify_state = report.state
                if not report.ok:
                    result.status, result.message = "failed", "restored, but the verification fails"
        except DeployError as exc:
            result.status, result.message = "failed", str(exc)
            raise
        finally:
            result.seconds = time.monotonic() - started
            if locked:
                conn.run(
                    append_argv(
                        host.kong_config_path,
                        audit_line("rollback-kong", result),
                        lock_path(host.kong_config_path),
                        owner.token,
                    ),
                    check=False,
                )
    return result
