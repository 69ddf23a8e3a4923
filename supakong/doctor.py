"""Diagnose a host's Realtime path: ``verify-realtime`` with the logs of a failed attempt, and
``doctor``, a read-only checklist that names what is wrong and how to fix it.

Two halves, kept apart (STYLE: look, then decide):

* gathering (I/O): probe the browser's path (:mod:`supakong.verify`), read the Kong and
  Realtime logs around a failed attempt, and read the host over SSH without changing it (the
  live kong file, the config Kong actually loaded, both containers and their env);
* deciding (pure): :class:`DoctorFacts` → :func:`build_checklist` → ✓/✗ with a fix for every
  ✗; :func:`verification_json` → the document of ``verify-realtime --json``.

Secrets (the anon key, Realtime's API_JWT_SECRET, the keys in kong.yml) are compared, never
printed; every line goes through :class:`supakong.report.Output`, which masks.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import jwt
from invoke import Exit

from . import fence
from .checks import FAIL, MARKS, OK, SKIP, Check
from .container import ContainerState, exec_in_container, inspect_container, probed_healthy
from .discovery import ContainerSummary
from .doctor_hash import RunningConfig, judge_running_config, read_running_config
from .doctor_keys import KeyFacts, doctor_key_checks
from .doctor_tables import TableReadiness, doctor_table_checks, host_table, read_table_readiness
from .dokploy.apply import stored_copy_drift
from .dokploy.policy import doctor_check, dokploy_notes
from .envoy import SWITCH_TO_KONG, envoy_detail, find_envoy
from .errors import DeployError, InventoryError, VerifyError
from .eval_expansion import expand_like_eval
from .fleet import HostAction
from .hostprofile import build_profile, kong_target
from .inventory import HostConfig, check_allowed
from .kong.entities import Entities, collect_entities, effective_upstream, parent_of
from .kong.findings import ERROR, WARNING
from .kong.pitfalls import realtime_routes
from .kong.target import KongTarget
from .kong.validate import validate_kong_config
from .kong.yaml_source import parse_source
from .logs import fetch_interleaved, format_log_lines
from .look import look
from .remote_file import RemoteFile, read_remote_text
from .report import HostResult, Output, recap_lines
from .secrets import Secrets, load_host_secrets, mask, register_env_secrets, register_secret
from .transport import HostConnection
from .verify import VerifyReport, for_host_report, format_report, verify_realtime
from .verify_diagnose import EXPIRED_FIX, JWT_SECRET_FIX, TENANT_SOURCE
from .verify_keys import probe_keys
from .verify_model import ChannelSpec

VSNS = ("1.0.0", "2.0.0")
DEFAULT_TENANT = "realtime-dev"
_CHANNEL_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}")
_TABLE_RE = re.compile(r"(?:[A-Za-z0-9_]+\.)?[A-Za-z0-9_]+|")
#: The inventory's keys and the kong.yml consumers that must hold them (Supabase's names).
KEY_CONSUMERS = (("anon", "SUPABASE_ANON_KEY"), ("service_role", "SUPABASE_SERVICE_KEY"))
#: Supabase's own realtime entries (public): the file self-hosting ships.
REALTIME_ROUTE_DOCS = "see supabase/supabase docker/volumes/api/kong.yml (realtime-v1-ws)"


# =========================================================================== verify-realtime


@dataclass(frozen=True)
class VerifyOptions:
    """Overrides of the inventory's ``verify_*`` settings, and how much log to attach."""

    vsn: str | None = None
    channel: str | None = None
    table: str | None = None
    timeout: float = 10.0
    log_lines: int = 30
    log_window: float = 15.0
    event: bool = False  # --event: write a probe row and wait for its event (EVENTS)

    def __post_init__(self) -> None:
        if self.vsn is not None and self.vsn not in VSNS:
            raise VerifyError(f"--vsn: expected {' or '.join(VSNS)}, got {self.vsn!r}")
        if self.channel is not None and not _CHANNEL_RE.fullmatch(self.channel):
            raise VerifyError(f"--channel: expected a channel name like supakong-probe, got {self.channel!r}")
        if self.table is not None and not _TABLE_RE.fullmatch(self.table):
            raise VerifyError(f"--table: expected schema.table (or '' for no postgres_changes), got {self.table!r}")

    def applied_to(self, host: HostConfig) -> HostConfig:
        """``host`` with these overrides as its ``verify_*`` settings (for deploy-kong's own
        verification, which reads them from the host); in the inventory's form: a bare table
        becomes ``public.table``."""
        table = host.verify_table if self.table is None else self.table
        if table and "." not in table:
            table = f"public.{table}"
        return replace(
            host,
            verify_vsn=self.vsn or host.verify_vsn,
            verify_channel=self.channel or host.verify_channel,
            verify_table=table,
        )


def channel_spec(default_channel: str, default_table: str, options: VerifyOptions) -> ChannelSpec:
    """The channel to join: the inventory's (or ``--channel``/``--table``); ``table`` is
    ``schema.table``, ``table`` (schema public) or empty (no postgres_changes binding)."""
    return ChannelSpec.named(
        options.channel or default_channel, default_table if options.table is None else options.table
    )


