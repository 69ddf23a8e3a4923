"""Prove the browser's path to Supabase Realtime through Kong, the way supabase-js walks it.

`verify_realtime(public_url, anon_key)` opens `ws(s)://<public>/realtime/v1/websocket?
apikey=…&vsn=2.0.0`, joins `realtime:<name>` with one postgres_changes binding, waits for the
Postgres subscription, heartbeats, broadcasts to itself, leaves, and finally checks that Kong
refuses a wrong apikey. Each stage is timed; a failure comes back as a report whose
`diagnosis` names the likely cause and the fix. Expected failures never raise.

This is what `fab verify-realtime` and the end of `fab deploy-kong` call; `raise_if_failed`
turns a failed report into a VerifyError for the deploy's rollback.

The parts: `verify_model` (values), `verify_diagnose` (pure tables), `verify_phoenix` (wire
format), `verify_probe` (the stages). Everything public is re-exported here.
"""

from __future__ import annotations

import asyncio
import dataclasses
import ssl
from typing import TYPE_CHECKING
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

from websockets.exceptions import WebSocketException

from supakong.errors import VerifyError
from supakong.secrets import mask, register_secret
from supakong.verify_diagnose import (
    HostHints,
    diagnose_handshake,
    diagnose_join_error,
    diagnose_system_error,
    for_host,
)
from supakong.verify_keys import for_key
from supakong.verify_model import (
    CHANNEL_ERROR,
    CLOSED,
    EVENTS,
    SUBSCRIBED,
    TIMED_OUT,
    ChannelSpec,
    Diagnosis,
    EventProbe,
    ProbeOptions,
    StageResult,
    VerifyReport,
)
from supakong.verify_probe import probe

if TYPE_CHECKING:
    from supakong.inventory import HostConfig

__all__ = [
    "CHANNEL_ERROR",
    "CLOSED",
    "EVENTS",
    "SUBSCRIBED",
    "TIMED_OUT",
    "ChannelSpec",
    "Diagnosis",
    "EventProbe",
    "StageResult",
    "VerifyReport",
    "diagnose_handshake",
    "diagnose_join_error",
    "diagnose_system_error",
    "for_host_report",
    "format_report",
    "host_hints",
    "raise_if_failed",
    "realtime_websocket_url",
    "verify_realtime",
    "verify_realtime_async",
]

REALTIME_WEBSOCKET_PATH = "/realtime/v1/websocket"
_SCHEMES = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}


def _redact(text: str, secret: str) -> str:
    """`text` through the project-wide :func:`supakong.secrets.mask`, after registering the
    apikey (raw and percent-encoded) so it is hidden wherever it appears."""
    if secret:
        register_secret(secret)
        register_secret(quote(secret, safe=""))
    return mask(text)


def _redact_report(report: VerifyReport, secret: str) -> VerifyReport:
    """The same report with the secret scrubbed from every string it holds."""
    stages = tuple(dataclasses.replace(stage, detail=_redact(stage.detail, secret)) for stage in report.stages)
    diagnosis = report.diagnosis
    if diagnosis is not None:
        diagnosis = dataclasses.replace(
            diagnosis,
            cause=_redact(diagnosis.cause, secret),
            fix=_redact(diagnosis.fix, secret),
            body=_redact(diagnosis.body, secret),
        )
    return VerifyReport(_redact(report.url, secret), report.state, stages, diagnosis)


def realtime_websocket_url(public_url: str, apikey: str, vsn: str = "2.0.0") -> str:
    """The URL supabase-js opens for `public_url` (SUPABASE_URL), keeping any path prefix.

    "http://h:8000" -> "ws://h:8000/realtime/v1/websocket?apikey=<key>&vsn=2.0.0".
    """
    parts = urlsplit(public_url.strip())
    scheme = _SCHEMES.get(parts.scheme.lower())
    if scheme is None or not parts.hostname:
        raise VerifyError(f"public URL must look like http(s)://host[:port][/prefix], got {public_url!r}")
    path = parts.path.rstrip("/") + REALTIME_WEBSOCKET_PATH
    query = urlencode({"apikey": apikey, "vsn": vsn}, quote_via=quote)
    return urlunsplit((scheme, parts.netloc, path, query, ""))


