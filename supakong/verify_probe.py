"""Channel stages of the Realtime probe (join, postgres_changes, heartbeat, broadcast), the
negative-key handshake, and `probe()`, which runs every stage in order.

Every expected failure becomes a failed StageResult plus a Diagnosis; nothing here raises
for a refusal, a timeout or a closed socket. Redacting the apikey is the caller's job
(`supakong.verify` scrubs the whole report), so details here may be built freely.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass

import jwt
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from supakong import verify_phoenix as phx
from supakong.errors import DeployError
from supakong.verify_diagnose import (
    ANONYMOUS_CAUSE,
    ANONYMOUS_FIX,
    KONG,
    REALTIME,
    answer_message,
    answer_source,
    diagnose_join_error,
    diagnose_system_error,
    trim_body,
)
from supakong.verify_model import (
    CHANNEL_ERROR,
    CLOSED,
    EVENTS,
    SUBSCRIBED,
    TIMED_OUT,
    Diagnosis,
    ProbeOptions,
    StageLog,
    StageResult,
)
from supakong.verify_transport import (
    Target,
    check_transport,
    handshake_failure,
    open_websocket,
    parse_target,
    refusal,
    stage_upgrade,
)

LEAVE_WAIT_SECONDS = 1.0


def _deadline(seconds: float) -> float:
    return time.monotonic() + seconds


def _closed_text(exc: ConnectionClosed) -> str:
    if exc.rcvd is None:
        return "no close frame"
    return f"close code {exc.rcvd.code}" + (f" {exc.rcvd.reason}" if exc.rcvd.reason else "")


def with_apikey(url: str, apikey: str) -> str:
    """`url` with its apikey query value replaced."""
    return re.sub(r"(apikey=)[^&#]*", lambda m: m.group(1) + apikey, url, count=1)


def invalid_apikey(like: str = "") -> str:
    """A wrong key of the kind of ``like``: a well-formed ``sb_publishable_`` key nobody
    issued for an opaque key, else a syntactically valid anon JWT signed with a random
    secret nobody holds."""
    if like.startswith("sb_"):
        prefix = "sb_secret_" if like.startswith("sb_secret_") else "sb_publishable_"
        return f"{prefix}{secrets.token_urlsafe(17)[:22]}_{secrets.token_urlsafe(6)[:8]}"
    now = int(time.time())
    claims = {"role": "anon", "iss": "supakong-negative-probe", "iat": now, "exp": now + 600}
    return jwt.encode(claims, secrets.token_urlsafe(48), algorithm="HS256")


# --------------------------------------------------------------------------- channel


@dataclass
class _Channel:
    log: StageLog
    session: phx.PhoenixSession
    opts: ProbeOptions
    access_token: str
    join_ref: str = ""
    started: float = 0.0  # when the running stage began, for a stage cut short by a close
    server_bindings: tuple[object, ...] = ()  # the join reply's postgres_changes (with ids)

    @property
    def extra_bindings(self) -> tuple[dict[str, str], ...]:
        return (self.opts.event.binding,) if self.opts.event is not None else ()

    @property
    def topic(self) -> str:
        return self.opts.channel.topic

    def ends_channel(self, message: phx.PhoenixMessage) -> bool:
        return message.topic == self.topic and message.event in (phx.PHX_CLOSE, phx.PHX_ERROR)

    def reply_to(self, ref: str, topic: str | None = None) -> Callable[[phx.PhoenixMessage], bool]:
        wanted_topic = topic or self.topic
        return lambda m: m.event == phx.PHX_REPLY and m.ref == ref and m.topic == wanted_topic


async def stage_join(ch: _Channel) -> str:
    """Stage join: phx_join and its phx_reply. Returns the supabase-js state."""
    started = time.perf_counter()
    timeout = ch.opts.timeout
    payload = phx.join_payload(ch.opts.channel, ch.access_token, ch.extra_bindings)
    ch.join_ref = await ch.session.join(ch.topic, payload)
    is_reply = ch.reply_to(ch.join_ref)
    reply = await ch.session.expect(lambda m: is_reply(m) or ch.ends_channel(m), _deadline(timeout))
    if reply is None:
        ch.log.record(
            "join",
            False,
            started,
            f"no phx_reply within {timeout:g} s",
            Diagnosis(
                f"Realtime accepted the socket but did not answer the join within {timeout:g} s",
                "check the realtime logs (database connection, tenant initialising); retry",
            ),
        )
        return TIMED_OUT
    if reply.event != phx.PHX_REPLY:
        ch.log.record(
            "join",
            False,
            started,
            f"{reply.event} instead of a join reply",
            Diagnosis(f"Realtime answered the join with {reply.event}", "read the realtime container logs"),
        )
        return CLOSED if reply.event == phx.PHX_CLOSE else CHANNEL_ERROR
    if reply.status != "ok":
        reason = str(reply.response.get("reason") or reply.response or "error")
        ch.log.record("join", False, started, f"phx_reply error: {trim_body(reason, 160)}", diagnose_join_error(reason))
        return CHANNEL_ERROR
    sent = phx.sent_bindings(ch.opts.channel) + list(ch.extra_bindings)
    ch.server_bindings = tuple(reply.response.get("postgres_changes") or ())
    if not phx.bindings_match(sent, reply.response):
        theirs = reply.response.get("postgres_changes")
        ch.log.record(
            "join",
            False,
            started,
            f"phx_reply ok but bindings {theirs} != {sent}",
            Diagnosis(
                "mismatch between server and client bindings for postgres changes",
                "check the Realtime version and the probe's binding; supabase-js unsubscribes in this case",
            ),
        )
        return CHANNEL_ERROR
    bound = f", postgres_changes {sent[0]['schema']}.{sent[0]['table']} bound" if sent else ""
    ch.log.record("join", True, started, f"phx_reply ok for {ch.topic}{bound}")
    return SUBSCRIBED


async def stage_postgres_changes(ch: _Channel) -> None:
    """Stage postgres_changes: the `system` message confirming (or refusing) the subscription."""
    started = time.perf_counter()

    def is_system(m: phx.PhoenixMessage) -> bool:
        extension = m.payload.get("extension")
        fatal = extension == "system" and m.payload.get("status") == "error"
        return m.topic == ch.topic and m.event == "system" and (extension == "postgres_changes" or fatal)

    message = await ch.session.expect(is_system, _deadline(ch.opts.timeout))
    if message is None:
        ch.log.record(
            "postgres_changes",
            False,
            started,
            f"no postgres_changes system message within {ch.opts.timeout:g} s",
            Diagnosis(
                "Realtime joined the channel but never confirmed the Postgres "
                "subscription (replication connection stuck?)",
                "check realtime logs (wal_level=logical, replication slots)",
            ),
        )
        return
    text = str(message.payload.get("message", ""))
    if message.payload.get("status") == "ok":
        ch.log.record("postgres_changes", True, started, text or "status ok")
    else:
        ch.log.record("postgres_changes", False, started, f"error: {trim_body(text, 160)}", diagnose_system_error(text))


async def stage_heartbeat(ch: _Channel) -> None:
    started = time.perf_counter()
    ref = await ch.session.push(phx.HEARTBEAT_TOPIC, "heartbeat", {})
    reply = await ch.session.expect(ch.reply_to(ref, phx.HEARTBEAT_TOPIC), _deadline(ch.opts.timeout))
    if reply is not None and reply.status == "ok":
        ch.log.record("heartbeat", True, started, "phx_reply ok on topic phoenix")
        return
    detail = f"phx_reply {reply.status}" if reply else f"no reply within {ch.opts.timeout:g} s"
    ch.log.record(
        "heartbeat",
        False,
        started,
        detail,
        Diagnosis(
            f"Realtime did not acknowledge the Phoenix heartbeat ({detail})",
            "supabase-js would drop and reconnect the socket; read the realtime logs",
        ),
    )


async def stage_broadcast(ch: _Channel) -> None:
    """Stage broadcast: ack (broadcast.ack) and self-echo (broadcast.self) of one message."""
    started = time.perf_counter()
    nonce = secrets.token_hex(8)
    ref = await ch.session.push(ch.topic, "broadcast", phx.broadcast_payload(nonce), ch.join_ref)
    is_ack, deadline = ch.reply_to(ref), _deadline(ch.opts.timeout)
    ack: phx.PhoenixMessage | None = None
    echoed = False
    while ack is None or not echoed:
        message = await ch.session.expect(lambda m: is_ack(m) or phx.is_echo(m, ch.topic, nonce), deadline)
        if message is None:
            break
        if is_ack(message):
            ack = message
            if ack.status != "ok":
                break  # Realtime refused it (e.g. payload_size_exceeded): no echo will come
        else:
            echoed = True
    if ack is not None and ack.status == "ok" and echoed:
        ch.log.record("broadcast", True, started, "ack ok, self-echo received")
        return
    missing = [part for part, seen in (("ack", ack is not None), ("self-echo", echoed)) if not seen]
    detail = (
        f"ack {ack.status}: {ack.response}"
        if ack is not None and ack.status != "ok"
        else ("no " + " and no ".join(missing) + f" within {ch.opts.timeout:g} s")
    )
    ch.log.record(
        "broadcast",
        False,
        started,
        detail,
        Diagnosis(
            f"the probe broadcast was not delivered back ({detail})",
            "read the realtime logs (broadcast rate limits, payload size, pubsub)",
        ),
    )


def _binding_id(ch: _Channel) -> object:
    """The id Realtime gave the event probe's binding (the last one sent)."""
    index = len(phx.sent_bindings(ch.opts.channel))
    server = ch.server_bindings[index] if index < len(ch.server_bindings) else None
    return server.get("id") if isinstance(server, dict) else None