@dataclass(frozen=True)
class HostVerification:
    """One verification: the probe's report, plus the masked log lines of a failed attempt.
    A host with both kinds of keys is probed with each: ``report`` is the first key's
    (``key_label`` says which), ``also`` holds the others' (see :mod:`supakong.verify_keys`)."""

    label: str
    report: VerifyReport
    logs: tuple[str, ...] = ()
    logs_note: str = ""
    notes: tuple[str, ...] = ()  # shown before the stages (e.g. the probe table just made)
    key_label: str = ""
    also: tuple[tuple[str, VerifyReport], ...] = ()

    @property
    def reports(self) -> tuple[tuple[str, VerifyReport], ...]:
        """(key kind, report) of every probe, the first key's first."""
        return ((self.key_label, self.report), *self.also)

    @property
    def worst(self) -> VerifyReport:
        """The first failed report, else the first key's."""
        return next((report for _, report in self.reports if not report.ok), self.report)

    @property
    def ok(self) -> bool:
        """SUBSCRIBED and every probe passed, with every key."""
        return all(report.ok for _, report in self.reports)


def verify_host(
    host: HostConfig,
    secrets: Secrets,
    options: VerifyOptions,
    *,
    conn: HostConnection | None = None,
    with_logs: bool = True,
    kong_env: Mapping[str, str] | None = None,
) -> HostVerification:
    """Probe ``host``'s public URL as supabase-js does, with each kind of key the host has
    (its publishable key, then its legacy anon JWT); on failure attach the Kong and Realtime
    logs around the attempt (over ``conn``, or a connection of its own). The keys: the local
    ones, else the Kong container's (``kong_env``, else read over SSH)."""
    keys = probe_keys(
        secrets, kong_env if kong_env is not None else _kong_env(host, secrets, conn), host.kong_container
    )
    if options.event:
        from .verify_event import verify_host_events  # the db over SSH: only for --event

        return verify_host_events(host, keys[0].value, options, conn=conn, with_logs=with_logs)
    channel = channel_spec(host.verify_channel, host.verify_table, options)
    started = time.time()
    reports = tuple(
        (
            key.label,
            for_host_report(
                verify_realtime(
                    host.public_url,
                    key.value,
                    channel=channel,
                    vsn=options.vsn or host.verify_vsn,
                    timeout=options.timeout,
                ),
                host,
            ),
        )
        for key in keys
    )
    # One key: no label, the output reads as before.
    label = reports[0][0] if len(reports) > 1 else ""
    verification = HostVerification(host.name, reports[0][1], key_label=label, also=reports[1:])
    if verification.ok or not with_logs:
        return verification
    logs, note = logs_around(host, started - options.log_window, options.log_lines, conn)
    return replace(verification, logs=logs, logs_note=note)


def _kong_env(host: HostConfig, secrets: Secrets, conn: HostConnection | None) -> Mapping[str, str]:
    """The Kong container's environment when the keys must come from it (else nothing is
    read: with a local anon key, a publishable key is probed only if it is local too)."""
    if secrets.get("SUPABASE_ANON_KEY"):
        return {}
    if conn is not None:
        return inspect_container(conn.engine(), host.kong_container).env
    with HostConnection(host) as own:
        return inspect_container(own.engine(), host.kong_container).env


def verify_url(url: str, apikey: str, options: VerifyOptions) -> HostVerification:
    """Probe any Supabase URL with ``apikey`` (no inventory, so no logs)."""
    default = ChannelSpec()
    channel = channel_spec(default.name, f"{default.schema}.{default.table}", options)
    report = verify_realtime(url, apikey, channel=channel, vsn=options.vsn or "2.0.0", timeout=options.timeout)
    return HostVerification(mask(url), report, logs_note="no logs: --url names no host to read them from")


def logs_around(
    host: HostConfig, since: float, limit: int, conn: HostConnection | None = None
) -> tuple[tuple[str, ...], str]:
    """The last ``limit`` Kong and Realtime log lines since ``since`` (epoch seconds),
    interleaved, formatted and masked; or none and why (the host is not reachable over SSH).

    ``since`` is this machine's clock and Docker filters by the host's: the window (15 s by default) is
    wide enough that a small clock skew only trims it."""
    try:
        if conn is not None:
            lines = _read_logs(conn, host, since, limit)
        else:
            with HostConnection(host) as own:
                lines = _read_logs(own, host, since, limit)
    except DeployError as exc:
        return (), f"no logs: {exc}"
    return (
        lines,
        "" if lines else f"no log lines from {host.kong_container} or {host.realtime_container} around the attempt",
    )


def _read_logs(conn: HostConnection, host: HostConfig, since: float, limit: int) -> tuple[str, ...]:
    containers = (host.kong_container, host.realtime_container)
    lines = fetch_interleaved(conn.engine(), containers, since=since, tail=limit)
    return tuple(format_log_lines(lines[-limit:]))


def verification_lines(verification: HostVerification) -> list[str]:
    """The stages, the state, cause and fix, then the logs of a failed attempt."""
    rows = list(verification.notes)
    for label, report in verification.reports:
        if label:
            rows.append(f"with the {label}:")
        rows.extend(format_report(report))
    if verification.logs:
        rows.append(f"  logs around the attempt ({len(verification.logs)} lines):")
        rows.extend(f"    {line}" for line in verification.logs)
    elif verification.logs_note and not verification.ok:
        rows.append(f"  ({verification.logs_note})")
    return rows


def verification_result(verification: HostVerification) -> HostResult:
    """The recap row of a verification: failed unless SUBSCRIBED with every probe passed."""
    report = verification.worst
    result = HostResult(
        host=verification.label,
        verify_state=report.state,
        timings={stage.name: stage.seconds for stage in report.stages},
    )
    if not verification.ok:
        result.status = "failed"
        failed = ", ".join(stage.name for stage in report.failed_stages) or report.state
        result.message = report.diagnosis.cause if report.diagnosis else f"failed: {failed}"
    return result


