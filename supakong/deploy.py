"""deploy-kong for one host: render → validate → look → plan → diff → replace → restart →
wait → logs → verify → roll back on failure.

Nothing on the host changes before the config is rendered and validated; the file on the
host is only ever the old one or the new one; a failed start or verification restores the
backup, restarts and re-verifies, then raises.
"""

from __future__ import annotations

import posixpath
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from .apply import APPLIED, FALLBACK, REFUSED, RELOADED, RESTARTED, ApplyChoice, choose_apply, reload_config
from .audit import append_argv, audit_line, audit_path
from .become import not_writable_hint
from .container import (
    ContainerState,
    exec_in_container,
    inspect_container,
    restart_container,
    same_incarnation,
    wait_until_healthy,
    wait_until_running,
)
from .dokploy.apply import FileWriter, make_writer, stored_copy_drift
from .dokploy.policy import PLAIN, choose_writer, writer_intent
from .envoy import SWITCH_TO_KONG, envoy_detail, find_envoy
from .envrefs import check_references, register_file_credentials
from .eras import refuse_era_mismatch
from .errors import DeployError, InventoryError, RestartError, TransportError, ValidationError, VerifyError
from .faults import checkpoint
from .hostlock import LockOwner, acquire, break_if_stale, lock_path, state_dir
from .hostprofile import KONG, HostProfile, build_profile, kong_target
from .inventory import HostConfig, file_mode_warning
from .listen_probe import ListenGate
from .logs import LogLine, fetch_interleaved, format_log_lines
from .look import look, look_held
from .plan import HostState, Plan, loaded_marker, plan_deploy, unified_diff
from .preflight import PreflightResult, judge, preflight_parse
from .remote_file import STAMP_FORMAT, read_remote_file, read_remote_text, replace_file_atomically, restore_backup
from .render import render_kong_config, sha256_text
from .report import HostResult, Output
from .secrets import KONG_CREDENTIAL_NAMES, Secrets, load_host_secrets, register_env_secrets
from .transport import HeldCommand, HostConnection

if TYPE_CHECKING:
    from .kong.findings import Finding
    from .kong.target import KongTarget
    from .verify import VerifyReport


@dataclass(frozen=True)
class DeployOptions:
    """How deploy-kong behaves (the task's flags)."""

    check: bool = False
    diff: bool = False
    verify: bool = True
    rollback: bool = True
    skip_validate: bool = False
    skip_preflight: bool = False
    file: Path | None = None
    accept_new: bool = False
    wait_timeout: float = 60.0
    lock_wait: float = 0.0
    settle: float = 2.0
    log_lines: int = 20
    #: restart Kong even where its Admin API could take the new config (``--restart``)
    restart: bool = False
    #: A Dokploy file mount without API access: write it in place anyway (supakong.dokploy).
    direct: bool = False


class RolledBackError(DeployError):
    """The new config failed and the previous one was put back."""


#: The work a change starts before the step that needs it (see :class:`_Ahead`), for every
#: host of the run (threads start on demand, then are reused).
_AHEAD = ThreadPoolExecutor(max_workers=128, thread_name_prefix="supakong-ahead")


class _Ahead:
    """A change's read-only steps, started as soon as the look has planned the change and
    the file is valid, so that they run while the lock is taken instead of after it (each is
    several round trips): ``kong config parse`` on the new file in the running Kong, and the
    probe of Kong's port that the wait after the restart relies on. Their results count only
    for the container seen under the lock when it is the same incarnation they ran against;
    otherwise they run again there, as they would have without this."""

    def __init__(self, conn: HostConnection, kong: ContainerState, content: bytes | None) -> None:
        self.kong = kong
        self.gate = ListenGate(lambda: conn.transport)
        self._gate_checked: Future[None] = _AHEAD.submit(self.gate.check_before_restart, kong)
        self._preflight: Future[PreflightResult] | None = None
        if content is not None:
            expansion = build_profile(kong).expansion
            self._preflight = _AHEAD.submit(preflight_parse, conn.engine(), kong, content, expansion)

    def preflight_for(self, kong: ContainerState) -> PreflightResult | None:
        """The preflight's verdict if it ran against ``kong`` (raises :class:`ValidationError`
        as :func:`preflight_parse` does), else None: the caller runs it."""
        if self._preflight is None or not same_incarnation(self.kong, kong):
            return None
        return self._preflight.result()

    def gate_for(self, kong: ContainerState) -> ListenGate | None:
        """The listen gate if it was checked against ``kong``, else None: the caller checks one."""
        wait_for([self._gate_checked])
        if self._gate_checked.exception() is None and same_incarnation(self.kong, kong):
            return self.gate
        return None

    def settle(self) -> None:
        """Wait for the steps still running (their channels belong to this connection)."""
        wait_for([self._gate_checked])
        if self._preflight is not None:
            wait_for([self._preflight])


