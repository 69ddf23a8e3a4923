"""The Phoenix wire format as Realtime speaks it: V1 JSON objects, V2 JSON arrays and the V2
binary broadcast frames, plus the small value helpers the channel code shares."""

from __future__ import annotations

import json
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

SERIALIZERS = {"1": "Phoenix.Socket.V1.JSONSerializer", "2": "RealtimeWeb.Socket.V2Serializer"}
# Realtime V2 binary frames (realtime-js serializer.ts): client push = 3, server broadcast = 4.
USER_BROADCAST_PUSH, USER_BROADCAST = 3, 4
JSON_ENCODING = 1


@dataclass(frozen=True)
class Message:
    """One Phoenix message, whatever the serializer."""

    topic: str
    event: str
    payload: Any
    ref: str | None = None
    join_ref: str | None = None


@dataclass(frozen=True)
class Broadcast:
    """A broadcast on its way to subscribers.

    Either ``payload`` (a JSON push: ``{"type": "broadcast", "event", "payload"}``), or a V2
    binary "user broadcast push" kept as ``user_event`` + ``encoding`` + raw ``data``.
    """

    payload: Any = None
    user_event: str = ""
    encoding: int = JSON_ENCODING
    data: bytes = b""


def decode_text_frame(vsn: str, text: str) -> Message:
    """Parse a client text frame: JSON object (V1) or ``[join_ref, ref, topic, event, payload]``."""
    raw = json.loads(text)
    if vsn == "2":
        join_ref, ref, topic, event, payload = raw
        message = Message(topic, event, payload, ref, join_ref)
    else:
        message = Message(raw["topic"], raw["event"], raw.get("payload", {}), raw.get("ref"), raw.get("join_ref"))
    if not isinstance(message.topic, str) or not isinstance(message.event, str):
        raise ValueError("topic and event must be strings")
    return message


def encode_message(vsn: str, message: Message) -> str:
    """Serialize a server message. V1 never carries ``join_ref`` (Phoenix's V1 serializer)."""
    if vsn == "2":
        fields = [message.join_ref, message.ref, message.topic, message.event, message.payload]
        return json.dumps(fields, separators=(",", ":"))
    obj = {
        "topic": message.topic,
        "event": message.event,
        "payload": message.payload,
        "ref": message.ref,
    }
    return json.dumps(obj, separators=(",", ":"))


def decode_user_broadcast_push(frame: bytes) -> tuple[Message, Broadcast]:
    """Parse realtime-js's binary broadcast push (kind 3) into its envelope and its broadcast."""
    kind, join_ref_len, ref_len, topic_len, event_len, meta_len, encoding = frame[:7]
    if kind != USER_BROADCAST_PUSH:
        raise ValueError(f"unsupported binary frame kind {kind}")
    parts, offset = [], 7
    for length in (join_ref_len, ref_len, topic_len, event_len, meta_len):
        parts.append(frame[offset : offset + length].decode())
        offset += length
    join_ref, ref, topic, user_event, _meta = parts  # Realtime ignores the metadata too
    envelope = Message(topic, "broadcast", None, ref or None, join_ref or None)
    return envelope, Broadcast(user_event=user_event, encoding=encoding, data=frame[offset:])


def encode_user_broadcast(topic: str, broadcast: Broadcast) -> bytes:
    """Build the binary broadcast (kind 4) that Realtime sends to V2 subscribers."""
    topic_bytes, event_bytes = topic.encode(), broadcast.user_event.encode()
    header = bytes([USER_BROADCAST, len(topic_bytes), len(event_bytes), 0, broadcast.encoding])
    return header + topic_bytes + event_bytes + broadcast.data


def binding_id(binding: Mapping[str, Any]) -> int:
    """A stable id per postgres_changes binding (Realtime uses phash2, range 0..2**27-1)."""
    canonical = json.dumps(binding, sort_keys=True, separators=(",", ":"))
    return zlib.crc32(canonical.encode()) & (2**27 - 1)


def elixir_inspect(params: Mapping[str, Any]) -> str:
    """Render a flat map as Elixir's ``inspect`` does, e.g. ``%{"schema" => "public"}``."""
    pairs = ", ".join(f"{json.dumps(k)} => {json.dumps(v)}" for k, v in sorted(params.items()))
    return "%{" + pairs + "}"


def as_dict(value: object) -> dict[str, Any]:
    """``value`` if it is a JSON object, else ``{}``: clients may send anything."""
    return value if isinstance(value, dict) else {}


def redact_join_payload(payload: Mapping[str, Any]) -> str:
    """The join parameters for the log, without the token (Realtime redacts it too)."""
    shown = {k: ("<redacted>" if k in ("access_token", "user_token") else v) for k, v in payload.items()}
    return json.dumps(shown, sort_keys=True)