def verification_json(verification: HostVerification) -> dict[str, Any]:
    """One host of the ``--json`` document: state, stages with timings, diagnosis, logs (of
    the first failed probe when the host was probed with several keys)."""
    report = verification.worst
    return {
        "url": report.url,
        "state": report.state,
        "ok": verification.ok,
        "stages": [
            {"name": s.name, "ok": s.ok, "ms": round(s.seconds * 1000, 1), "detail": s.detail} for s in report.stages
        ],
        "diagnosis": asdict(report.diagnosis) if report.diagnosis is not None and not verification.ok else None,
        "logs": list(verification.logs),
        "logs_note": verification.logs_note,
        "error": None,
    }


def not_verified_json(message: str) -> dict[str, Any]:
    """A host of the ``--json`` document that was never probed (refused, bad secrets, …)."""
    return {"url": None, "state": None, "ok": False, "stages": [], "diagnosis": None, "logs": [], "error": message}


def verify_document(hosts: Mapping[str, Mapping[str, Any]]) -> str:
    """The ``verify-realtime --json`` document, every string masked."""
    ok = bool(hosts) and all(entry.get("ok") for entry in hosts.values())
    return json.dumps(
        _masked({"task": "verify-realtime", "ok": ok, "hosts": dict(hosts)}), indent=2, ensure_ascii=False
    )