async def stage_event(ch: _Channel) -> None:
    """Stage event (``--event``): write the probe row, wait for its INSERT event, delete it.

    Runs only after "Subscribed to PostgreSQL"; the stage's time is the event's latency
    (from sending the INSERT to receiving the frame)."""
    probe = ch.opts.event
    subscribed = ch.log.stage("postgres_changes")
    if probe is None or subscribed is None:
        return
    if not subscribed.ok:
        # No subscription, no event: name the cause from the probe table's readiness checks
        # (Realtime's system message often only says that Postgres raised an error).
        explained = await asyncio.to_thread(probe.explain)
        if explained is not None and ch.log.diagnosis is not None:
            ch.log.diagnosis = Diagnosis(explained.cause, explained.fix, body=ch.log.diagnosis.body)
        return
    started = time.perf_counter()
    polled, note = await asyncio.to_thread(probe.prepare)
    if not polled:
        # No slot, no event: when the readiness checks say why, nothing needs writing.
        explained = await asyncio.to_thread(probe.explain)
        if explained is not None:
            ch.log.record("event", False, started, f"not written: {note}", explained)
            return
    binding_id = _binding_id(ch)

    def is_event(m: phx.PhoenixMessage) -> bool:
        ids = m.payload.get("ids")
        ours = binding_id is None or (isinstance(ids, list) and binding_id in ids)
        return m.topic == ch.topic and m.event == "postgres_changes" and ours and probe.is_ours(m.payload.get("data"))

    started = time.perf_counter()
    try:
        await asyncio.to_thread(probe.write)
    except DeployError as exc:
        ch.log.record(
            "event",
            False,
            started,
            f"could not insert the probe row: {exc}",
            Diagnosis(f"the probe row could not be written: {exc}", "read the error above (the db container, psql)"),
        )
        return
    written = time.perf_counter() - started
    try:
        message = await ch.session.expect(is_event, _deadline(ch.opts.timeout))
        await _record_event(ch, message, started, written, note)
    finally:
        await asyncio.to_thread(probe.cleanup)