def desired_config(host: HostConfig, secrets: Secrets, options: DeployOptions, profile: HostProfile) -> str:
    """The file content we want on the host: rendered for its Kong container's credentials
    (see :func:`~supakong.render.template_secrets`), or a hand-edited ``--file``."""
    if options.file is None:
        return render_kong_config(
            host,
            secrets,
            held=profile.env_names if profile.gateway == KONG else None,
            expansion=profile.expansion,
            router_flavor=profile.router_flavor,
        )
    try:
        return options.file.read_text(encoding="utf-8")
    except OSError as exc:
        raise InventoryError(f"{options.file}: cannot read ({exc.strerror})") from None


def refuse_shell_before_connecting(host: HostConfig, file: Path) -> None:
    """A ``--file`` that the eval entrypoint of the inventory's ``kong_version`` (2.x) would
    run as shell is refused before any connection (without a version, the validator refuses
    it after the look, before the on-host preflight runs the same eval)."""
    from .kong.expansion import findings_for_text
    from .kong.target import KongTarget
    from .kong.yaml_source import parse_source

    if not host.kong_version:
        return
    target = KongTarget(host.kong_version)
    if target.expansion != "eval":
        return
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise InventoryError(f"{file}: cannot read ({exc.strerror})") from None
    spans = parse_source(text).spans
    errors = [f for f in findings_for_text(text, spans, str(file), target) if f.severity == "error"]
    if errors:
        raise ValidationError(
            f"{file}: {errors[0].path}: {errors[0].message} (kong_version {host.kong_version} of host {host.name});"
            f" nothing was changed on {host.name}"
        )


def refuse_envoy(conn: HostConnection, host: HostConfig) -> None:
    """Raise :class:`InventoryError` when the host's gateway is Envoy: a kong.yml is not
    used there (see :mod:`supakong.envoy`); nothing is deployed."""
    envoy = find_envoy(conn.engine())
    if envoy is not None:
        raise InventoryError(
            f"{host.name}: {host.kong_container} does not exist and {envoy_detail(envoy)}; {SWITCH_TO_KONG}"
        )


def look_at_host(conn: HostConnection, host: HostConfig) -> HostState:
    """The file's hash/stat and both containers, in one command."""
    return look(conn, host.kong_config_path, host.kong_container, host.realtime_container)[0]


def validate_or_raise(text: str, target: KongTarget, source: str, out: Output, host: str) -> list[Finding]:
    """Validate; print every finding; raise :class:`ValidationError` on any error."""
    from .kong.findings import has_errors
    from .kong.validate import validate_kong_config

    findings = validate_kong_config(text, target, source=source)
    out.lines([f"  {f.as_line()}" for f in findings], host)
    if has_errors(findings):
        errors = [f for f in findings if f.severity == "error"]
        first = errors[0]
        raise ValidationError(
            f"{source}: {len(errors)} error(s) for Kong {target.version} {target.edition}, first:"
            f" {first.path}: {first.message}; nothing was changed on {host}"
        )
    return findings


def check_mount(host: HostConfig, kong: ContainerState, realpath: str = "") -> None:
    """Refuse to write a file the Kong container does not read (symlinks resolved)."""
    if not kong.exists:
        return
    source = kong.mount_source(host.kong_config_mount)
    if source is None:
        raise InventoryError(
            f"hosts/{host.name}/kong_config_mount: {host.kong_container} has no mount at"
            f" {host.kong_config_mount} (its mounts: {', '.join(d for _, d in kong.mounts) or 'none'})"
        )
    if source not in (host.kong_config_path, realpath):
        raise InventoryError(
            f"hosts/{host.name}/kong_config_path: is {host.kong_config_path} but {host.kong_container}"
            f" mounts {source} at {host.kong_config_mount}; fix the inventory"
        )


