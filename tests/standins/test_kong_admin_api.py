"""The Kong stand-in's Admin API behaves like Kong's DB-less ``/config`` and ``/status``.

Each test runs ``kong docker-start`` with the Admin API on a free loopback port (Kong's
default is 127.0.0.1:8001; parallel runs would share it) and talks to it with Python's
http.client and with the stand-in's ``resty`` running the Lua client supakong uses.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from ports import free_port
from test_kong_standin import REALTIME_HOST, STANDIN, SUPABASE_LIKE, Kong, Upstream, kong_env, wait_for_port
from websockets.sync.client import connect

RESTY = STANDIN.parent / "resty_standin.py"
ZEROS = "0" * 32
REFUSED = "_format_version: '2.1'\nservices:\n  - name: broken\n    host: x\n    port: -12\n"


class Node(Kong):
    """A Kong stand-in and its Admin API port."""

    admin_port: int = 0

    def admin(
        self, method: str, path: str, body: str | bytes | None = None, content_type: str = "text/yaml"
    ) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.admin_port, timeout=10)
        try:
            conn.request(method, path, body=body, headers={"Content-Type": content_type} if body is not None else {})
            response = conn.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            conn.close()

    def hash(self) -> str:
        status, _, body = self.admin("GET", "/status")
        assert status == 200, body
        return str(json.loads(body)["configuration_hash"])


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    with Upstream() as server:
        yield server


@pytest.fixture
def start_node(tmp_path: Path, upstream: Upstream) -> Iterator[Callable[..., Node]]:
    started: list[Node] = []

    def start(version: str = "2.8.1", config: str = SUPABASE_LIKE, admin: str | None = None) -> Node:
        port, admin_port = free_port(), free_port()
        path = tmp_path / f"kong-{len(started)}.yml"
        path.write_text(filled(config, upstream))
        out, err = tmp_path / f"out-{len(started)}.log", tmp_path / f"err-{len(started)}.log"
        env = kong_env(
            tmp_path,
            version,
            KONG_DECLARATIVE_CONFIG=str(path),
            KONG_PROXY_LISTEN=f"127.0.0.1:{port}",
            KONG_ADMIN_LISTEN=admin or f"127.0.0.1:{admin_port} reuseport backlog=16384, 127.0.0.1:{free_port()} ssl",
        )
        with out.open("wb") as stdout, err.open("wb") as stderr:
            process = subprocess.Popen(
                [sys.executable, str(STANDIN), "docker-start"], env=env, stdout=stdout, stderr=stderr
            )
        node = Node(port, process, out, err)
        node.admin_port = admin_port
        started.append(node)
        wait_for_port(port, process, err)
        return node

    yield start
    for node in started:
        node.stop()


def filled(config: str, upstream: Upstream) -> str:
    return config.format(realtime=REALTIME_HOST, port=upstream.port, closed_port=free_port())


def with_route(config: str, path: str) -> str:
    """The config plus one open route at ``path``."""
    return (
        config + f"  - name: added\n    url: http://127.0.0.1:{{port}}/added\n    routes:\n"
        f"      - name: added\n        paths: [{path}]\n"
    )


def wait_for(check: Callable[[], bool]) -> bool:
    """3.x answers 201 before its workers rebuild: poll a little, like a functional probe."""
    for _ in range(50):
        if check():
            return True
        time.sleep(0.02)
    return False


@pytest.mark.parametrize("version", ["2.8.1", "3.9.3"])
def test_posting_yaml_loads_it_and_status_reports_its_md5(
    start_node: Callable[..., Node], upstream: Upstream, version: str
) -> None:
    node = start_node(version)
    assert node.get("/added")[0] == 404
    text = filled(with_route(SUPABASE_LIKE, "/added"), upstream)
    status, headers, body = node.admin("POST", "/config?check_hash=1", text)
    assert status == 201, body
    assert "anon-key" in body.decode()  # the entities come back, credentials included, as in Kong
    assert headers["Content-Type"].startswith("application/json")
    assert node.hash() == hashlib.md5(text.encode()).hexdigest()
    assert wait_for(lambda: node.get("/added")[0] == 200)


@pytest.mark.parametrize(("version", "expected"), [("2.8.1", "zeros"), ("3.9.3", "md5")])
def test_the_hash_after_loading_the_file_is_zeros_on_2_8_1_and_md5_on_3_x(
    start_node: Callable[..., Node], upstream: Upstream, version: str, expected: str
) -> None:
    node = start_node(version)
    loaded = next(Path(node.stdout).parent.glob("kong-0.yml")).read_bytes()
    file_md5 = hashlib.md5(loaded).hexdigest()
    assert node.hash() == (ZEROS if expected == "zeros" else file_md5)


@pytest.mark.parametrize("version", ["2.8.1", "3.9.3"])
def test_check_hash_answers_304_without_a_body_for_the_same_config(
    start_node: Callable[..., Node], upstream: Upstream, version: str
) -> None:
    node = start_node(version)
    text = filled(with_route(SUPABASE_LIKE, "/added"), upstream)
    assert node.admin("POST", "/config?check_hash=1", text)[0] == 201
    status, _, body = node.admin("POST", "/config?check_hash=1", text)
    assert (status, body) == (304, b"")
    assert node.admin("POST", "/config", text)[0] == 201  # without check_hash it loads again


@pytest.mark.parametrize("version", ["2.8.1", "3.9.3"])
def test_a_refused_config_answers_400_with_kongs_body_and_the_old_one_stays(
    start_node: Callable[..., Node], version: str
) -> None:
    node = start_node(version)
    before = node.hash()
    status, _, body = node.admin("POST", "/config", REFUSED)
    assert status == 400
    error = json.loads(body)
    assert error["code"] == 14 and error["name"] == "invalid declarative configuration"
    port_error = "value should be between 0 and 65535"
    assert error["message"] == f'declarative config is invalid: {{services={{{{port="{port_error}"}}}}}}'
    assert error["fields"] == {"services": [{"port": "value should be between 0 and 65535"}]}
    assert "flattened_errors" not in error
    assert node.hash() == before
    assert node.get("/realtime/v1/api/tenants", {"apikey": "anon-key"})[0] == 403  # still the old routes


def test_3_x_flattens_errors_on_request_with_the_whole_entity(start_node: Callable[..., Node]) -> None:
    node = start_node("3.9.3")
    status, _, body = node.admin("POST", "/config?flatten_errors=1", REFUSED)
    assert status == 400
    flat = json.loads(body)["flattened_errors"]
    assert flat == [
        {
            "entity_type": "service",
            "entity_name": "broken",
            "entity_id": None,
            "entity_tags": None,
            "errors": [{"type": "field", "field": "port", "message": "value should be between 0 and 65535"}],
            "entity": {"name": "broken", "host": "x", "port": -12},
        }
    ]


def test_bad_requests_get_kongs_answers(start_node: Callable[..., Node]) -> None:
    node = start_node()
    assert node.admin("POST", "/config", "")[0] == 400
    assert json.loads(node.admin("POST", "/config", "")[2]) == {"message": "expected a declarative configuration"}
    assert node.admin("POST", "/config", "x", content_type="text/plain")[0] == 415
    assert node.admin("POST", "/config", "_format_version: '2.1'\n", content_type="application/yaml")[0] == 415
    assert node.admin("GET", "/config")[0] == 405
    assert node.admin("GET", "/nothing")[0] == 404
    root = json.loads(node.admin("GET", "/")[2])
    assert root["version"] == "2.8.1" and root["tagline"] == "Welcome to kong"


def test_a_json_config_field_is_a_string_config(start_node: Callable[..., Node], upstream: Upstream) -> None:
    node = start_node("3.9.3")
    text = filled(with_route(SUPABASE_LIKE, "/added"), upstream)
    status, _, _ = node.admin("POST", "/config", json.dumps({"config": text}), content_type="application/json")
    assert status == 201
    assert node.hash() == hashlib.md5(text.encode()).hexdigest()


def test_the_admin_api_is_off_when_admin_listen_says_so(start_node: Callable[..., Node]) -> None:
    node = start_node(admin="off")
    with pytest.raises(ConnectionRefusedError):
        node.admin("GET", "/status")
    assert node.get("/realtime/v1/api/tenants", {"apikey": "anon-key"})[0] == 403


def test_a_websocket_open_before_a_post_stays_open_and_new_routes_apply(
    start_node: Callable[..., Node], upstream: Upstream
) -> None:
    node = start_node("3.9.3")
    url = f"ws://127.0.0.1:{node.port}/realtime/v1/websocket?apikey=anon-key&vsn=1.0.0"
    with connect(url, proxy=None, open_timeout=5) as ws:
        ws.send("before")
        assert ws.recv(timeout=5) == "before"
        # a config without the realtime route at all: new handshakes fail, the open one goes on
        without = filled(SUPABASE_LIKE.replace("/realtime/v1/\n", "/elsewhere/\n"), upstream)
        assert node.admin("POST", "/config", without)[0] == 201
        assert wait_for(lambda: node.get("/realtime/v1/api/tenants", {"apikey": "anon-key"})[0] == 403)
        ws.send("after")
        assert ws.recv(timeout=5) == "after"
    assert "signal" not in node.stderr.read_text()


LUA_CLIENT = """
local http, cjson = require "resty.http", require "cjson.safe"
local f = assert(io.open(os.getenv("CONFIG_FILE"), "rb")); local body = f:read("*a"); f:close()
local c = http.new(); c:set_timeout(70000)
local res, err = c:request_uri("http://127.0.0.1:" .. os.getenv("ADMIN_PORT") .. "/config?check_hash=1",
  { method = "POST", body = body, headers = { ["Content-Type"] = "text/yaml" } })
