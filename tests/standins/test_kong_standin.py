"""The Kong stand-in behaves like Kong OSS on the command line and on the wire.

The stand-in runs as a subprocess on 127.0.0.1; a tiny upstream (the ``websockets``
server, answering plain GETs with what it received) stands in for Supabase Realtime.
Names resolve from a private hosts file only, so no DNS query leaves the machine.
"""

from __future__ import annotations

import ast
import asyncio
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from ports import free_port
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import InvalidStatus
from websockets.http11 import Request, Response
from websockets.sync.client import connect

STANDIN = Path(__file__).resolve().parents[2] / "supakong/sandbox/standins/kong_standin.py"
SUPABASE_PLUGINS = "request-transformer,cors,key-auth,acl,basic-auth,request-termination,ip-restriction"
REALTIME_HOST = "realtime-dev.supabase-realtime"

SUPABASE_LIKE = """\
_format_version: '2.1'
_transform: true
consumers:
  - username: anon
    keyauth_credentials:
      - key: anon-key
  - username: service_role
    keyauth_credentials:
      - key: service-key
  - username: outsider
    keyauth_credentials:
      - key: outsider-key
acls:
  - consumer: anon
    group: anon
  - consumer: service_role
    group: admin
services:
  - name: realtime-v1-ws
    url: http://{realtime}:{port}/socket
    protocol: ws
    routes:
      - name: realtime-v1-ws
        strip_path: true
        paths:
          - /realtime/v1/
    plugins:
      - name: cors
      - name: key-auth
        config:
          hide_credentials: false
      - name: acl
        config:
          hide_groups_header: true
          allow: [admin, anon]
  - name: realtime-v1-rest
    url: http://{realtime}:{port}/api
    protocol: http
    routes:
      - name: realtime-v1-rest
        strip_path: true
        paths:
          - /realtime/v1/api
    plugins:
      - name: key-auth
        config:
          hide_credentials: true
      - name: request-transformer
        config:
          add:
            headers:
              - "x-added:yes"
  - name: realtime-v1-rest-tenants
    url: http://{realtime}:{port}/api/tenants
    routes:
      - name: realtime-v1-rest-tenants
        paths:
          - /realtime/v1/api/tenants
    plugins:
      - name: request-termination
        config:
          status_code: 403
          message: Access is forbidden.
  - name: preserved
    url: http://{realtime}:{port}/echo
    routes:
      - name: preserved
        paths: [/preserved]
        preserve_host: true
  - name: open
    url: http://127.0.0.1:{port}/open
    routes:
      - name: open
        paths: [/open]
    plugins:
      - name: key-auth
        config:
          anonymous: anon
      - name: acl
        config:
          allow: [anon]
  - name: down
    url: http://127.0.0.1:{closed_port}/
    routes:
      - name: down
        paths: [/down]
  - name: unresolvable
    url: http://nowhere.supabase-internal:4000/
    routes:
      - name: unresolvable
        paths: [/nowhere]
"""


# ------------------------------------------------------------------ helpers and fixtures
def kong_env(tmp_path: Path, version: str = "2.8.1", **extra: str) -> dict[str, str]:
    hosts = tmp_path / "hosts"
    hosts.write_text(f"127.0.0.1 localhost\n127.0.0.1 {REALTIME_HOST}\n")
    return {
        "PATH": os.environ.get("PATH", ""),
        "KONG_PLUGINS": SUPABASE_PLUGINS,
        "KONG_VERSION": version,
        "KONG_PREFIX": str(tmp_path / "prefix"),
        "KONG_DNS_HOSTSFILE": str(hosts),
        "KONG_STANDIN_HOSTS_ONLY": "1",
        "KONG_ADMIN_LISTEN": "off",  # Kong's default 127.0.0.1:8001 would be shared by parallel runs
        **extra,
    }