def deploy_host(host: HostConfig, options: DeployOptions, out: Output, task: str = "deploy-kong") -> HostResult:
    """Run deploy-kong on one host; raise :class:`DeployError` on failure (after rollback).

    Look without the lock; only when something is to change, take the host lock (which
    re-reads the state under it) and plan again. Every run but ``--check`` appends an audit
    line on the host, in the same command that releases the lock.
    """
    started = time.monotonic()
    result = HostResult(host=host.name)
    secrets = load_host_secrets(host)
    source = str(options.file or host.template)
    if options.file is None:
        # Template errors are refused before any connection: rendered once here as if Kong held
        # every credential (the file is rendered for the credentials it holds after the look).
        render_kong_config(host, secrets, held=KONG_CREDENTIAL_NAMES)
    elif not options.skip_validate:
        refuse_shell_before_connecting(host, options.file)
    if warning := file_mode_warning(host):
        out.line(f"  ! {warning}", host.name)
    with HostConnection(host, accept_new=options.accept_new) as conn:
        owner: LockOwner | None = None
        held: HeldCommand | None = None
        ahead: _Ahead | None = None
        try:
            # The look's command stays open for the audit line: a no-op is one SSH session.
            state, lock_status, held = look_held(
                conn,
                host.kong_config_path,
                host.kong_container,
                lock=lock_path(host.kong_config_path),
                audit_log="" if options.check else audit_path(host.kong_config_path),
            )
            result.timings["look"] = time.monotonic() - started
            register_env_secrets(state.kong.env)
            if not state.kong.exists:
                refuse_envoy(conn, host)
            # Rendered once Kong is known: the file references the credentials it holds.
            profile = build_profile(state.kong)
            text = desired_config(host, secrets, options, profile)
            if options.file is None:
                refuse_era_mismatch(host.name, host.template, text, profile)
            desired_sha = sha256_text(text)
            result.old_sha256, result.new_sha256 = state.file.sha256, desired_sha
            checkpoint("looked")
            check_mount(host, state.kong, state.realpath)
            plan = _plan(desired_sha, state, result, out, host)
            writer_kind = choose_writer(profile.dokploy, host, direct=options.direct) if plan.replace else PLAIN
            if writer_kind != PLAIN:
                out.line(f"  {writer_intent(profile.dokploy, host, writer_kind)}", host.name)
            if plan.replace or options.check:
                # Like Ansible's validate=: only a file that is going to be written is checked
                # (a no-op keeps what is already deployed; `fab check-kong` checks on demand).
                with result.timed("validate"):
                    _validate(conn, host, state, text, source, options, out)
                    check_references(text, profile, source=source, host=host.name)
            if plan.replace and (options.check or options.diff):
                _print_diff(conn, host, state, text, out)
            if options.check:
                if plan.changes and state.kong.exists:
                    choice = choose_apply(state.kong, profile, replace=plan.replace, force_restart=options.restart)
                    out.line(f"  would {choice.describe()}", host.name)
                result.status = "pending" if plan.changes else "ok"
                return _finish(result, started)
            if plan.changes:
                if held is not None:  # a change is audited with the lock's release instead
                    held.release()
                    held = None
                if state.kong.exists:
                    # A reload needs no parse ahead: Kong's POST /config is that check itself.
                    reloads = choose_apply(state.kong, profile, replace=plan.replace, force_restart=options.restart)
                    checked = plan.replace and not (options.skip_validate or options.skip_preflight or reloads.reload)
                    ahead = _Ahead(conn, state.kong, text.encode("utf-8") if checked else None)
                owner = LockOwner.current(task)
                with result.timed("lock"):
                    state = acquire(
                        conn,
                        host.kong_config_path,
                        host.kong_container,
                        host.realtime_container,
                        owner,
                        wait=options.lock_wait,
                        notify=lambda msg: out.line(f"  {msg}", host.name),
                    )
                checkpoint("locked")
                plan = _plan(desired_sha, state, result, out, host, again=True)
                if plan.replace:
                    conn.reserve_session()  # the replace's, opening while the preflight ends
            if not plan.changes:
                result.message = "no change"
                drift = stored_copy_drift(host, profile.dokploy, state.file.sha256) if not options.check else None
                if drift:
                    out.line(f"  ! {drift}", host.name)
                    result.message = f"no change; {drift}"
                if state.kong.health == "starting" and not options.check:
                    # Someone (or a killed run) just restarted Kong: "no change" must also
                    # mean "serving", so wait for its healthcheck instead of reporting early.
                    out.line(f"  {host.kong_container} is starting: waiting for its healthcheck", host.name)
                    wait_until_healthy(conn.engine(), host.kong_container, timeout=options.wait_timeout)
                if owner is None:
                    if lock_status.status == "held" and held is not None:
                        held.release()  # its session may be the only one the server allows
                        held = None
                    break_if_stale(
                        conn, host.kong_config_path, lock_status, notify=lambda msg: out.line(f"  {msg}", host.name)
                    )
            else:
                writer = make_writer(writer_kind, conn, host, profile.dokploy)
                _apply(conn, host, state, plan, text, options, out, result, secrets, ahead, writer)
        except DeployError as exc:
            result.status = "rolled_back" if isinstance(exc, RolledBackError) else "failed"
            result.message = str(exc)
            raise
        finally:
            if ahead is not None:
                ahead.settle()
            # A run refused before the lock (bad config, wrong mount) leaves the host exactly
            # as it was: no audit line either. Every other run but --check is audited.
            if not options.check and not (result.status == "failed" and owner is None):
                _finish(result, started)
                _audit_and_release(conn, host, task, result, owner, out, held)
            elif held is not None:
                held.release()
    return result