async def _record_event(
    ch: _Channel, message: phx.PhoenixMessage | None, started: float, written: float, note: str
) -> None:
    assert ch.opts.event is not None
    probe = ch.opts.event
    table = f"{probe.schema}.{probe.table}"
    if message is None:
        explained = await asyncio.to_thread(probe.explain)
        detail = f"no INSERT event within {ch.opts.timeout:g} s of the write ({note})"
        ch.log.record("event", False, started, detail, explained or _NO_EVENT_UNEXPLAINED)
        return
    data = message.payload.get("data") or {}
    errors = data.get("errors") if isinstance(data, dict) else None
    if errors:
        elapsed = time.perf_counter() - started
        explained = await asyncio.to_thread(probe.explain)
        cause = f"the INSERT event of {table} arrived with errors {errors} and no record"
        diagnosis = Diagnosis(
            f"{cause}: {explained.cause}" if explained else cause,
            explained.fix if explained else "check the SELECT grant and primary key of the table",
        )
        ch.log.record("event", False, started, f"event with errors {errors} after {elapsed * 1000:.0f} ms", diagnosis)
        return
    latency = (time.perf_counter() - started) * 1000
    ch.log.record(
        "event",
        True,
        started,
        f"INSERT on {table} received {latency:.0f} ms after the write (psql {written * 1000:.0f} ms; {note})",
    )


_NO_EVENT_UNEXPLAINED = Diagnosis(
    "Realtime confirmed the subscription but delivered no event, and every readiness check of the probe table passed",
    "read the realtime logs (`fab logs`) for PoolingReplication errors or rate limits (max_events_per_second)",
)


async def leave_quietly(ch: _Channel) -> None:
    """phx_leave as channel.unsubscribe() does; a missing reply does not matter."""
    with suppress(ConnectionClosed):
        ref = await ch.session.push(ch.topic, phx.PHX_LEAVE, {}, ch.join_ref)
        wait = min(ch.opts.timeout, LEAVE_WAIT_SECONDS)
        await ch.session.expect(ch.reply_to(ref), _deadline(wait))


