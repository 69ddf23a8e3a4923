"""The Realtime stand-in behaves like Realtime v2.129 on the wire.

Each test talks to a real stand-in process on 127.0.0.1 with real HTTP requests and
WebSocket frames. The last tests run the official Python and JavaScript clients against it.
"""

from __future__ import annotations

import asyncio
import functools
import http.client
import importlib.util
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import pytest
from ports import free_port
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from supakong.sandbox.api_keys import make_api_keys

REPO = Path(__file__).resolve().parents[2]
STANDIN = REPO / "supakong" / "sandbox" / "standins" / "realtime_standin.py"
JS_DIR = Path(__file__).resolve().parent / "js"
SECRET = "super-secret-jwt-token-with-at-least-32-characters-long"
WRONG_SECRET = "another-secret-that-signed-nothing-we-trust-xx"
KONG_HOST = "realtime-dev.supabase-realtime"  # the Host Kong sends with preserve_host: false


def make_token(secret: str = SECRET, *, expires_in: int = 86400, **claims: Any) -> str:
    """An anon-style JWT (valid a day: module-level tokens are minted at collection, and a
    slow suite may reach them much later); pass role=None to leave the role out."""
    body = {"role": "anon", "exp": int(time.time()) + expires_in, **claims}
    return jwt.encode({k: v for k, v in body.items() if v is not None}, secret, algorithm="HS256")


@dataclass
class Standin:
    """A running stand-in process and where its log goes."""

    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text()

    def wait_for_log(self, pattern: str, timeout: float = 3.0) -> str:
        """The first log line matching ``pattern``; after the deadline, fail showing the log."""
        deadline = time.monotonic() + timeout
        while True:
            for line in self.log().splitlines():
                if re.search(pattern, line):
                    return line
            if time.monotonic() > deadline:
                pytest.fail(f"no log line matches {pattern!r}; log was:\n{self.log()}")
            time.sleep(0.02)


def start_standin(tmp_path: Path, **env: str) -> Standin:
    """Start the stand-in on a free port and wait (with a deadline) until it accepts connections."""
    port = free_port()
    log_path = tmp_path / f"realtime-{port}.log"
    full_env = {
        "PATH": os.environ.get("PATH", ""),
        "API_JWT_SECRET": SECRET,
        "HOST": "127.0.0.1",
        "PORT": str(port),
    }
    full_env.update(env)
    with log_path.open("wb") as log_file:
        process = subprocess.Popen([sys.executable, str(STANDIN)], env=full_env, stdout=log_file, stderr=log_file)
    deadline, delay = time.monotonic() + 10, 0.02
    while True:
        if process.poll() is not None:
            pytest.fail(f"stand-in exited with {process.returncode}:\n{log_path.read_text()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return Standin(process, port, log_path)
        except OSError:
            if time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"stand-in did not listen on {port} within 10 s:\n{log_path.read_text()}")
            time.sleep(delay)
            delay = min(delay * 2, 0.2)


def stop_standin(standin: Standin) -> int:
    standin.process.send_signal(signal.SIGTERM)
    return standin.process.wait(timeout=5)


@pytest.fixture(scope="module")
def standin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Standin]:
    running = start_standin(tmp_path_factory.mktemp("realtime"))
    yield running
    stop_standin(running)


@pytest.fixture(scope="module")
def direct_standin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Standin]:
    """Tenant ``127``: official clients connect to ws://127.0.0.1, whose first label is ``127``."""
    running = start_standin(tmp_path_factory.mktemp("realtime-direct"), SELF_HOST_TENANT_NAME="127")
    yield running
    stop_standin(running)


# --- helpers -------------------------------------------------------------------------------


