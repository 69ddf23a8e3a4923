"""Values of the Realtime verification: what was probed and what came back.

Kept apart from the probe so that the pure diagnosis tables, the Phoenix codec and the
probe itself can all use them without importing each other. `supakong.verify` re-exports
everything here; import from there.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# supabase-js channel states (RealtimeChannel.subscribe callback).
SUBSCRIBED = "SUBSCRIBED"
CHANNEL_ERROR = "CHANNEL_ERROR"
TIMED_OUT = "TIMED_OUT"
CLOSED = "CLOSED"
#: Beyond SUBSCRIBED: a row written in the database came back as a postgres_changes event.
EVENTS = "EVENTS"

STAGE_NAMES = (
    "tcp",
    "tls",
    "upgrade",
    "join",
    "postgres_changes",
    "heartbeat",
    "broadcast",
    "event",
    "negative_key",
)


@dataclass(frozen=True)
class ChannelSpec:
    """The channel the probe joins, with at most one postgres_changes binding.

    The topic is `realtime:<name>`; `table=""` means no postgres_changes binding (then the
    `postgres_changes` stage is skipped).
    """

    name: str = "supakong-probe"
    schema: str = "public"
    table: str = "wells"
    event: str = "*"

    @classmethod
    def named(cls, name: str, table: str) -> ChannelSpec:
        """The channel ``name`` bound to ``table``: ``schema.table``, a bare ``table``
        (schema public) or empty (no postgres_changes binding)."""
        schema, _, bare = table.rpartition(".")
        return cls(name=name, schema=schema or "public", table=bare)

    @property
    def topic(self) -> str:
        return f"realtime:{self.name}"

    @property
    def has_postgres_changes(self) -> bool:
        return bool(self.table)


@dataclass(frozen=True)
class StageResult:
    """One timed step of the probe (`name` is one of STAGE_NAMES)."""

    name: str
    ok: bool
    seconds: float
    detail: str


@dataclass(frozen=True)
class Diagnosis:
    """The likely cause of a failure and what to do about it (one line each)."""

    cause: str
    fix: str
    status: int | None = None
    body: str = ""


@dataclass(frozen=True)
class VerifyReport:
    """Everything the probe saw. `url` never carries the apikey (it reads `apikey=***`)."""

    url: str
    state: str
    stages: tuple[StageResult, ...]
    diagnosis: Diagnosis | None

    @property
    def ok(self) -> bool:
        """True when the channel is SUBSCRIBED (or got its EVENTS) and every stage that ran passed."""
        return self.state in (SUBSCRIBED, EVENTS) and all(stage.ok for stage in self.stages)

    @property
    def failed_stages(self) -> tuple[StageResult, ...]:
        return tuple(stage for stage in self.stages if not stage.ok)

    def stage(self, name: str) -> StageResult | None:
        """The result of the stage called `name`, or None if it did not run."""
        return next((stage for stage in self.stages if stage.name == name), None)


@dataclass(frozen=True)
class EventProbe:
    """``verify-realtime --event``: a binding on the probe table filtered on ``nonce``, and
    the host-side steps (blocking; the probe runs them in a thread): wait until Realtime
    polls, write the row, remove it, and name why no event came."""

    schema: str
    table: str
    nonce: str
    prepare: Callable[[], tuple[bool, str]]  # (Realtime polls, a note for the stage line)
    write: Callable[[], None]
    cleanup: Callable[[], None]
    explain: Callable[[], Diagnosis | None]

    @property
    def binding(self) -> dict[str, str]:
        """What realtime-js sends for ``.on('postgres_changes', {event: 'INSERT', …, filter})``."""
        return {"event": "INSERT", "schema": self.schema, "table": self.table, "filter": f"nonce=eq.{self.nonce}"}

    def is_ours(self, data: Any) -> bool:
        """A change of our row (or an error event of our table, which carries no record)."""
        if not isinstance(data, dict) or (data.get("schema"), data.get("table")) != (self.schema, self.table):
            return False
        record = data.get("record")
        return bool(data.get("errors")) or (isinstance(record, dict) and record.get("nonce") == self.nonce)


@dataclass(frozen=True)
class ProbeOptions:
    """How to probe: the channel, serializer version, per-wait timeout, TLS context."""

    channel: ChannelSpec
    vsn: str
    timeout: float
    negative_probe: bool
    ssl_context: ssl.SSLContext | None
    origin: str | None = None
    event: EventProbe | None = None


@dataclass
class StageLog:
    """Stages recorded so far while probing; the first failure's diagnosis is the report's."""

    stages: list[StageResult] = field(default_factory=list)
    diagnosis: Diagnosis | None = None

    def stage(self, name: str) -> StageResult | None:
        """The stage called ``name`` recorded so far, if any."""
        return next((stage for stage in self.stages if stage.name == name), None)

    def record(self, name: str, ok: bool, started: float, detail: str, diagnosis: Diagnosis | None = None) -> None:
        """Append a stage that began at `started` (time.perf_counter) and ends now."""
        self.stages.append(StageResult(name, ok, time.perf_counter() - started, detail))
        if not ok and diagnosis is not None and self.diagnosis is None:
            self.diagnosis = diagnosis