async def run_channel(log: StageLog, ws: ClientConnection, apikey: str, opts: ProbeOptions) -> str:
    """Stages join .. broadcast on an open socket, then leave and close. Returns the state."""
    ch = _Channel(log, phx.PhoenixSession(ws, opts.vsn), opts, apikey)
    later: list[Callable[[_Channel], Awaitable[None]]] = [stage_heartbeat, stage_broadcast]
    if opts.event is not None:
        later.insert(0, stage_event)
    if opts.channel.has_postgres_changes or opts.event is not None:
        later.insert(0, stage_postgres_changes)
    state = CHANNEL_ERROR
    try:
        ch.started = time.perf_counter()
        state = await stage_join(ch)
        if state == SUBSCRIBED:
            for stage in later:
                ch.started = time.perf_counter()
                await stage(ch)
            await leave_quietly(ch)
            event = log.stage("event")
            if event is not None and event.ok:
                state = EVENTS
    except ConnectionClosed as exc:
        log.record(
            _next_stage(log, opts),
            False,
            ch.started,
            f"socket closed ({_closed_text(exc)})",
            Diagnosis(
                f"the WebSocket was closed by the server ({_closed_text(exc)})",
                "read the kong and realtime logs; supabase-js reports CHANNEL_ERROR",
            ),
        )
        state = CHANNEL_ERROR
    finally:
        await ws.close()
    return state


def _next_stage(log: StageLog, opts: ProbeOptions) -> str:
    order = ["join", "postgres_changes", "event", "heartbeat", "broadcast"]
    if opts.event is None:
        order.remove("event")
    if not opts.channel.has_postgres_changes and opts.event is None:
        order.remove("postgres_changes")
    done = {stage.name for stage in log.stages}
    return next((name for name in order if name not in done), "broadcast")


# --------------------------------------------------------------------------- negative key


async def _join_outcome(ws: ClientConnection, apikey: str, opts: ProbeOptions) -> str:
    """Join with `apikey` on an accepted socket: "ok", "error: <reason>" or what happened."""
    session = phx.PhoenixSession(ws, opts.vsn)
    topic = opts.channel.topic
    try:
        ref = await session.join(topic, phx.join_payload(opts.channel, apikey))
        reply = await session.expect(
            lambda m: m.event == phx.PHX_REPLY and m.ref == ref and m.topic == topic, _deadline(opts.timeout)
        )
    except ConnectionClosed as exc:
        return f"socket closed, {_closed_text(exc)}"
    finally:
        await ws.close()
    if reply is None:
        return "no reply"
    return "ok" if reply.status == "ok" else f"error: {reply.response.get('reason', '')}"


async def stage_negative_key(log: StageLog, target: Target, opts: ProbeOptions, like: str = "") -> None:
    """Stage negative_key: a handshake with a wrong apikey must be refused by Kong itself.

    A refusal by Realtime behind Kong (or a 101) means key-auth let the bad key through,
    which is what `anonymous:` on key-auth does. The wrong key is of the kind of ``like``.
    """
    started = time.perf_counter()
    bad_key = invalid_apikey(like)
    try:
        ws = await open_websocket(with_apikey(target.url, bad_key), target, opts)
    except InvalidStatus as exc:
        status, body, detail, diagnosis = refusal(exc)
        source = answer_source(status, body, exc.response.headers)
        said = f"{status} {answer_message(body)}".strip()
        if source == REALTIME:
            detail = f"passed by Kong, refused by Realtime: {said}"
            log.record(
                "negative_key",
                False,
                started,
                detail,
                Diagnosis(ANONYMOUS_CAUSE + " (only Realtime refused it)", ANONYMOUS_FIX, status, diagnosis.body),
            )
        elif status in (401, 403):
            by = " by Kong" if source == KONG else ""
            log.record("negative_key", True, started, f"refused{by} with {said}")
        else:
            log.record("negative_key", False, started, f"inconclusive: {detail}", diagnosis)
        return
    except (OSError, TimeoutError, InvalidHandshake) as exc:
        _, detail, diagnosis = handshake_failure(exc, opts.timeout)
        log.record("negative_key", False, started, f"inconclusive: {detail}", diagnosis)
        return
    outcome = await _join_outcome(ws, bad_key, opts)
    detail = (
        "101 and join ok with an invalid apikey" if outcome == "ok" else f"101 with an invalid apikey (join: {outcome})"
    )
    log.record("negative_key", False, started, detail, Diagnosis(ANONYMOUS_CAUSE, ANONYMOUS_FIX))


# --------------------------------------------------------------------------- all stages


async def probe(url: str, apikey: str, opts: ProbeOptions) -> tuple[str, tuple[StageResult, ...], Diagnosis | None]:
    """Run every stage against `url`; returns (state, stages, first diagnosis)."""
    log = StageLog()
    target = parse_target(url)
    state = await check_transport(log, target, opts)
    if state is None:
        opened = await stage_upgrade(log, target, opts)
        if isinstance(opened, str):
            state = opened
        else:
            state = await run_channel(log, opened, apikey, opts)
            if opts.negative_probe:
                await stage_negative_key(log, target, opts, like=apikey)
    return state, tuple(log.stages), log.diagnosis