def http_get(port: int, path: str, host: str = KONG_HOST, **headers: str) -> tuple[int, bytes]:
    """A plain HTTP GET with a chosen Host header (http.client keeps an explicit Host)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path, headers={"Host": host, **headers})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


@asynccontextmanager
async def open_socket(port: int, query: str, host: str = KONG_HOST, **headers: str) -> AsyncIterator[ClientConnection]:
    """Open /socket/websocket with Host ``host``: the URI names the host, ``sock`` is 127.0.0.1."""
    sock = socket.create_connection(("127.0.0.1", port))
    uri = f"ws://{host}:{port}/socket/websocket?{query}"
    async with connect(uri, sock=sock, additional_headers=headers or None, open_timeout=5) as ws:
        yield ws


async def rejection(port: int, query: str, host: str = KONG_HOST, **headers: str) -> tuple[int, bytes]:
    """The status and body of a handshake the server must refuse."""
    with pytest.raises(InvalidStatus) as refused:
        async with open_socket(port, query, host, **headers):
            pass
    return refused.value.response.status_code, bytes(refused.value.response.body)


class Phoenix:
    """A minimal Phoenix channel client that keeps the raw frames for format checks."""

    def __init__(self, ws: ClientConnection, vsn: str = "1.0.0") -> None:
        self.ws, self.vsn, self.ref = ws, vsn, 0

    async def send(self, topic: str, event: str, payload: Any, join_ref: str | None = None) -> str:
        self.ref += 1
        ref = str(self.ref)
        if self.vsn == "2.0.0":
            await self.ws.send(json.dumps([join_ref, ref, topic, event, payload]))
        else:
            await self.ws.send(json.dumps({"topic": topic, "event": event, "payload": payload, "ref": ref}))
        return ref

    async def recv(self) -> tuple[dict[str, Any], Any]:
        """Next message as ``{join_ref, ref, topic, event, payload}`` plus the decoded raw frame."""
        raw = json.loads(await asyncio.wait_for(self.ws.recv(), 3))
        if isinstance(raw, list):
            return dict(zip(["join_ref", "ref", "topic", "event", "payload"], raw, strict=True)), raw
        return {"join_ref": raw.get("join_ref"), **raw}, raw

    async def join(self, name: str, config: dict[str, Any] | None = None, **payload: Any) -> dict[str, Any]:
        ref = await self.send(f"realtime:{name}", "phx_join", {"config": config or {}, **payload}, join_ref="1")
        message, _ = await self.recv()
        assert (message["event"], message["ref"]) == ("phx_reply", ref)
        return message


def run(coro: Any) -> Any:
    return asyncio.run(coro)


AUTH = f"apikey={make_token()}"


# --- HTTP endpoints ------------------------------------------------------------------------


def test_healthcheck_answers_ok_without_auth(standin: Standin) -> None:
    assert http_get(standin.port, "/healthcheck") == (200, b"ok")


def test_tenant_health_needs_a_bearer_token_signed_with_the_api_secret(standin: Standin) -> None:
    status, body = http_get(standin.port, "/api/tenants/realtime-dev/health", Authorization=f"Bearer {make_token()}")
    assert status == 200
    assert json.loads(body)["data"]["healthy"] is True
    assert http_get(standin.port, "/api/tenants/realtime-dev/health")[0] == 403
    wrong = f"Bearer {make_token(WRONG_SECRET)}"
    assert http_get(standin.port, "/api/tenants/realtime-dev/health", Authorization=wrong)[0] == 403


def test_tenant_health_of_an_unknown_tenant_is_404(standin: Standin) -> None:
    status, _ = http_get(standin.port, "/api/tenants/other/health", Authorization=f"Bearer {make_token()}")
    assert status == 404


def test_ping_and_unknown_paths(standin: Standin) -> None:
    assert http_get(standin.port, "/api/ping") == (200, b'{"message":"Success"}')
    assert http_get(standin.port, "/nothing/here")[0] == 404


def test_non_get_on_the_socket_path_is_400_like_phoenix(standin: Standin) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", standin.port, timeout=5)
    conn.request("POST", "/socket/websocket", body=b"{}", headers={"Host": KONG_HOST})
    assert conn.getresponse().status == 400
    conn.close()


# --- handshake -----------------------------------------------------------------------------


def test_kong_host_selects_the_tenant_and_upgrades(standin: Standin) -> None:
    async def scenario() -> None:
        async with open_socket(standin.port, AUTH) as ws:
            assert ws.response is not None and ws.response.status_code == 101

    run(scenario())
    standin.wait_for_log(r"project=realtime-dev external_id=realtime-dev \[info\] CONNECTED TO")


def test_unknown_tenant_is_404_json_and_logged(standin: Standin) -> None:
    # What preserve_host: true does: the client-facing host reaches Realtime.
    status, body = run(rejection(standin.port, AUTH, host="api.example.com"))
    assert (status, json.loads(body)) == (404, {"error": "Tenant not found"})
    standin.wait_for_log(
        r"^\d\d:\d\d:\d\d\.\d{3} project=api external_id=api "
        r"\[error\] TenantNotFound: Tenant not found: api$"
    )


@pytest.mark.parametrize(
    ("query", "code", "error"),
    [
        ("vsn=1.0.0", "MissingAPIKey", "API key is missing"),
        ("apikey=not-a-jwt", "MalformedJWT", "The token provided is not a valid JWT"),
        (
            f"apikey={make_token(WRONG_SECRET)}",
            "JwtSignatureError",
            "Failed to validate JWT signature",
        ),
        (f"apikey={make_token(expires_in=-30)}", "InvalidJWTToken", "Token has expired"),
        (
            f"apikey={make_token(role=None)}",
            "InvalidJWTToken",
            "Fields `role` and `exp` are required in JWT",
        ),
    ],
)
def test_bad_tokens_are_401_json(standin: Standin, query: str, code: str, error: str) -> None:
    status, body = run(rejection(standin.port, query))
    assert (status, json.loads(body)) == (401, {"error": error})
    standin.wait_for_log(rf"\[error\] {code}: ")


def test_x_api_key_header_wins_over_the_query_param(standin: Standin) -> None:
    status, body = run(rejection(standin.port, AUTH, **{"x-api-key": "garbage"}))
    assert (status, json.loads(body)["error"]) == (401, "The token provided is not a valid JWT")


def test_plain_get_on_the_socket_path_is_400_after_auth(standin: Standin) -> None:
    status, body = http_get(standin.port, f"/socket/websocket?{AUTH}")
    assert status == 400
    assert body == b"'upgrade' header must contain 'websocket', got []"


def test_unknown_vsn_is_refused_with_403(standin: Standin) -> None:
    status, body = run(rejection(standin.port, f"{AUTH}&vsn=3.0.0"))
    assert (status, body) == (403, b"")


def test_realtime_before_2_116_answers_403_with_an_empty_body(tmp_path: Path) -> None:
    old = start_standin(tmp_path, REALTIME_VERSION="v2.33.70")
    try:
        assert run(rejection(old.port, AUTH, host="api.example.com")) == (403, b"")
        assert run(rejection(old.port, "apikey=nope")) == (403, b"")
        old.wait_for_log(r"\[error\] TenantNotFound: Tenant not found: api")
    finally:
        stop_standin(old)


# --- channel protocol ----------------------------------------------------------------------

WELLS = {"event": "*", "schema": "public", "table": "wells"}


def test_v1_frames_are_objects_without_join_ref(standin: Standin) -> None:
    async def scenario() -> None:
        async with open_socket(standin.port, AUTH) as ws:
            client = Phoenix(ws)
            await client.send("realtime:room", "phx_join", {"config": {}})
            _, raw = await client.recv()
            assert set(raw) == {"topic", "event", "payload", "ref"}
            assert raw["payload"] == {"status": "ok", "response": {"postgres_changes": []}}
            ref = await client.send("phoenix", "heartbeat", {})
            _, raw = await client.recv()
            assert raw == {
                "topic": "phoenix",
                "event": "phx_reply",
                "ref": ref,
                "payload": {"status": "ok", "response": {}},
            }

    run(scenario())


def test_v2_frames_are_arrays(standin: Standin) -> None:
    async def scenario() -> None:
        async with open_socket(standin.port, f"{AUTH}&vsn=2.0.0") as ws:
            client = Phoenix(ws, "2.0.0")
            ref = await client.send("realtime:room", "phx_join", {"config": {}}, join_ref="7")
            _, raw = await client.recv()
            assert raw == [
                "7",
                ref,
                "realtime:room",
                "phx_reply",
                {"status": "ok", "response": {"postgres_changes": []}},
            ]
            ref = await client.send("phoenix", "heartbeat", {})
            _, raw = await client.recv()
            assert raw == [None, ref, "phoenix", "phx_reply", {"status": "ok", "response": {}}]

    run(scenario())


def test_join_replies_with_binding_ids_then_subscribes_to_postgres(standin: Standin) -> None:
    async def scenario() -> None:
        async with open_socket(standin.port, AUTH) as ws:
            client = Phoenix(ws)
            reply = await client.join("wells", {"postgres_changes": [WELLS]}, access_token=make_token())
            assert reply["payload"]["status"] == "ok"
            (binding,) = reply["payload"]["response"]["postgres_changes"]
            assert {k: v for k, v in binding.items() if k != "id"} == WELLS
            assert isinstance(binding["id"], int)
            system, raw = await client.recv()
            assert (system["event"], raw["ref"]) == ("system", None)
            assert system["payload"] == {
                "extension": "postgres_changes",
                "status": "ok",
                "message": "Subscribed to PostgreSQL",
                "channel": "wells",
            }
        again = await join_payload_ids(standin, [WELLS])
        assert again == [binding["id"]]  # ids are deterministic

    run(scenario())
    standin.wait_for_log(r"\[info\] JOINED realtime:wells")
    assert make_token() not in standin.log()


async def join_payload_ids(standin: Standin, bindings: list[dict[str, str]]) -> list[int]:
    async with open_socket(standin.port, AUTH) as ws:
        reply = await Phoenix(ws).join("again", {"postgres_changes": bindings})
        return [b["id"] for b in reply["payload"]["response"]["postgres_changes"]]


def test_table_outside_the_publication_gets_a_system_error(standin: Standin) -> None:
    async def scenario() -> None:
        async with open_socket(standin.port, AUTH) as ws:
            client = Phoenix(ws)
            binding = {"event": "INSERT", "schema": "public", "table": "secrets"}
            assert (await client.join("s", {"postgres_changes": [binding]}))["payload"]["status"] == "ok"
            system, _ = await client.recv()
            assert system["payload"]["status"] == "error"
            assert system["payload"]["message"].startswith("Subscription insert failed with 0 rows.")
            assert '"table" => "secrets"' in system["payload"]["message"]

    run(scenario())


def test_presence_enabled_join_gets_an_empty_presence_state(standin: Standin) -> None:
    async def scenario() -> None:
        async with open_socket(standin.port, AUTH) as ws:
            client = Phoenix(ws)
            await client.join("lobby", {"presence": {"enabled": True, "key": ""}})
            presence, _ = await client.recv()
            assert (presence["event"], presence["payload"]) == ("presence_state", {})

    run(scenario())


def test_join_with_a_bad_access_token_is_refused(standin: Standin) -> None:
    async def scenario() -> None:
        async with open_socket(standin.port, AUTH) as ws:
            client = Phoenix(ws)
            reply = await client.join("room", {}, access_token=make_token(expires_in=-5))
            assert reply["payload"]["status"] == "error"
            assert reply["payload"]["response"]["reason"].startswith("InvalidJWTToken: Token has expired")
            reply = await client.join("room", {}, access_token=make_token(WRONG_SECRET))
            assert reply["payload"]["response"] == {"reason": "JwtSignatureError: Failed to validate JWT signature"}

    run(scenario())


def test_topics_outside_realtime_and_unjoined_topics_are_unmatched(standin: Standin) -> None:
    async def scenario() -> None:
        async with open_socket(standin.port, AUTH) as ws:
            client = Phoenix(ws)
            await client.send("room:lobby", "phx_join", {})
            reply, _ = await client.recv()
            assert reply["payload"] == {
                "status": "error",
                "response": {"reason": "unmatched topic"},
            }
            await client.send(
                "realtime:never-joined",
                "broadcast",
                {"type": "broadcast", "event": "x", "payload": {}},
            )
            reply, _ = await client.recv()
            assert reply["payload"] == {
                "status": "error",
                "response": {"reason": "unmatched topic"},
            }

    run(scenario())


def test_broadcast_echoes_to_self_acks_and_reaches_other_sockets(standin: Standin) -> None:
    message = {"type": "broadcast", "event": "ping", "payload": {"n": 1}}

    async def scenario() -> None:
        async with (
            open_socket(standin.port, AUTH) as ws_a,
            open_socket(standin.port, f"{AUTH}&vsn=2.0.0") as ws_b,
        ):
            sender, listener = Phoenix(ws_a), Phoenix(ws_b, "2.0.0")
            await sender.join("chat", {"broadcast": {"self": True, "ack": True}})
            await listener.join("chat", {"broadcast": {"self": False, "ack": False}})
            ref = await sender.send("realtime:chat", "broadcast", message)
            echo, _ = await sender.recv()
            ack, _ = await sender.recv()
            assert (echo["event"], echo["payload"], echo["ref"]) == ("broadcast", message, None)
            assert (ack["event"], ack["ref"], ack["payload"]["status"]) == ("phx_reply", ref, "ok")
            _, raw = await listener.recv()
            assert raw == [None, None, "realtime:chat", "broadcast", message]

    run(scenario())


def test_access_token_refresh_is_silent_when_valid_and_closes_the_channel_when_not(
    standin: Standin,
) -> None:
    async def scenario() -> None:
        async with open_socket(standin.port, AUTH) as ws:
            client = Phoenix(ws)
            await client.join("room")
            await client.send("realtime:room", "access_token", {"access_token": make_token()})
            ref = await client.send("phoenix", "heartbeat", {})
            reply, _ = await client.recv()
            assert reply["ref"] == ref  # Realtime does not answer a valid refresh
            expired = make_token(expires_in=-1)
            await client.send("realtime:room", "access_token", {"access_token": expired})
            system, _ = await client.recv()
            close, _ = await client.recv()
            assert (system["event"], system["payload"]["status"]) == ("system", "error")
            assert close["event"] == "phx_close"

    run(scenario())


def test_leave_replies_ok_then_closes_the_channel(standin: Standin) -> None:
    async def scenario() -> None:
        async with open_socket(standin.port, AUTH) as ws:
            client = Phoenix(ws)
            await client.join("room")
            ref = await client.send("realtime:room", "phx_leave", {})
            reply, _ = await client.recv()
            close, _ = await client.recv()
            assert (reply["ref"], reply["payload"]["status"], close["event"]) == (
                ref,
                "ok",
                "phx_close",
            )

    run(scenario())


def test_binary_broadcast_from_v2_reaches_v1_as_json_and_v2_as_binary(standin: Standin) -> None:
    # realtime-js with vsn=2.0.0 sends broadcasts as binary "user broadcast push" frames (kind 3).
    topic, event, body = b"realtime:bin", b"ping", b'{"n":2}'
    push = bytes([3, 1, 1, len(topic), len(event), 0, 1]) + b"1" + b"2" + topic + event + body

    async def scenario() -> None:
        async with (
            open_socket(standin.port, f"{AUTH}&vsn=2.0.0") as ws_v2,
            open_socket(standin.port, AUTH) as ws_v1,
        ):
            sender, listener = Phoenix(ws_v2, "2.0.0"), Phoenix(ws_v1)
            await sender.join("bin", {"broadcast": {"self": True, "ack": False}})
            await listener.join("bin", {})
            await ws_v2.send(push)
            echo = await asyncio.wait_for(ws_v2.recv(), 3)
            assert echo == bytes([4, len(topic), len(event), 0, 1]) + topic + event + body
            message, _ = await listener.recv()
            assert message["payload"] == {"type": "broadcast", "event": "ping", "payload": {"n": 2}}

    run(scenario())


def test_undecodable_frames_are_skipped_not_fatal(standin: Standin) -> None:
    async def scenario() -> None:
        async with open_socket(standin.port, AUTH) as ws:
            await ws.send("this is not json")
            await ws.send(json.dumps({"topic": 1, "event": "phx_join"}))
            client = Phoenix(ws)
            ref = await client.send("phoenix", "heartbeat", {})
            reply, _ = await client.recv()
            assert reply["ref"] == ref

    run(scenario())


@pytest.mark.parametrize(
    ("host", "tenant"),
    [
        ("realtime-dev.supabase-realtime:4000", "realtime-dev"),
        ("realtime-dev", "realtime-dev"),
        ("203.0.113.5:8000", "203"),
        ("api.example.com", "api"),
        ("[::1]:4000", "::1"),
    ],
)
def test_tenant_is_the_first_label_of_the_host(host: str, tenant: str) -> None:
    assert load_standin_module().tenant_from_host(host) == tenant


@functools.cache
def load_standin_module() -> Any:
    """Import the stand-in by path: it is a standalone script, not part of the package API."""
    spec = importlib.util.spec_from_file_location("realtime_standin", STANDIN)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


# --- process contract ----------------------------------------------------------------------


def test_missing_secret_exits_1_with_a_clear_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(STANDIN)],
        env={"PATH": os.environ.get("PATH", "")},
        capture_output=True,
        timeout=10,
    )
    assert result.returncode == 1
    assert b"[error] API_JWT_SECRET is required" in result.stdout


def test_sigterm_exits_0(tmp_path: Path) -> None:
    running = start_standin(tmp_path)
    running.wait_for_log(r"\[info\] Running RealtimeWeb.Endpoint with Bandit 1.5.7 at 127.0.0.1:\d+ \(http\)")
    assert stop_standin(running) == 0


# --- official clients ----------------------------------------------------------------------


def test_official_python_client_subscribes(direct_standin: Standin) -> None:
    from realtime import (
        AsyncRealtimeClient,
        RealtimePostgresChangesListenEvent,
        RealtimeSubscribeStates,
    )

    async def scenario() -> list[Any]:
        client = AsyncRealtimeClient(f"ws://127.0.0.1:{direct_standin.port}/socket", make_token(), max_retries=1)
        states: list[Any] = []
        channel = client.channel("py-conformance")
        channel.on_postgres_changes(
            RealtimePostgresChangesListenEvent.All,
            lambda _payload: None,
            table="wells",
            schema="public",
        )
        await channel.subscribe(lambda state, _error: states.append(state))
        await client.close()
        return states

    assert run(scenario()) == [RealtimeSubscribeStates.SUBSCRIBED]


def test_official_python_client_fails_with_a_token_from_another_secret(
    direct_standin: Standin,
) -> None:
    from realtime import AsyncRealtimeClient

    async def scenario() -> None:
        client = AsyncRealtimeClient(
            f"ws://127.0.0.1:{direct_standin.port}/socket", make_token(WRONG_SECRET), max_retries=1
        )
        with pytest.raises(InvalidStatus) as refused:
            await client.connect()
        assert refused.value.response.status_code == 401

    run(scenario())


def node_script(direct_standin: Standin, token: str) -> subprocess.CompletedProcess[str]:
    if shutil.which("node") is None or not (JS_DIR / "node_modules" / "@supabase" / "realtime-js").is_dir():
        pytest.skip("realtime-js not installed: run `npm ci` in tests/standins/js")
    url = f"ws://127.0.0.1:{direct_standin.port}/socket"
    return subprocess.run(
        ["node", "subscribe.mjs", url, token],
        cwd=JS_DIR,
        capture_output=True,
        text=True,
        timeout=15,
    )


def test_official_js_client_subscribes_and_round_trips_a_broadcast(direct_standin: Standin) -> None:
    result = node_script(direct_standin, make_token())
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "status SUBSCRIBED"
    assert "system ok Subscribed to PostgreSQL" in lines
    assert 'echo {"n":1}' in lines and "broadcast ok" in lines


def test_official_js_client_reports_channel_error_for_a_wrong_secret(
    direct_standin: Standin,
) -> None:
    result = node_script(direct_standin, make_token(WRONG_SECRET))
    assert result.stdout.startswith("status CHANNEL_ERROR"), result.stdout + result.stderr


# --- ES256 against API_JWT_JWKS (today's opaque-key setups) ----------------------------------

MODERN_KEYS = make_api_keys(SECRET)


@pytest.fixture(scope="module")
def jwks_standin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Standin]:
    running = start_standin(tmp_path_factory.mktemp("realtime-jwks"), API_JWT_JWKS=MODERN_KEYS["JWT_JWKS"])
    yield running
    stop_standin(running)


def test_es256_token_whose_kid_is_in_the_jwks_connects_and_joins(jwks_standin: Standin) -> None:
    async def scenario() -> dict[str, Any]:
        async with open_socket(jwks_standin.port, f"apikey={MODERN_KEYS['ANON_KEY_ASYMMETRIC']}&vsn=2.0.0") as ws:
            return await Phoenix(ws, "2.0.0").join("jwks", access_token="sb_publishable_x")

    assert run(scenario())["payload"]["status"] == "ok"


def test_hs256_tokens_still_verify_with_the_secret_beside_a_jwks(jwks_standin: Standin) -> None:
    async def scenario() -> dict[str, Any]:
        async with open_socket(jwks_standin.port, AUTH) as ws:
            return await Phoenix(ws).join("legacy")

    assert run(scenario())["payload"]["status"] == "ok"


def test_es256_token_without_api_jwt_jwks_is_a_signer_error(standin: Standin) -> None:
    status, body = run(rejection(standin.port, f"apikey={MODERN_KEYS['ANON_KEY_ASYMMETRIC']}"))
    assert (status, json.loads(body)) == (
        401,
        {"error": "Failed to generate JWT signer, check your JWT secret or JWKS configuration"},
    )


def test_es256_token_whose_kid_is_not_in_the_jwks_names_the_kid(tmp_path: Path) -> None:
    other = make_api_keys(SECRET)
    running = start_standin(tmp_path, API_JWT_JWKS=other["JWT_JWKS"])
    try:
        status, body = run(rejection(running.port, f"apikey={MODERN_KEYS['ANON_KEY_ASYMMETRIC']}"))
    finally:
        stop_standin(running)
    kid = jwt.get_unverified_header(MODERN_KEYS["ANON_KEY_ASYMMETRIC"])["kid"]
    assert status == 401
    assert json.loads(body)["error"] == (
        f'Failed to generate JWT signer for key ID (kid) "{kid}", check your JWT secret or JWKS configuration'
    )


def test_an_api_jwt_jwks_that_is_not_json_exits_1(tmp_path: Path) -> None:
    port = free_port()
    env = {"PATH": os.environ.get("PATH", ""), "API_JWT_SECRET": SECRET, "PORT": str(port), "API_JWT_JWKS": "{keys"}
    proc = subprocess.run([sys.executable, str(STANDIN)], env=env, capture_output=True, text=True, timeout=10)
    assert proc.returncode == 1 and "API_JWT_JWKS is not a JWKS" in proc.stdout + proc.stderr