def _masked(value: Any) -> Any:
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, Mapping):
        return {key: _masked(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_masked(item) for item in value]
    return value


def apikey_from_env(name: str, environ: Mapping[str, str] | None = None) -> str:
    """The key in environment variable ``name`` (registered as a secret, never printed)."""
    environ = os.environ if environ is None else environ
    value = environ.get(name, "").strip()
    if not value:
        raise InventoryError(f"--apikey-env {name}: that environment variable is not set; export {name}=<anon key>")
    register_secret(value)
    return value


def check_url_allowed(url: str, hosts: Iterable[HostConfig], environ: Mapping[str, str] | None = None) -> None:
    """With ``SUPAKONG_HOST_ALLOWLIST`` set, ``--url`` may only reach the public URL of an
    inventory host the allowlist lets through (the fence stays closed for raw URLs)."""
    fence.check_url(url, ((host.name, host.public_url) for host in hosts), environ)


def verify_action(options: VerifyOptions, collected: dict[str, dict[str, Any]]) -> HostAction:
    """The per-host body of ``verify-realtime``; each host's JSON entry lands in ``collected``."""

    def action(host: HostConfig, out: Output) -> HostResult:
        out.line(f"verify-realtime {host.name} ({host.public_url})", host.name)
        try:
            verification = verify_host(host, load_host_secrets(host), options)
        except DeployError as exc:
            collected[host.name] = not_verified_json(str(exc))
            raise
        collected[host.name] = verification_json(verification)
        out.lines([f"  {row}" for row in verification_lines(verification)], host.name)
        return verification_result(verification)

    return action


def not_run_entries(hosts: Iterable[HostConfig], collected: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """``collected`` in host order, with an entry saying why for every host never probed."""
    entries: dict[str, Any] = {}
    for host in hosts:
        if host.name in collected:
            entries[host.name] = collected[host.name]
            continue
        try:
            check_allowed(host)
            why = "not verified (see the messages on stderr)"
        except InventoryError as exc:
            why = str(exc)
        entries[host.name] = not_verified_json(why)
    return entries


def run_url_check(
    url: str, apikey_env: str, options: VerifyOptions, *, as_json: bool, hosts: Callable[[], Iterable[HostConfig]]
) -> None:
    """``verify-realtime --url``: probe one URL, print it (JSON on stdout with ``as_json``),
    exit 1 unless SUBSCRIBED with every probe passed. ``hosts`` lists the inventory for the
    allowlist fence (only called when the allowlist is set)."""
    apikey = apikey_from_env(apikey_env)
    check_url_allowed(url, hosts() if fence.current() is not None else ())
    out = Output(sys.stderr) if as_json else Output()
    out.line(f"verify-realtime {url}")
    started = time.monotonic()
    verification = verify_url(url, apikey, options)
    out.lines([f"  {row}" for row in verification_lines(verification)])
    result = verification_result(verification)
    result.seconds = time.monotonic() - started
    out.lines(recap_lines({result.host: result}))
    if as_json:
        Output().line(verify_document({verification.label: verification_json(verification)}))
    if not verification.ok:
        raise Exit(code=1)


# =========================================================================== doctor: facts


@dataclass(frozen=True)
class DoctorFacts:
    """Everything the doctor looked at on one host. Secret-bearing fields never print."""

    host: str
    public_url: str
    config_path: str
    config_mount: str
    kong_container: str
    realtime_container: str
    realtime_upstream: str = "realtime-dev.supabase-realtime:4000"  # host:port of the inventory
    inventory_keys: Mapping[str, str] = field(default_factory=dict, repr=False)
    local_publishable: str = field(default="", repr=False)  # SUPABASE_PUBLISHABLE_KEY of the secrets
    inventory_tenant: str | None = None
    ssh_error: str = ""
    file: RemoteFile | None = None
    kong: ContainerState | None = None
    realtime: ContainerState | None = None
    live_text: str | None = field(default=None, repr=False)
    effective_text: str | None = field(default=None, repr=False)
    effective_source: str = ""
    effective_note: str = ""
    mount_sha256: str | None = None
    #: the reload marker names this file and this Kong (see :attr:`HostState.file_is_loaded`)
    reloaded: bool = False
    target: KongTarget | None = None
    target_error: str = ""
    verification: HostVerification | None = None
    verification_note: str = ""
    now: float = 0.0
    tables: TableReadiness | None = None  # the db's readiness for postgres_changes
    envoy: ContainerSummary | None = None  # an Envoy gateway, looked for when Kong is missing
    running_config: RunningConfig | None = None  # Kong's configuration_hash against the file's
    host_config: HostConfig | None = field(default=None, repr=False, compare=False)
    dokploy_drift: str | None = None  # Dokploy's stored copy is not the host's file (read through its API)

    @property
    def config_text(self) -> str | None:
        """The config Kong loaded (``KONG_DECLARATIVE_CONFIG`` in the container), else the
        file on the host."""
        return self.effective_text if self.effective_text is not None else self.live_text

    @property
    def config_label(self) -> str:
        return self.effective_source if self.effective_text is not None else f"{self.config_path} on the host"

    @property
    def keys_text(self) -> str | None:
        """The config with the entrypoint's ``$VARS`` substituted from Kong's env when only
        the host file could be read."""
        if self.effective_text is not None or self.live_text is None:
            return self.effective_text
        return expand_placeholders(self.live_text, self.kong.env if self.kong else {})

    @property
    def tenant(self) -> tuple[str, str]:
        """Realtime's tenant and where it comes from."""
        if self.realtime is not None and self.realtime.exists:
            name = self.realtime.env.get("SELF_HOST_TENANT_NAME")
            if name:
                return name, f"SELF_HOST_TENANT_NAME of {self.realtime_container}"
            return DEFAULT_TENANT, f"the default: SELF_HOST_TENANT_NAME is not set on {self.realtime_container}"
        if self.inventory_tenant:
            return self.inventory_tenant, "realtime_tenant in the inventory"
        return DEFAULT_TENANT, "the default"


def expand_placeholders(text: str, env: Mapping[str, str]) -> str | None:
    """The file Supabase's eval entrypoint makes of ``text`` with Kong's ``env`` (``$VARS``
    substituted, unset: empty), or None where only its shell could tell (see
    :mod:`supakong.eval_expansion`)."""
    return expand_like_eval(text, env)


def _entities(text: str | None) -> Entities | None:
    if text is None:
        return None
    parsed = parse_source(text)
    return collect_entities(parsed.doc) if not parsed.failed and isinstance(parsed.doc, Mapping) else None


def _sha(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


# =========================================================================== doctor: checks


def check_ssh(f: DoctorFacts) -> Check:
    """The host is reachable over SSH (everything but the probe needs it)."""
    if f.ssh_error:
        return Check(
            "ssh",
            FAIL,
            f.ssh_error,
            "fix SSH access first (ansible_host/ansible_user/ssh_config_file in the inventory, known_hosts)",
        )
    return Check("ssh", OK, f"connected to {f.host}, read-only")


def check_live_config(f: DoctorFacts) -> Check:
    """The config Kong loads is valid for this Kong (schema, edition, Supabase pitfalls)."""
    name = "live config"
    notes = (f.effective_note,) if f.effective_note else ()
    if f.ssh_error:
        return Check(name, SKIP, "not read: no SSH")
    text = f.config_text
    if text is None:
        return Check(
            name,
            FAIL,
            f"{f.config_path} does not exist on the host",
            "check kong_config_path in the inventory, or create it with `fab deploy-kong`",
            notes,
        )
    if f.target is None:
        return Check(name, SKIP, f"not validated: the Kong version is unknown ({f.target_error})", notes=notes)
    findings = validate_kong_config(text, f.target, source=f.config_label)
    errors = [x for x in findings if x.severity == ERROR]
    warnings = [x for x in findings if x.severity == WARNING]
    listed = notes + tuple(x.as_line() for x in (*errors, *warnings))
    if errors:
        return Check(
            name,
            FAIL,
            f"{f.config_label}: {len(errors)} error(s) for {f.target.label}",
            "correct what the errors say (each ends with its hint), then `fab deploy-kong -H "
            f"{f.host}` validates the file before it touches the host",
            listed,
        )
    extra = f" ({len(warnings)} warning(s))" if warnings else ""
    return Check(name, OK, f"{f.config_label} is valid for {f.target.label}{extra}", notes=listed)


def check_config_loaded(f: DoctorFacts) -> Check:
    """Kong runs the file that is on the host (no restart pending, the mount is that file)."""
    name = "config loaded"
    if f.ssh_error or f.kong is None or f.file is None:
        return Check(name, SKIP, "not read: no SSH")
    if not f.kong.running or f.kong.restarting:
        return Check(name, SKIP, f"{f.kong_container} is not running")
    if not f.file.exists:
        return Check(name, SKIP, f"{f.config_path} does not exist")
    if f.reloaded:
        # A single-file bind mount keeps its start-time inode: the container sees the new
        # template only at its next start, which is the file Kong then renders and loads.
        return Check(
            name, OK, f"{f.config_path} was reloaded into {f.kong_container} through its Admin API (no restart)"
        )
    if f.mount_sha256 is None:
        return Check(name, SKIP, f"could not read {f.config_mount} inside {f.kong_container}")
    if f.mount_sha256 != f.file.sha256:
        return Check(
            name,
            FAIL,
            f"{f.kong_container} sees another file at {f.config_mount} than {f.config_path} (the file was"
            " replaced by rename after Kong started: a single-file bind mount keeps the old inode)",
            f"restart {f.kong_container} (`fab deploy-kong -H {f.host}` restarts it), and check its bind mount",
        )
    if f.file.mtime > f.kong.started_at:
        return Check(
            name,
            FAIL,
            f"{f.config_path} changed after {f.kong_container} started: Kong still runs the previous config",
            f"restart Kong: `fab deploy-kong -H {f.host}` restarts when the file is newer than the running Kong",
        )
    return Check(name, OK, f"{f.kong_container} started after the last change of {f.config_path} and sees it")


def check_container(f: DoctorFacts, role: str) -> Check:
    """The Kong or Realtime container exists, runs, is healthy; its restart count."""
    state, name = (f.kong, f.kong_container) if role == "kong" else (f.realtime, f.realtime_container)
    title = f"{role} container"
    if state is None:
        return Check(title, SKIP, "not read: no SSH")
    if not state.exists and role == "kong" and f.envoy is not None:
        return Check(title, FAIL, f"{name} does not exist: {envoy_detail(f.envoy)}", SWITCH_TO_KONG)
    if not state.exists:
        return Check(
            title,
            FAIL,
            f"{name} does not exist",
            f"check {role}_container in the inventory (`docker ps -a` on the host)",
        )
    detail = f"{name} {state.describe()}"
    if state.restarting or (state.running and state.restart_count and state.health not in (None, "healthy")):
        return Check(title, FAIL, f"{detail}: crash loop", _crash_fix(f, role))
    if not state.running:
        return Check(title, FAIL, detail, f"start it: `docker start {name}`; {_crash_fix(f, role)}")
    if state.health == "unhealthy":
        return Check(title, FAIL, detail, _crash_fix(f, role))
    if state.health == "starting":
        return Check(
            title, FAIL, f"{detail}: still starting", f"wait a few seconds and run `fab doctor -H {f.host}` again"
        )
    return Check(title, OK, detail)


def _crash_fix(f: DoctorFacts, role: str) -> str:
    if role == "kong":
        return (
            f"read `fab logs -H {f.host}` (a refused kong.yml logs 'error parsing declarative config';"
            " see the live config check)"
        )
    return f"read `fab logs -H {f.host}`; Kong answers 502 while Realtime is down"


def check_kong_target(f: DoctorFacts) -> Check:
    """Kong's version, edition and plugins, as read from the container (or pinned)."""
    name = "kong version"
    if f.target is None:
        if f.ssh_error:
            return Check(name, SKIP, "not read: no SSH")
        return Check(name, FAIL, f.target_error, "pin kong_version (and kong_edition, kong_plugins) in the inventory")
    image = f" ({f.kong.image})" if f.kong is not None and f.kong.image else ""
    detail = f"{f.target.label}{image}, plugins: {','.join(f.target.plugins)}"
    if f.kong is not None and f.kong.exists:
        p = build_profile(f.kong, f.realtime)
        detail += f"; entrypoint {p.expansion}, router {p.router_flavor} ({p.router_flavor_source})"
        if p.owner.markers or p.dokploy:  # noted, not failed: deploy-kong goes through Dokploy
            return Check(
                name, OK, detail, notes=dokploy_notes(None, p.owner.markers, None)
            )  # the dokploy row says more
    return Check(name, OK, detail)


def check_dokploy(f: DoctorFacts) -> list[Check]:
    """Dokploy-managed: appName, mode and the file mount, and how deploy-kong writes it."""
    if f.kong is None or not f.kong.exists:
        return []
    row = doctor_check(build_profile(f.kong).dokploy, f.host_config)
    if row is None:
        return []
    status, detail, fix, notes = row
    if status == "ok" and f.dokploy_drift:
        return [Check("dokploy", FAIL, detail, f.dokploy_drift)]
    return [Check("dokploy", OK if status == "ok" else FAIL, detail, fix, notes=notes)]


def check_tenant(f: DoctorFacts) -> Check:
    """Realtime's tenant equals the first label of the Host Kong sends on the realtime route."""
    name = "realtime tenant"
    if f.ssh_error:
        return Check(name, SKIP, "not read: no SSH")
    entities = _entities(f.config_text)
    if entities is None:
        return Check(name, SKIP, "the live config cannot be read (see the live config check)")
    tenant, source = f.tenant
    routes = realtime_routes(entities)
    if not routes:
        return Check(
            name,
            FAIL,
            "the live config has no Realtime route: /realtime/v1/websocket answers 404 no route",
            f"add Supabase's realtime-v1-ws service (url http://{f.realtime_upstream}/socket, route paths"
            f" [/realtime/v1/], strip_path true): `fab deploy-kong -H {f.host}` renders it; {REALTIME_ROUTE_DOCS}",
        )
    for route in routes:
        problem = _route_tenant_problem(f, entities, route.get("name") or route.path, route, tenant, source)
        if problem is not None:
            return problem
    service = parent_of(routes[0], "services", entities)
    upstream = effective_upstream(service.data).host if service else None
    return Check(name, OK, f"Kong sends Host {upstream} → tenant {tenant!r} = Realtime's tenant ({source})")


def _route_tenant_problem(
    f: DoctorFacts, entities: Entities, label: object, route: Any, tenant: str, source: str
) -> Check | None:
    name = "realtime tenant"
    service = parent_of(route, "services", entities)
    upstream = effective_upstream(service.data).host if service else None
    if route.get("preserve_host") is True:
        browser_host = urlsplit(f.public_url).hostname or f.public_url
        seen = browser_host.split(".", 1)[0]
        return Check(
            name,
            FAIL,
            f"preserve_host: true on route {label}: Realtime gets the browser's Host {browser_host} → tenant"
            f" {seen!r}, but its tenant is {tenant!r} ({source}): 'Tenant not found'",
            "remove preserve_host from the realtime route (default false) so Kong sends the service host"
            f" {upstream or 'of the realtime service'}; `supakong init {f.host} --fix` removes it from the"
            f" host's template, then `fab deploy-kong -H {f.host}`; {TENANT_SOURCE}",
        )
    if not upstream:
        return None
    first = upstream.split(".", 1)[0]
    if first.lower() == tenant.lower():
        return None
    return Check(
        name,
        FAIL,
        f"Kong sends Host {upstream} → tenant {first!r}, but Realtime's tenant is {tenant!r} ({source}):"
        " 'Tenant not found'",
        f"set SELF_HOST_TENANT_NAME={first} on {f.realtime_container} and recreate it, or point the realtime"
        f" service url at a name of {f.realtime_container} whose first label is {tenant} and"
        f" `fab deploy-kong -H {f.host}`; {TENANT_SOURCE}",
    )


def check_anon_key(f: DoctorFacts) -> Check:
    """The inventory's anon key is a JWT signed with Realtime's API_JWT_SECRET, role anon, not expired."""
    name = "anon key"
    if f.realtime is None or not f.realtime.exists:
        return Check(name, SKIP, "not checked: the realtime container could not be read")
    secret = f.realtime.env.get("API_JWT_SECRET", "")
    if not secret:
        return Check(
            name,
            FAIL,
            f"{f.realtime_container} has no API_JWT_SECRET in its environment, so it cannot check any key",
            f"set API_JWT_SECRET=${{JWT_SECRET}} on {f.realtime_container} and recreate it",
        )
    return jwt_check(f.inventory_keys.get("anon", ""), secret, f.realtime_container, f.now)


def jwt_check(key: str, secret: str, realtime_container: str, now: float) -> Check:
    """The anon key against Realtime's secret: signature, then ``exp`` and ``role`` (what
    Realtime checks on the handshake). Neither value ever appears in the result."""
    name = "anon key"
    register_secret(secret)
    where = f"API_JWT_SECRET of {realtime_container}"
    try:
        claims = jwt.decode(
            key,
            secret,
            algorithms=["HS256", "HS384", "HS512"],
            options={"verify_exp": False, "verify_nbf": False, "verify_iat": False, "verify_aud": False},
        )
    except jwt.InvalidSignatureError:
        return Check(
            name,
            FAIL,
            f"SUPABASE_ANON_KEY is not signed with {where}: Realtime answers 401 'Failed to validate JWT"
            " signature' (JWT_SECRET and ANON_KEY out of sync)",
            JWT_SECRET_FIX,
        )
    except jwt.InvalidAlgorithmError:
        return Check(
            name, FAIL, "SUPABASE_ANON_KEY is not an HS256 JWT", "issue the anon key with HS256 from JWT_SECRET"
        )
    except jwt.InvalidTokenError as exc:
        return Check(
            name,
            FAIL,
            f"SUPABASE_ANON_KEY is not a JWT ({mask(str(exc))})",
            "put the project's anon key (a JWT signed with JWT_SECRET) in the secrets file",
        )
    return _claims_check(claims, where, now)


def _claims_check(claims: Mapping[str, Any], where: str, now: float) -> Check:
    name = "anon key"
    exp, role = claims.get("exp"), claims.get("role")
    if not isinstance(exp, int | float) or role is None:
        return Check(
            name,
            FAIL,
            "SUPABASE_ANON_KEY lacks the `exp` or `role` claim Realtime requires",
            "issue a Supabase anon key (claims role and exp) from JWT_SECRET",
        )
    expires = datetime.fromtimestamp(exp, UTC).strftime("%Y-%m-%d %H:%M UTC")
    if exp <= now:
        return Check(name, FAIL, f"SUPABASE_ANON_KEY expired at {expires}", EXPIRED_FIX)
    if role != "anon":
        return Check(
            name,
            FAIL,
            f"SUPABASE_ANON_KEY carries role {role!r}, not 'anon' (browsers would get that role's rights)",
            "put the anon key (role anon) in SUPABASE_ANON_KEY",
        )
    return Check(name, OK, f"signed with {where}, role anon, expires {expires}")


def live_key_hashes(entities: Entities) -> dict[str, set[str]]:
    """sha256 of every keyauth credential, by consumer username (keys themselves never leave)."""
    hashes: dict[str, set[str]] = {}
    for credential in entities.of_kind("keyauth_credentials"):
        consumer = parent_of(credential, "consumers", entities)
        key = credential.get("key")
        if consumer is not None and isinstance(key, str):
            hashes.setdefault(str(consumer.get("username") or consumer.get("id")), set()).add(_sha(key))
    return hashes


def check_keys(f: DoctorFacts) -> Check:
    """The live config's keyauth credentials hold the keys the inventory has (compared by hash)."""
    name = "keys"
    if f.ssh_error:
        return Check(name, SKIP, "not read: no SSH")
    entities = _entities(f.keys_text)
    if entities is None and f.live_text is not None and f.effective_text is None and f.keys_text is None:
        return Check(name, SKIP, "cannot tell what Kong's entrypoint makes of the live config without its shell")
    if entities is None:
        return Check(name, SKIP, "the live config cannot be read (see the live config check)")
    live = live_key_hashes(entities)
    problems = []
    for consumer, env_name in KEY_CONSUMERS:
        problem = _key_problem(live, consumer, env_name, f.inventory_keys.get(consumer, ""))
        if problem:
            problems.append(problem)
    if problems:
        return Check(
            name,
            FAIL,
            "; ".join(problems) + ": Kong answers 401 to the inventory's keys (stale key)",
            f"`fab deploy-kong -H {f.host}` renders kong.yml with the inventory's keys and restarts Kong;"
            " if the live keys are the current ones, put them in the secrets file instead",
        )
    names = " and ".join(env for _, env in KEY_CONSUMERS)
    return Check(name, OK, f"the inventory's {names} are the keys of consumers anon and service_role")


def _key_problem(live: Mapping[str, set[str]], consumer: str, env_name: str, value: str) -> str:
    if not value:
        return f"{env_name} is not set in the inventory's secrets"
    digest = _sha(value)
    if digest in live.get(consumer, set()):
        return ""
    holder = next((other for other, keys in live.items() if digest in keys), None)
    if holder is not None:
        return f"the inventory's {env_name} is a key of consumer {holder}, not {consumer}"
    if consumer not in live:
        return f"the live config has no key-auth credential for consumer {consumer}"
    return f"the inventory's {env_name} is not among the {len(live[consumer])} key(s) of consumer {consumer}"


def check_verification(f: DoctorFacts) -> Check:
    """The browser's path, probed: SUBSCRIBED with every probe passed."""
    name = "realtime path"
    if f.verification is None:
        return Check(name, SKIP, f"not probed: {f.verification_note}" if f.verification_note else "not probed")
    report = f.verification.worst
    total = sum(stage.seconds for _, r in f.verification.reports for stage in r.stages) * 1000
    kinds = [label for label, _ in f.verification.reports if label]
    with_keys = f" with the {' and the '.join(kinds)}" if kinds else ""
    if f.verification.ok:
        return Check(name, OK, f"{report.state}{with_keys}, every probe passed ({total:.0f} ms)")
    failed = ", ".join(stage.name for stage in report.failed_stages)
    cause = report.diagnosis.cause if report.diagnosis else f"failed: {failed}"
    fix = report.diagnosis.fix if report.diagnosis else "see the stages below"
    return Check(name, FAIL, f"{report.state} ({failed or 'no stage passed'}): {cause}", fix)


def key_facts(f: DoctorFacts) -> KeyFacts:
    """What the opaque-key checks (:mod:`supakong.doctor_keys`) read of the doctor's facts."""
    return KeyFacts(
        kong_container=f.kong_container,
        realtime_container=f.realtime_container,
        kong_env=f.kong.env if f.kong is not None else {},
        realtime_env=f.realtime.env if f.realtime is not None and f.realtime.exists else None,
        source=f.live_text,
        loaded=f.effective_text,
        local_publishable=f.local_publishable,
        now=f.now,
    )


def build_checklist(f: DoctorFacts) -> list[Check]:
    """Every check of ``fab doctor``, in order: config, containers, Kong, tenant, keys, path."""
    return [
        check_ssh(f),
        check_live_config(f),
        judge_running_config(f.running_config, check_config_loaded(f), f.config_path, f.host, f.kong_container),
        check_container(f, "kong"),
        check_container(f, "realtime"),
        check_kong_target(f),
        *check_dokploy(f),
        check_tenant(f),
        check_anon_key(f),
        check_keys(f),
        *doctor_key_checks(key_facts(f)),
        *doctor_table_checks(f.tables),
        check_verification(f),
    ]


def checklist_ok(checks: Iterable[Check]) -> bool:
    """True when every check passed (a skipped check is not a pass)."""
    return all(check.status == OK for check in checks)


def checklist_lines(checks: list[Check]) -> list[str]:
    """``✓ name  detail`` rows; notes below; ``fix:`` below every ✗."""
    width = max((len(check.name) for check in checks), default=0)
    rows = []
    for check in checks:
        rows.append(f"{MARKS[check.status]} {check.name:<{width}}  {check.detail}")
        rows.extend(f"    {note}" for note in check.notes)
        if check.status == FAIL and check.fix:
            rows.append(f"    fix: {check.fix}")
    return rows


# =========================================================================== doctor: gathering


def gather_facts(host: HostConfig, secrets: Secrets, options: VerifyOptions) -> DoctorFacts:
    """Read ``host`` over SSH (nothing is changed) and probe its Realtime path."""
    base = DoctorFacts(
        host=host.name,
        public_url=host.public_url,
        config_path=host.kong_config_path,
        config_mount=host.kong_config_mount,
        kong_container=host.kong_container,
        realtime_container=host.realtime_container,
        realtime_upstream=f"{host.realtime_upstream_host}:{host.realtime_upstream_port}",
        inventory_keys={consumer: secrets.get(env) for consumer, env in KEY_CONSUMERS},
        local_publishable=secrets.get("SUPABASE_PUBLISHABLE_KEY"),
        inventory_tenant=host.realtime_tenant,
        now=time.time(),
        host_config=host,
    )
    try:
        with HostConnection(host) as conn:
            facts = read_host(conn, host, base)
            kong_env = facts.kong.env if facts.kong is not None else {}
            register_env_secrets(kong_env)
            # No local key: the keys are the Kong container's own (what its kong.yml references).
            facts = replace(facts, inventory_keys=_keys(secrets, kong_env))
            facts = _probe(facts, host, secrets, options, conn=conn, kong_env=kong_env)
            # after the probe: its join started Realtime's CDC workers, so their slot shows
            tables = read_table_readiness(
                conn.engine(),
                host_table(options.table, host.verify_table),
                facts.tenant[0],
                host.realtime_container,
                host.db_container,
            )
    except DeployError as exc:
        facts = _probe(replace(base, ssh_error=str(exc)), host, secrets, options, with_logs=False, kong_env={})
        tables = None
    return replace(facts, tables=tables, dokploy_drift=_dokploy_drift(facts, host))


def _dokploy_drift(facts: DoctorFacts, host: HostConfig) -> str | None:
    if facts.kong is None or not facts.kong.exists or facts.file is None:
        return None
    return stored_copy_drift(host, build_profile(facts.kong).dokploy, facts.file.sha256)


def _keys(secrets: Secrets, kong_env: Mapping[str, str]) -> dict[str, str]:
    return {consumer: secrets.get(env) or kong_env.get(env, "") for consumer, env in KEY_CONSUMERS}


def _probe(facts: DoctorFacts, host: HostConfig, secrets: Secrets, options: VerifyOptions, **how: Any) -> DoctorFacts:
    """``facts`` with the probe of the Realtime path (or why there is none: no key to use)."""
    try:
        return replace(facts, verification=verify_host(host, secrets, options, **how))
    except InventoryError as exc:
        return replace(facts, verification_note=str(exc))


def read_host(conn: HostConnection, host: HostConfig, base: DoctorFacts) -> DoctorFacts:
    """The live file, what Kong loaded, both containers and the Kong target; read-only."""
    state, _ = look(conn, host.kong_config_path, host.kong_container, host.realtime_container)
    assert state.realtime is not None  # look() inspects Realtime when it is named
    live_text = read_remote_text(conn, host.kong_config_path) if state.file.exists else None
    target, target_error = _target(host, state.kong, state.realtime)
    api = conn.engine()
    effective, source, note = _effective_config(api, host, state.kong)
    mount_sha = _mount_sha256(api, host, state.kong)
    envoy = None if state.kong.exists else find_envoy(api)
    content = live_text.encode("utf-8") if live_text is not None else None
    running = read_running_config(api, state.kong, build_profile(state.kong), content) if content is not None else None
    # "starting" only means Docker's first probe is still an interval away: run the
    # container's healthcheck now (read-only, the command Docker itself would run).
    kong = probed_healthy(api, state.kong) or state.kong
    realtime = probed_healthy(api, state.realtime) or state.realtime
    return replace(
        base,
        file=state.file,
        kong=kong,
        realtime=realtime,
        live_text=live_text,
        effective_text=effective,
        effective_source=source,
        effective_note=note,
        mount_sha256=mount_sha,
        running_config=running,
        reloaded=state.file_is_loaded,
        target=target,
        target_error=target_error,
        envoy=envoy,
    )


def _target(host: HostConfig, kong: ContainerState, realtime: ContainerState) -> tuple[KongTarget | None, str]:
    try:
        return kong_target(host, build_profile(kong, realtime)), ""
    except (DeployError, ValueError) as exc:
        return None, str(exc)


def _effective_config(api: Any, host: HostConfig, kong: ContainerState) -> tuple[str | None, str, str]:
    """(text, label, note): ``KONG_DECLARATIVE_CONFIG`` read inside the running container,
    i.e. the file after the entrypoint expanded its ``$VARS``; else None and why."""
    fallback = f"validated {host.kong_config_path} on the host instead"
    path = kong.env.get("KONG_DECLARATIVE_CONFIG")
    if not kong.exists or not kong.running or kong.restarting:
        return None, "", f"{host.kong_container} is not running: {fallback}"
    if not path:
        return None, "", f"KONG_DECLARATIVE_CONFIG is not set in {host.kong_container}: {fallback}"
    try:
        code, output = exec_in_container(api, host.kong_container, ["cat", path])
    except DeployError as exc:
        return None, "", f"cannot read {path} in {host.kong_container} ({exc}): {fallback}"
    if code != 0:
        return None, "", f"cannot read {path} in {host.kong_container} (exit {code}): {fallback}"
    return output, f"{path} in {host.kong_container}", ""


def _mount_sha256(api: Any, host: HostConfig, kong: ContainerState) -> str | None:
    if not kong.running or kong.restarting:
        return None
    try:
        code, output = exec_in_container(api, host.kong_container, ["sha256sum", host.kong_config_mount])
    except DeployError:
        return None
    words = output.split()
    return words[0] if code == 0 and words else None


def doctor_host(host: HostConfig, options: VerifyOptions, out: Output) -> HostResult:
    """``fab doctor`` on one host: gather, decide, print the checklist and the probe."""
    out.line(f"doctor {host.name} ({host.public_url})", host.name)
    facts = gather_facts(host, load_host_secrets(host), options)
    checks = build_checklist(facts)
    out.lines([f"  {row}" for row in checklist_lines(checks)], host.name)
    if facts.verification is not None:
        out.lines([f"  {row}" for row in verification_lines(facts.verification)], host.name)
    failed = [check for check in checks if check.status != OK]
    result = HostResult(host=host.name, verify_state=facts.verification.report.state if facts.verification else None)
    if failed:
        result.status = "failed"
        result.message = f"{len(failed)} check(s) not passed, first: {failed[0].name}: {failed[0].detail}"
    else:
        result.message = f"all {len(checks)} checks passed"
    return result