def _ssl_context(url: str, ca_file: str | None) -> ssl.SSLContext | None:
    """System CAs (or `ca_file`), hostname checked; verification is never turned off."""
    if not url.startswith("wss:"):
        return None
    try:
        return ssl.create_default_context(cafile=ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise VerifyError(f"cannot load the CA file {ca_file}: {exc}") from None


async def verify_realtime_async(
    public_url: str,
    apikey: str,
    *,
    channel: ChannelSpec = ChannelSpec(),  # noqa: B008  # frozen, so a shared default is safe
    vsn: str = "2.0.0",
    timeout: float = 10.0,
    negative_probe: bool = True,
    ca_file: str | None = None,
    origin: str | None = None,
    event: EventProbe | None = None,
) -> VerifyReport:
    """Probe Realtime through Kong stage by stage; see the module docstring. With ``event``
    (``verify-realtime --event``) the channel also binds the probe table and the ``event``
    stage writes a row and waits for its INSERT event (state EVENTS when it comes).

    `timeout` bounds each wait (connect, handshake, join reply, system message, heartbeat,
    broadcast), as supabase-js's channel timeout does. `origin` is sent as the `Origin`
    header (a browser always sends one; Kong and Realtime ignore it by default).
    Raises VerifyError only for a malformed `public_url` or an unreadable `ca_file`.
    """
    url = realtime_websocket_url(public_url, apikey, vsn)
    opts = ProbeOptions(channel, vsn, timeout, negative_probe, _ssl_context(url, ca_file), origin, event)
    try:
        state, stages, diagnosis = await probe(url, apikey, opts)
    except (OSError, ValueError, WebSocketException) as exc:
        # Unexpected at this point (the stages catch what they expect), but never let the
        # key escape in a message.
        raise VerifyError(_redact(f"the Realtime probe failed: {exc}", apikey)) from None
    diagnosis = for_key(diagnosis, apikey)
    return _redact_report(VerifyReport(url, state, stages, diagnosis), apikey)


def verify_realtime(
    public_url: str,
    apikey: str,
    *,
    channel: ChannelSpec = ChannelSpec(),  # noqa: B008
    vsn: str = "2.0.0",
    timeout: float = 10.0,
    negative_probe: bool = True,
    ca_file: str | None = None,
    origin: str | None = None,
    event: EventProbe | None = None,
) -> VerifyReport:
    """Synchronous `verify_realtime_async` (runs its own event loop)."""
    return asyncio.run(
        verify_realtime_async(
            public_url,
            apikey,
            channel=channel,
            vsn=vsn,
            timeout=timeout,
            negative_probe=negative_probe,
            ca_file=ca_file,
            origin=origin,
            event=event,
        )
    )


def format_report(report: VerifyReport) -> list[str]:
    """Lines for humans: one per stage (✓/✗, ms, detail), the state, then cause and fix."""
    lines = [f"realtime  {report.url}"]
    for stage in report.stages:
        mark = "✓" if stage.ok else "✗"
        lines.append(f"  {mark} {stage.name:<16} {stage.seconds * 1000:5.0f} ms  {stage.detail}")
    failed = ", ".join(stage.name for stage in report.failed_stages)
    if report.ok:
        lines.append(report.state)
    elif report.state in (SUBSCRIBED, EVENTS):
        lines.append(f"{report.state}, but failed: {failed}")
    else:
        lines.append(report.state)
    diagnosis = report.diagnosis
    if diagnosis is not None and not report.ok:
        lines.append(f"  cause: {diagnosis.cause}")
        lines.append(f"  fix:   {diagnosis.fix}")
        if diagnosis.status is not None or diagnosis.body:
            status = f"HTTP {diagnosis.status}  " if diagnosis.status is not None else ""
            lines.append(f"  got:   {status}{diagnosis.body}".rstrip())
    return lines


def host_hints(host: HostConfig) -> HostHints:
    """What a fix names on ``host``: its realtime upstream, tenant and containers."""
    tenant = host.realtime_tenant or "realtime-dev"
    source = "realtime_tenant in the inventory" if host.realtime_tenant else "Realtime's default"
    return HostHints(
        host.name, host.realtime_upstream_host, tenant, source, host.kong_container, host.realtime_container
    )


def for_host_report(report: VerifyReport, host: HostConfig) -> VerifyReport:
    """``report`` whose diagnosis names ``host``'s own values (see :func:`for_host`)."""
    diagnosis = for_host(report.diagnosis, host_hints(host))
    return report if diagnosis is report.diagnosis else dataclasses.replace(report, diagnosis=diagnosis)


def raise_if_failed(report: VerifyReport) -> None:
    """Raise VerifyError (message = the formatted report) unless the report is ok."""
    if not report.ok:
        raise VerifyError("\n".join(format_report(report)))