def _validate(
    conn: HostConnection,
    host: HostConfig,
    state: HostState,
    text: str,
    source: str,
    options: DeployOptions,
    out: Output,
) -> None:
    if options.skip_validate:
        out.line(
            "  ! --skip-validate: NOT checking the file against Kong's schema or Supabase pitfalls,"
            " and NOT running kong config parse on the host first",
            host.name,
        )
    else:
        # The first look skips Realtime (a no-op never needs it); its tenant name matters here.
        realtime = state.realtime or inspect_container(conn.engine(), host.realtime_container)
        validate_or_raise(text, kong_target(host, build_profile(state.kong, realtime)), source, out, host.name)


def _plan(
    desired_sha: str, state: HostState, result: HostResult, out: Output, host: HostConfig, again: bool = False
) -> Plan:
    plan = plan_deploy(desired_sha, state)
    result.plan, result.old_sha256, result.new_sha256 = plan.describe(), state.file.sha256, desired_sha
    out.line(f"  plan{' (under the lock)' if again else ''}: {plan.describe()}", host.name)
    return plan


def _print_diff(conn: HostConnection, host: HostConfig, state: HostState, text: str, out: Output) -> None:
    old = read_remote_text(conn, host.kong_config_path) if state.file.exists else ""
    register_file_credentials(old)  # an old file's own keys and passwords, however stale
    out.line(unified_diff(old, text, host.kong_config_path) or "  (no textual difference)", host.name)


def _audit_and_release(
    conn: HostConnection,
    host: HostConfig,
    task: str,
    result: HostResult,
    owner: LockOwner | None,
    out: Output,
    held: HeldCommand | None = None,
) -> None:
    """Append the audit line and release our lock, in one command (for a run without the
    lock: on the look's held session when it is still there); never raises."""
    line = audit_line(task, result)
    if held is not None:
        try:
            held.finish(line)
            return
        except DeployError:
            pass  # e.g. the connection was lost and opened again: a command of its own
    try:
        conn.run(
            append_argv(
                host.kong_config_path,
                line,
                lock_path(host.kong_config_path),
                owner.token if owner else "",
            )
        )
    except DeployError as exc:
        hint = f" ({not_writable_hint(conn.user, state_dir(host.kong_config_path), conn.become)})"
        why = f"{exc}{hint if 'Permission denied' in str(exc) else ''}"
        out.line(f"  ! could not write the audit line / release the lock: {why}", host.name)


