"""Held sockets: what a change run does to the Realtime connections users hold through Kong.

Before each change run, one WebSocket per host is opened through its Kong to Realtime, as a
browser's supabase-js would (``/realtime/v1/websocket?apikey=…&vsn=1.0.0``), and joined to a
broadcast-only channel (no postgres_changes: no database work). After the run each socket
is asked for a Phoenix heartbeat reply: a socket that was closed, or that does not answer
within the deadline, was dropped by the run. A restart drops every socket of the host; a
config loaded into the running Kong (``POST /config``) should drop none.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from websockets.exceptions import WebSocketException
from websockets.sync.client import ClientConnection, connect

TOPIC = "realtime:bench-held"
ANSWER_TIMEOUT = 10.0


@dataclass
class HeldSockets:
    """The sockets held for one run, by host; ``refused``: hosts whose socket did not open
    or join (not counted as held, so not as dropped either), with why."""

    sockets: dict[str, ClientConnection] = field(default_factory=dict)
    refused: dict[str, str] = field(default_factory=dict)

    def close(self) -> None:
        for ws in self.sockets.values():
            ws.close()


def socket_url(public_url: str, apikey: str) -> str:
    """The WebSocket URL supabase-js opens for ``public_url`` (``http://host:8000``)."""
    scheme, _, rest = public_url.partition("://")
    return f"{'wss' if scheme == 'https' else 'ws'}://{rest.rstrip('/')}/realtime/v1/websocket?apikey={apikey}&vsn=1.0.0"


def message(topic: str, event: str, payload: Mapping[str, object], ref: str) -> str:
    """One Phoenix V1 (JSON object) frame."""
    return json.dumps({"topic": topic, "event": event, "payload": payload, "ref": ref, "join_ref": ref})


def answered(ws: ClientConnection, ref: str, deadline: float) -> bool:
    """Until the phx_reply ``ref`` with status ok arrives (other frames are skipped)."""
    while (left := deadline - time.monotonic()) > 0:
        frame = ws.recv(timeout=left)
        if isinstance(frame, bytes):
            continue
        reply = json.loads(frame)
        if reply.get("event") == "phx_reply" and reply.get("ref") == ref:
            return bool(reply.get("payload", {}).get("status") == "ok")
    return False


def open_one(url: str, apikey: str) -> ClientConnection:
    """A socket through Kong, joined to :data:`TOPIC`; raises when it cannot."""
    ws = connect(url, open_timeout=ANSWER_TIMEOUT, ping_interval=None, close_timeout=1)
    payload = {"config": {"broadcast": {"self": False}, "presence": {"key": ""}, "postgres_changes": []}}
    ws.send(message(TOPIC, "phx_join", {**payload, "access_token": apikey}, "1"))
    if not answered(ws, "1", time.monotonic() + ANSWER_TIMEOUT):
        ws.close()
        raise ConnectionError("the join was not answered ok")
    return ws


def hold(targets: Mapping[str, tuple[str, str]], workers: int = 10) -> HeldSockets:
    """Open and join one socket per host (``targets``: host → (public URL, anon key))."""
    held = HeldSockets()

    def one(item: tuple[str, tuple[str, str]]) -> None:
        name, (public_url, apikey) = item
        try:
            held.sockets[name] = open_one(socket_url(public_url, apikey), apikey)
        except (OSError, WebSocketException, ValueError, TimeoutError) as exc:
            held.refused[name] = f"{type(exc).__name__}: {exc}"[:200]

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(one, targets.items()))
    return held


def dropped(held: HeldSockets) -> list[str]:
    """The hosts whose held socket no longer answers a heartbeat (closed or silent)."""
    lost = []
    for name, ws in held.sockets.items():
        try:
            ws.send(message("phoenix", "heartbeat", {}, "hb"))
            if not answered(ws, "hb", time.monotonic() + ANSWER_TIMEOUT):
                lost.append(name)
        except (OSError, WebSocketException, ValueError, TimeoutError):
            lost.append(name)
    return lost