def kong(tmp_path: Path, *args: str, version: str = "2.8.1", **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(STANDIN), *args],
        capture_output=True,
        text=True,
        env=kong_env(tmp_path, version, **extra),
        timeout=20,
    )


def parse(tmp_path: Path, config: str, version: str = "2.8.1", **extra: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "kong.yml"
    path.write_text(config)
    return kong(tmp_path, "config", "parse", str(path), version=version, **extra)


class Upstream:
    """A Realtime-like upstream: WebSocket echo; plain GETs answer with what arrived."""

    def __init__(self) -> None:
        self.port = 0
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Future[None] | None = None
        self._thread = threading.Thread(target=self._loop.run_until_complete, args=(self._serve(),), daemon=True)

    def __enter__(self) -> Upstream:
        self._thread.start()
        assert self._ready.wait(5), "upstream did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set_result, None)
        self._thread.join(5)
        self._loop.close()

    async def _serve(self) -> None:
        self._stop = self._loop.create_future()
        async with serve(self._echo, "127.0.0.1", 0, process_request=self._plain) as server:
            self.port = next(iter(server.sockets)).getsockname()[1]
            self._ready.set()
            await self._stop

    @staticmethod
    def seen(request: Request) -> str:
        return json.dumps(
            {"path": request.path, "host": request.headers.get("Host"), "headers": dict(request.headers.raw_items())}
        )

    def _plain(self, connection: ServerConnection, request: Request) -> Response | None:
        if request.headers.get("Upgrade") is None:
            return connection.respond(200, self.seen(request))
        return None

    async def _echo(self, ws: ServerConnection) -> None:
        async for frame in ws:
            await ws.send(self.seen(ws.request) if frame == "whoami" else frame)  # type: ignore[arg-type]


@dataclass
class Kong:
    port: int
    process: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path

    def get(
        self, path: str, headers: dict[str, str] | None = None, method: str = "GET"
    ) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            conn.request(method, path, headers=headers or {})
            response = conn.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            conn.close()

    def upstream_saw(self, path: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
        status, _, body = self.get(path, headers)
        assert status == 200, body
        return dict(json.loads(body))

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(5)


def wait_for_port(port: int, process: subprocess.Popen[bytes], stderr: Path) -> None:
    deadline, delay = time.monotonic() + 10, 0.02
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"kong exited with {process.returncode}: {stderr.read_text()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(delay)
            delay = min(delay * 2, 0.2)
    pytest.fail(f"kong did not listen on {port} within 10 s: {stderr.read_text()}")


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    with Upstream() as server:
        yield server


@pytest.fixture
def start_kong(tmp_path: Path, upstream: Upstream) -> Iterator[Callable[..., Kong]]:
    """Write the Supabase-like kong.yml (or a given one) and run ``kong docker-start``."""
    started: list[Kong] = []

    def start(config: str = SUPABASE_LIKE, version: str = "2.8.1") -> Kong:
        port = free_port()
        path = tmp_path / f"kong-{len(started)}.yml"
        path.write_text(config.format(realtime=REALTIME_HOST, port=upstream.port, closed_port=free_port()))
        out, err = tmp_path / f"out-{len(started)}.log", tmp_path / f"err-{len(started)}.log"
        env = kong_env(tmp_path, version, KONG_DECLARATIVE_CONFIG=str(path), KONG_PROXY_LISTEN=f"127.0.0.1:{port}")
        with out.open("wb") as stdout, err.open("wb") as stderr:
            process = subprocess.Popen(
                [sys.executable, str(STANDIN), "docker-start"], env=env, stdout=stdout, stderr=stderr
            )
        started.append(Kong(port, process, out, err))
        wait_for_port(port, process, err)
        return started[-1]

    yield start
    for instance in started:
        instance.stop()


# ------------------------------------------------------------------ command line
def test_standin_shares_no_code_with_the_project() -> None:
    sources = [STANDIN, *sorted((STANDIN.parent / "kong").glob("*.py"))]
    assert len(sources) > 5  # the entry script and its package
    for source in sources:
        tree = ast.parse(source.read_text())
        imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        imported |= {
            node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and not node.level
        }
        assert not {name for name in imported if name.split(".")[0] == "supakong"}, source


def test_version_prints_the_bare_version_like_kong_cmd_version(tmp_path: Path) -> None:
    # Kong/kong@2.8.1 and @3.9.3:kong/cmd/version.lua: print(meta._VERSION)
    assert kong(tmp_path, "version").stdout == "2.8.1\n"
    assert kong(tmp_path, "version", version="3.9.3").stdout == "3.9.3\n"


def test_unknown_command_is_a_usage_error(tmp_path: Path) -> None:
    result = kong(tmp_path, "frobnicate")
    assert result.returncode == 1 and "Usage: kong COMMAND" in result.stderr


def test_supabase_style_protocol_ws_with_http_url_parses(tmp_path: Path) -> None:
    result = parse(tmp_path, SUPABASE_LIKE.format(realtime=REALTIME_HOST, port=4000, closed_port=1))
    assert (result.returncode, result.stdout.strip()) == (0, "parse successful")


def test_ws_protocols_on_a_route_are_refused_with_expected_one_of(tmp_path: Path) -> None:
    protocols = "        protocols: [http, https, ws, wss]\n"
    config = SUPABASE_LIKE.replace("          - /realtime/v1/\n", "          - /realtime/v1/\n" + protocols)
    result = parse(tmp_path, config.format(realtime=REALTIME_HOST, port=4000, closed_port=1))
    assert result.returncode == 1
    assert result.stderr.startswith(
        "Error: Failed parsing:\nin 'services':\n"
        "  - in entry 1 of 'services':\n    in 'routes':\n"
        "      - in entry 1 of 'routes':\n        in 'protocols':\n"
        "          - in entry 3 of 'protocols': expected one of: "
        "grpc, grpcs, http, https, tcp, tls, tls_passthrough, udp\n"
    )


# Schema verdicts (types, ranges, enums, per-version fields) are in tests/kong_cases.yaml,
# checked by test_kong_standin_cases.py against this stand-in and by tests/unit/kong against the validator.


def test_broken_yaml_reports_the_line(tmp_path: Path) -> None:
    result = parse(tmp_path, "_format_version: '2.1'\nservices:\n  - name: [unclosed\n")
    assert result.returncode == 1
    assert "Error: Failed parsing:\nfailed parsing declarative configuration: 4:1:" in result.stderr


def test_config_parse_of_a_missing_file(tmp_path: Path) -> None:
    result = kong(tmp_path, "config", "parse", str(tmp_path / "nope.yml"))
    assert result.returncode == 1
    assert result.stderr.startswith(f"Error: {tmp_path / 'nope.yml'}: No such file or directory")


def test_docker_start_refuses_a_bad_file_and_exits_1(tmp_path: Path) -> None:
    path = tmp_path / "kong.yml"
    path.write_text("_format_version: '2.1'\nroutes:\n  - name: r\n    paths: [/]\n    protocols: [http, ws]\n")
    result = kong(
        tmp_path, "docker-start", KONG_DECLARATIVE_CONFIG=str(path), KONG_PROXY_LISTEN=f"127.0.0.1:{free_port()}"
    )
    assert result.returncode == 1
    assert (
        f"init_by_lua error: /usr/local/share/lua/5.1/kong/init.lua:553: error parsing "
        f"declarative config file {path}:\nin 'routes':" in result.stderr
    )
    assert not (tmp_path / "prefix/pids/nginx.pid").exists()


def test_health_reports_not_running_then_healthy_then_not_running(
    tmp_path: Path, start_kong: Callable[..., Kong]
) -> None:
    before = kong(tmp_path, "health")
    assert before.returncode == 1
    assert f"Error: Kong is not running at {tmp_path / 'prefix'}" in before.stderr
    gateway = start_kong()
    during = kong(tmp_path, "health")
    assert during.returncode == 0 and f"Kong is healthy at {tmp_path / 'prefix'}" in during.stdout
    assert gateway.stop() == 0
    assert kong(tmp_path, "health").returncode == 1
    assert "declarative config loaded from" in gateway.stderr.read_text()


# ------------------------------------------------------------------ proxying
def test_no_route_matched_is_a_404_with_kong_headers(start_kong: Callable[..., Kong]) -> None:
    status, headers, body = start_kong().get("/nothing-here")
    assert (status, json.loads(body)) == (404, {"message": "no Route matched with those values"})
    assert headers["Server"] == "kong/2.8.1"
    assert headers["Content-Type"] == "application/json; charset=utf-8"


def test_strip_path_joins_the_rest_onto_the_service_path_and_sends_the_service_host(
    start_kong: Callable[..., Kong], upstream: Upstream
) -> None:
    seen = start_kong().upstream_saw("/realtime/v1/websocket?apikey=anon-key&vsn=1.0.0")
    assert seen["path"] == "/socket/websocket?apikey=anon-key&vsn=1.0.0"
    assert seen["host"] == f"{REALTIME_HOST}:{upstream.port}"
    assert seen["headers"]["X-Real-IP"] == "127.0.0.1"
    assert seen["headers"]["X-Consumer-Username"] == "anon"
    assert "X-Consumer-Groups" not in seen["headers"]  # hide_groups_header: true


def test_longest_prefix_wins_and_plugins_apply_per_route(start_kong: Callable[..., Kong]) -> None:
    gateway = start_kong()
    seen = gateway.upstream_saw("/realtime/v1/api/ping", {"apikey": "service-key"})
    assert seen["path"] == "/api/ping"
    assert seen["headers"]["x-added"] == "yes"
    assert "apikey" not in {k.lower() for k in seen["headers"]}  # hide_credentials: true
    status, _, body = gateway.get("/realtime/v1/api/tenants", {"apikey": "service-key"})
    assert (status, json.loads(body)) == (403, {"message": "Access is forbidden."})


def test_preserve_host_sends_the_client_host_upstream(start_kong: Callable[..., Kong]) -> None:
    seen = start_kong().upstream_saw("/preserved/x", {"Host": "api.example.com:8000"})
    assert seen["host"] == "api.example.com:8000"
    assert seen["path"] == "/echo/x"


@pytest.mark.parametrize(
    "version, invalid, realm",
    [("2.8.1", "Invalid authentication credentials", 'Key realm="kong"'), ("3.9.3", "Unauthorized", "Key")],
)
def test_key_auth_answers_401_with_the_version_specific_text(
    start_kong: Callable[..., Kong], version: str, invalid: str, realm: str
) -> None:
    gateway = start_kong(version=version)
    status, headers, body = gateway.get("/realtime/v1/websocket")
    assert (status, json.loads(body)["message"]) == (401, "No API key found in request")
    assert headers["Server"] == f"kong/{version}" and headers["WWW-Authenticate"] == realm
    status, headers, body = gateway.get("/realtime/v1/websocket?apikey=stale-key")
    assert (status, json.loads(body)["message"]) == (401, invalid)


def test_kong_errors_carry_the_request_id_on_3x_only(start_kong: Callable[..., Kong]) -> None:
    # kong.response.error's JSON template: 2.8.1 {"message"}, 3.9.3 {"message","request_id"}
    _, _, old = start_kong(version="2.8.1").get("/realtime/v1/websocket")
    assert old == b'{\n  "message":"No API key found in request"\n}'
    _, headers, new = start_kong(version="3.9.3").get("/realtime/v1/websocket")
    request_id = headers["X-Kong-Request-Id"]
    assert len(request_id) == 32
    expected = '{\n  "message":"No API key found in request",\n  "request_id":"' + request_id + '"\n}'
    assert new == expected.encode()


def test_no_route_matched_is_compact_on_2_8_and_templated_on_3x(start_kong: Callable[..., Kong]) -> None:
    _, _, old = start_kong(version="2.8.1").get("/nothing-here")
    assert old == b'{"message":"no Route matched with those values"}'
    _, headers, new = start_kong(version="3.9.3").get("/nothing-here")
    assert json.loads(new) == {
        "message": "no Route matched with those values",
        "request_id": headers["X-Kong-Request-Id"],
    }


def test_acl_refuses_a_consumer_outside_the_allowed_groups(start_kong: Callable[..., Kong]) -> None:
    status, _, body = start_kong().get("/realtime/v1/websocket", {"apikey": "outsider-key"})
    assert (status, json.loads(body)) == (403, {"message": "You cannot consume this service"})


def test_anonymous_fallback_accepts_missing_and_invalid_keys(start_kong: Callable[..., Kong]) -> None:
    gateway = start_kong()
    for headers in ({}, {"apikey": "stale-key"}):
        seen = gateway.upstream_saw("/open", headers)
        assert seen["headers"]["X-Consumer-Username"] == "anon"
        assert seen["headers"]["X-Anonymous-Consumer"] == "true"


def test_cors_preflight_is_answered_before_key_auth(start_kong: Callable[..., Kong]) -> None:
    status, headers, _ = start_kong().get(
        "/realtime/v1/websocket",
        method="OPTIONS",
        headers={
            "Origin": "http://app.example",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "apikey,x-client-info",
        },
    )
    assert status == 200
    assert headers["Access-Control-Allow-Origin"] == "*"
    assert headers["Access-Control-Allow-Headers"] == "apikey,x-client-info"


def test_upstream_down_is_a_502_with_an_nginx_error_line(start_kong: Callable[..., Kong]) -> None:
    gateway = start_kong()
    status, _, body = gateway.get("/down")
    assert status == 502
    invalid = "An invalid response was received from the upstream server"
    assert json.loads(body) == {"message": invalid}
    assert "connect() failed (111: Connection refused) while connecting to upstream" in gateway.stderr.read_text()


def test_unresolvable_upstream_is_a_503_name_resolution_failed(start_kong: Callable[..., Kong]) -> None:
    status, _, body = start_kong().get("/nowhere")
    assert (status, json.loads(body)) == (503, {"message": "name resolution failed"})


def test_websocket_handshake_and_echo_pass_through_the_tunnel(
    start_kong: Callable[..., Kong], upstream: Upstream
) -> None:
    gateway = start_kong()
    url = f"ws://127.0.0.1:{gateway.port}/realtime/v1/websocket?apikey=anon-key&vsn=1.0.0"
    with connect(url, proxy=None, open_timeout=5) as ws:
        assert ws.response is not None and ws.response.status_code == 101
        ws.send("whoami")
        seen = json.loads(ws.recv(timeout=5))
        ws.send("hello through kong")
        assert ws.recv(timeout=5) == "hello through kong"
    assert seen["path"] == "/socket/websocket?apikey=anon-key&vsn=1.0.0"
    assert seen["host"] == f"{REALTIME_HOST}:{upstream.port}"
    gateway.stop()
    log = gateway.stdout.read_text()
    assert '"GET /realtime/v1/websocket?apikey=anon-key&vsn=1.0.0 HTTP/1.1" 101 ' in log


def test_websocket_handshake_with_a_stale_key_is_rejected_with_401(start_kong: Callable[..., Kong]) -> None:
    gateway = start_kong()
    with pytest.raises(InvalidStatus) as rejected:
        connect(f"ws://127.0.0.1:{gateway.port}/realtime/v1/websocket?apikey=stale", proxy=None, open_timeout=5)
    assert rejected.value.response.status_code == 401
    assert json.loads(rejected.value.response.body or b"") == {"message": "Invalid authentication credentials"}