def _apply(
    conn: HostConnection,
    host: HostConfig,
    state: HostState,
    plan: Plan,
    text: str,
    options: DeployOptions,
    out: Output,
    result: HostResult,
    secrets: Secrets,
    ahead: _Ahead | None,
    writer: FileWriter | None = None,
) -> None:
    """Replace (or have ``writer`` put the file in place: Dokploy), restart, wait, verify;
    roll back on failure."""
    if not state.kong.exists:
        raise RestartError(f"{host.name}: container {host.kong_container} does not exist; nothing to restart")
    stamp = datetime.now(UTC).strftime(STAMP_FORMAT)
    profile = build_profile(state.kong)
    choice = choose_apply(state.kong, profile, replace=plan.replace, force_restart=options.restart)
    # A reload is checked by Kong itself as it loads the file: POST /config answers 400 and
    # changes nothing for a file it refuses, so a separate `kong config parse` (a whole Kong
    # CLI start in the container) is only run before a restart into the file.
    checked_by_load = plan.replace and choice.reload and not options.skip_validate
    if checked_by_load:
        said = "by Kong as it loads the file (POST /config refuses a bad one, changing nothing)"
        out.line(f"  preflight: {said}", host.name)
    else:
        _preflight(conn, host, state, plan, text, options, out, result, ahead)
    # A restart where a reload was wanted (not --restart, not a stopped Kong) is said loudly.
    loud = plan.replace and not choice.reload and not options.restart and state.kong.running
    out.line(f"  {'! ' if loud else ''}{choice.describe()}", host.name)
    if choice.reload and _reload(conn, host, state, choice, text, options, out, result, secrets, stamp, writer):
        return
    if checked_by_load:  # the reload could not run: Kong parses the file before a restart into it
        _preflight(conn, host, state, plan, text, options, out, result, None)
    if plan.replace:
        _replace(conn, host, state, text, out, result, stamp, writer)
    result.status = "changed"
    gate = ahead.gate_for(state.kong) if ahead else None
    try:
        _restart_and_verify(conn, host, state.kong, sha256_text(text), options, out, result, secrets, gate)
    except (RestartError, VerifyError) as failure:
        if not options.rollback:
            kept = f"its backup: {result.backup}" if result.backup else "the file was new"
            raise type(failure)(f"{failure}; --no-rollback: the new file stays in place ({kept})") from None
        if not result.backup and writer is None:
            raise
        _roll_back(conn, host, options, out, result, secrets, failure, writer)


def _preflight(
    conn: HostConnection,
    host: HostConfig,
    state: HostState,
    plan: Plan,
    text: str,
    options: DeployOptions,
    out: Output,
    result: HostResult,
    ahead: _Ahead | None,
) -> None:
    """Have the running Kong parse the new file before a restart into it (the verdict of
    the parse started ahead when it ran against this Kong); :class:`ValidationError` when
    it refuses the file or cannot give a verdict (see :func:`~supakong.preflight.judge`)."""
    if not plan.replace or options.skip_validate:
        return
    if options.skip_preflight:
        out.line("  ! --skip-preflight: NOT asking the running Kong to parse the file first", host.name)
        return
    with result.timed("preflight"):
        check = (ahead.preflight_for(state.kong) if ahead else None) or preflight_parse(
            conn.engine(), state.kong, text.encode("utf-8"), build_profile(state.kong).expansion
        )
    out.line(f"  {judge(check, host.name)}", host.name)