if not res then io.stderr:write("POST failed: ", tostring(err), "\\n"); os.exit(3) end
if res.status ~= 201 and res.status ~= 304 then
  local j = cjson.decode(res.body or "") or {}
  io.stderr:write("HTTP ", res.status, " ", tostring(j.message), "\\n")
  os.exit(res.status == 400 and 2 or 4)
end
local s = assert(http.new():request_uri("http://127.0.0.1:" .. os.getenv("ADMIN_PORT") .. "/status"))
local h = (cjson.decode(s.body) or {}).configuration_hash
print(res.status .. " " .. tostring(h) .. " " .. ngx.md5(body))
os.exit(h == ngx.md5(body) and 0 or 5)
"""


def resty(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(RESTY), "-e", code],
        capture_output=True,
        text=True,
        timeout=30,
        env={"PATH": "/bin", **env},
    )


def test_resty_runs_the_lua_client_real_lua_with_resty_http_cjson_and_ngx_md5(
    start_node: Callable[..., Node], upstream: Upstream, tmp_path: Path
) -> None:
    node = start_node()
    config = tmp_path / "new.yml"
    config.write_text(filled(with_route(SUPABASE_LIKE, "/added"), upstream))
    md5 = hashlib.md5(config.read_bytes()).hexdigest()
    done = resty(LUA_CLIENT, CONFIG_FILE=str(config), ADMIN_PORT=str(node.admin_port))
    assert (done.returncode, done.stdout) == (0, f"201 {md5} {md5}\n"), done.stderr
    again = resty(LUA_CLIENT, CONFIG_FILE=str(config), ADMIN_PORT=str(node.admin_port))
    assert (again.returncode, again.stdout) == (0, f"304 {md5} {md5}\n"), again.stderr
    config.write_text(REFUSED)
    refused = resty(LUA_CLIENT, CONFIG_FILE=str(config), ADMIN_PORT=str(node.admin_port))
    assert refused.returncode == 2
    assert refused.stderr.startswith("HTTP 400 declarative config is invalid: {services=")
    closed = resty(LUA_CLIENT, CONFIG_FILE=str(config), ADMIN_PORT=str(free_port()))
    assert (closed.returncode, closed.stderr) == (3, "POST failed: connection refused\n")


def test_resty_exits_0_when_the_code_ends_without_os_exit() -> None:
    done = resty('print("done")')
    assert (done.returncode, done.stdout, done.stderr) == (0, "done\n", "")


def test_resty_reports_a_lua_error_like_resty_and_exits_1() -> None:
    done = resty("local x = nil; x.y = 1")
    assert done.returncode == 1
    assert done.stderr.startswith("ERROR: (command line -e):1: attempt to index")
