"""``verify-realtime`` for inventory hosts or a bare URL: the probe (:mod:`supakong.verify`)
with each kind of key the host has, the Kong and Realtime log lines around a failed attempt,
and the lines, JSON and exit code of the task. Secrets are compared, never printed."""

from __future__ import annotations

import json
import os
import re
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

from invoke import Exit

from . import fence
from .container import inspect_container
from .errors import DeployError, InventoryError, VerifyError
from .fleet import HostAction
from .inventory import HostConfig, check_allowed
from .logs import fetch_interleaved, format_log_lines
from .report import HostResult, Output, recap_lines
from .secrets import Secrets, load_host_secrets, mask, register_secret
from .transport import HostConnection
from .verify import VerifyReport, for_host_report, format_report, verify_realtime
from .verify_keys import probe_keys
from .verify_model import ChannelSpec

VSNS = ("1.0.0", "2.0.0")
_CHANNEL_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}")
_TABLE_RE = re.compile(r"(?:[A-Za-z0-9_]+\.)?[A-Za-z0-9_]+|")


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