def _replace(
    conn: HostConnection,
    host: HostConfig,
    state: HostState,
    text: str,
    out: Output,
    result: HostResult,
    stamp: str,
    writer: FileWriter | None = None,
) -> None:
    """Write the new file on the host atomically, keeping a backup of the old one; or have
    ``writer`` put it in place (Dokploy's file mount, through its API or ``--direct``)."""
    if writer is not None:
        with result.timed("replace"):
            out.line(f"  {writer.write(text, state.file.sha256, stamp)}", host.name)
        out.lines([f"  ! {note}" for note in writer.notes], host.name)
        result.backup = getattr(writer, "backup", None)
        result.message = "; ".join(writer.notes)
        checkpoint("committed")
        return
    with result.timed("replace"):
        result.backup = replace_file_atomically(
            conn,
            host.kong_config_path,
            text.encode("utf-8"),
            expected_sha=state.file.sha256,
            mode=host.file_mode,
            keep=host.backups_keep,
            stamp=stamp,
        )
    out.line(f"  replaced {host.kong_config_path} (backup: {result.backup or 'none, file was new'})", host.name)
    checkpoint("committed")


def _restore_previous(
    conn: HostConnection, host: HostConfig, result: HostResult, out: Output, writer: FileWriter | None
) -> str:
    """Put the previous file back the way the new one was written; returns where from."""
    if writer is not None:  # Dokploy's mount through its API, or a --direct write in place
        out.line(f"  {writer.restore()}", host.name)
        return result.backup or "the previous content of Dokploy's file mount"
    assert result.backup is not None
    restore_backup(conn, host.kong_config_path, result.backup)
    return result.backup


def _reload(
    conn: HostConnection,
    host: HostConfig,
    state: HostState,
    choice: ApplyChoice,
    text: str,
    options: DeployOptions,
    out: Output,
    result: HostResult,
    secrets: Secrets,
    stamp: str,
    writer: FileWriter | None = None,
) -> bool:
    """Load the new config into the running Kong, then write the host's file and verify;
    False when the reload cannot run (the caller restarts instead, as before). Kong refusing
    the config raises :class:`ValidationError` before anything changed on the host."""
    profile = build_profile(state.kong)
    with result.timed("reload"):
        # No `kong config parse` first: POST /config refuses what the parse would (a 400, nothing changed).
        outcome = reload_config(conn.engine(), host.kong_container, profile, choice, text.encode("utf-8"), parse=False)
    if outcome.result == REFUSED:
        raise ValidationError(
            f"{host.name}: Kong in {host.kong_container} refuses the new config ({outcome.detail}); nothing was"
            f" changed: {host.kong_config_path} and the running config are the previous ones"
        )
    if outcome.result == FALLBACK:
        out.line(f"  ! RELOAD NOT POSSIBLE, RESTARTING {host.kong_container} INSTEAD: {outcome.detail}", host.name)
        return False
    result.method = RELOADED
    out.line(f"  reloaded {host.kong_container} through the Admin API ({outcome.detail})", host.name)
    checkpoint("reloaded")
    try:
        _replace(conn, host, state, text, out, result, stamp, writer)
    except DeployError as not_written:
        # Kong runs the new config but the host keeps the old file: load the old one back.
        old = read_remote_text(conn, host.kong_config_path)
        back = reload_config(conn.engine(), host.kong_container, profile, choice, old.encode("utf-8"))
        raise type(not_written)(
            f"{not_written}; reloaded the previous config back: {back.result} ({back.detail})"
        ) from None
    _mark_loaded(conn, host, sha256_text(text), state.kong.started_at)
    checkpoint("marked")
    result.status = "changed"
    if not options.verify:
        return True
    report = run_verification(host, secrets, out, state.kong.env)
    result.verify_state = report.state
    result.timings["verify"] = sum(stage.seconds for stage in report.stages)
    if report.ok:
        return True
    cause = report.diagnosis.cause if report.diagnosis else "a probe failed"
    failure = VerifyError(f"{host.name}: Realtime verification failed ({report.state}): {cause}")
    if not options.rollback:
        kept = f"its backup: {result.backup}" if result.backup else "the file was new"
        raise VerifyError(f"{failure}; --no-rollback: the new file stays in place ({kept})")
    if not result.backup and writer is None:
        raise failure
    _roll_back(conn, host, options, out, result, secrets, failure, writer, reload=(state.kong, (profile, choice)))
    return True


def _mark_loaded(conn: HostConnection, host: HostConfig, sha256: str, started_at: float) -> None:
    """Write the reload marker beside the config (see :attr:`HostState.file_is_loaded`): the
    next look then knows this Kong runs this file although the file is newer than its start.
    Without it (a run killed before this), the next run restarts Kong: safe, only slower."""
    marker = posixpath.join(state_dir(host.kong_config_path), "loaded")
    script = 'mkdir -p "${1%/*}" && printf "%s\\n" "$2" > "$1.tmp" && mv -f "$1.tmp" "$1"'
    conn.run(["sh", "-c", script, "sh", marker, loaded_marker(sha256, started_at)])


def _reload_previous(
    conn: HostConnection,
    host: HostConfig,
    kong: ContainerState,
    how: tuple[HostProfile, ApplyChoice],
    out: Output,
    result: HostResult,
    secrets: Secrets,
) -> bool:
    """Load the restored file into the running Kong and verify (:class:`VerifyError` when the
    verification fails); False when the reload cannot run (the caller restarts)."""
    previous = read_remote_text(conn, host.kong_config_path)
    back = reload_config(conn.engine(), host.kong_container, *how, previous.encode("utf-8"))
    if back.result != APPLIED:
        out.line(f"  ! reload of the previous config not possible ({back.detail}); restarting", host.name)
        return False
    out.line(f"  reloaded the previous config into {host.kong_container} ({back.detail})", host.name)
    _mark_loaded(conn, host, sha256_text(previous), kong.started_at)
    report = run_verification(host, secrets, out, kong.env)
    result.verify_state = report.state
    if not report.ok:
        raise VerifyError(f"Realtime verification fails ({report.state})")
    return True


def _restart_and_verify(
    conn: HostConnection,
    host: HostConfig,
    before: ContainerState,
    expected_sha: str,
    options: DeployOptions,
    out: Output,
    result: HostResult,
    secrets: Secrets,
    gate: ListenGate | None = None,
) -> None:
    """Restart Kong, wait until it is up, check it reads ``expected_sha``, show the logs
    and verify. ``gate``: the listen gate already checked against ``before`` (else here)."""
    if gate is None:
        gate = ListenGate(lambda: conn.transport)
        gate.check_before_restart(before)
    engine = conn.engine()  # restart, waits, execs and logs: light requests, no docker-py
    with result.timed("restart"):
        restart_container(engine, host.kong_container)
        result.method = RESTARTED
        out.line(f"  restarted {host.kong_container}", host.name)
        checkpoint("restarted")
        # The file a container reads is fixed when it starts: it is checked while Kong loads.
        confirming = _AHEAD.submit(_confirm_content, engine, host, expected_sha)
        gate.ask_ahead(before, _AHEAD)  # the wait's first question, asked with its first inspect
        try:
            after = wait_until_running(
                engine,
                host.kong_container,
                since=before.started_at,
                restarts_before=before.restart_count,
                timeout=options.wait_timeout,
                settle=options.settle,
                listening=gate,
                ungated_after=gate.ungated_after,
                ask_ahead=lambda state: gate.ask_ahead(state, _AHEAD),
            )
        except BaseException as exc:
            wait_for([confirming])  # its verdict no longer matters; the failure's does
            if isinstance(exc, RestartError):
                _print_logs(conn, host, before.started_at, options, out)
            raise
        finally:
            gate.settle()
    out.line(f"  {host.kong_container} is up: {after.describe()}", host.name)
    checkpoint("up")
    with result.timed("logs"):
        conn.reserve_session()  # the audit line's (or the rollback's), opening meanwhile
        lines = _read_logs(conn, host, after.started_at - 1, options)
        try:
            confirming.result()
        except (RestartError, TransportError):
            _confirm_content(engine, host, expected_sha)  # again, on the container now up
        _show_logs(lines, options, out, host.name)
    if options.verify:
        report = run_verification(host, secrets, out, after.env)
        result.verify_state = report.state
        result.timings["verify"] = sum(s.seconds for s in report.stages)
        if not report.ok:
            _print_logs(conn, host, after.started_at - 1, options, out, title="logs around the failed verification")
            cause = report.diagnosis.cause if report.diagnosis else "a probe failed"
            raise VerifyError(f"{host.name}: Realtime verification failed ({report.state}): {cause}")


def _confirm_content(api: object, host: HostConfig, expected_sha: str) -> None:
    """After the restart the container must see the new file (not a stale inode)."""
    code, output = exec_in_container(api, host.kong_container, ["sha256sum", host.kong_config_mount])
    seen = output.split()[0] if code == 0 and output.strip() else f"unreadable ({output.strip()[:80]})"
    if seen != expected_sha:
        raise RestartError(
            f"{host.name}: {host.kong_container} sees {host.kong_config_mount} with sha256 {seen[:12]},"
            f" expected {expected_sha[:12]}: the container does not read the file supakong wrote"
        )


def _print_logs(
    conn: HostConnection,
    host: HostConfig,
    since: float,
    options: DeployOptions,
    out: Output,
    title: str = "logs since the restart",
) -> None:
    _show_logs(_read_logs(conn, host, since, options), options, out, host.name, title)


def _read_logs(conn: HostConnection, host: HostConfig, since: float, options: DeployOptions) -> list[LogLine]:
    containers = (host.kong_container, host.realtime_container)
    return fetch_interleaved(conn.engine(), containers, since=since, tail=options.log_lines)


def _show_logs(
    lines: list[LogLine], options: DeployOptions, out: Output, host: str, title: str = "logs since the restart"
) -> None:
    out.line(f"  {title} ({len(lines)} lines):", host)
    out.lines([f"    {row}" for row in format_log_lines(lines[-options.log_lines :])], host)


def run_verification(
    host: HostConfig, secrets: Secrets, out: Output, kong_env: Mapping[str, str] | None = None
) -> VerifyReport:
    """Verify the Realtime path through Kong as supabase-js would, with each kind of key the
    host has (publishable, legacy anon JWT; :func:`supakong.verify_keys.probe_keys`); print
    the stages. Returns the first failed report, else the first key's."""
    from .verify import for_host_report, format_report, verify_realtime  # lazy: websockets only when verifying
    from .verify_keys import probe_keys
    from .verify_model import ChannelSpec

    channel = ChannelSpec.named(host.verify_channel, host.verify_table)
    keys = probe_keys(secrets, kong_env, host.kong_container)
    reports = []
    for key in keys:
        report = for_host_report(
            verify_realtime(host.public_url, key.value, channel=channel, vsn=host.verify_vsn), host
        )
        heading = [f"  with the {key.label}:"] if len(keys) > 1 else []
        out.lines([*heading, *(f"  {row}" for row in format_report(report))], host.name)
        reports.append(report)
    return next((report for report in reports if not report.ok), reports[0])


def _roll_back(
    conn: HostConnection,
    host: HostConfig,
    options: DeployOptions,
    out: Output,
    result: HostResult,
    secrets: Secrets,
    failure: DeployError,
    writer: FileWriter | None = None,
    reload: tuple[ContainerState, tuple[HostProfile, ApplyChoice]] | None = None,
) -> None:
    """Put the previous file back the way the new one was written, load it the way the new one
    was loaded (``reload``: into the running Kong, restarting when that cannot run; else a
    restart), verify; raise :class:`RolledBackError` saying whether the previous config serves."""
    out.line(f"  ROLLING BACK: {failure}", host.name)
    restored_from = _restore_previous(conn, host, result, out, writer)
    result.status = "rolled_back"
    try:
        if reload is None or not _reload_previous(conn, host, *reload, out, result, secrets):
            before = inspect_container(conn.engine(), host.kong_container)
            restored_sha = read_remote_file(conn, host.kong_config_path).sha256
            _restart_and_verify(conn, host, before, restored_sha, options, out, result, secrets)
    except (RestartError, VerifyError) as second:
        raise RolledBackError(
            f"{failure}; rolled back to {restored_from}, but the previous config fails too: {second}"
        ) from None
    raise RolledBackError(f"{failure}; rolled back to {restored_from}: the previous config is serving again")


def _finish(result: HostResult, started: float) -> HostResult:
    result.seconds = time.monotonic() - started
    return result


#: The signature shared by per-host task bodies run by :mod:`supakong.fleet`.
HostAction = Callable[[HostConfig, Output], HostResult]
