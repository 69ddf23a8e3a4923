"""The Kong stand-in playing today's self-hosted Supabase: kong/kong:3.9.3 started by the
sandbox's kong-entrypoint.sh (run for real by busybox sh, awk and sed), the expressions
router, request-transformer Lua templates and post-function evaluated by LuaJIT.

The entrypoint reads /home/kong/temp.yml and ends with `exec /entrypoint.sh kong
docker-start`; here those two anchors are pointed at a temporary file and at the stand-in,
the way supakong re-runs a host's entrypoint (the container test runs it unchanged).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from ports import free_port
from test_kong_standin import REALTIME_HOST, STANDIN, Kong, Upstream, kong_env, wait_for_port
from websockets.sync.client import connect

REPO = Path(__file__).resolve().parents[2]
ENTRYPOINT = REPO / "supakong/sandbox/kong-entrypoint.sh"
UPSTREAM_2026 = REPO / "tests/unit/kong/fixtures/supabase_2026_kong.yml"
MODERN_PLUGINS = "request-transformer,cors,key-auth,acl,basic-auth,request-termination,ip-restriction,post-function"
BUSYBOX = shutil.which("busybox") or "/bin/busybox"

_EC_KEY = ec.generate_private_key(ec.SECP256R1())
_NOW = int(time.time())
KEYS = {
    "SUPABASE_ANON_KEY": jwt.encode({"role": "anon", "exp": _NOW + 3600}, "legacy-secret-0123456789abcdefghijk"),
    "SUPABASE_SERVICE_KEY": jwt.encode(
        {"role": "service_role", "exp": _NOW + 3600}, "legacy-secret-0123456789abcdefghijk"
    ),
    "SUPABASE_PUBLISHABLE_KEY": "sb_publishable_0123456789abcdefghijkl_abcdefgh",
    "SUPABASE_SECRET_KEY": "sb_secret_0123456789abcdefghij_abcdefgh",
    "ANON_KEY_ASYMMETRIC": jwt.encode({"role": "anon", "iss": "supabase"}, _EC_KEY, "ES256", {"kid": "k1"}),
    "SERVICE_ROLE_KEY_ASYMMETRIC": jwt.encode(
        {"role": "service_role", "iss": "supabase"}, _EC_KEY, "ES256", {"kid": "k1"}
    ),
    "DASHBOARD_USERNAME": "supabase",
    "DASHBOARD_PASSWORD": "dashboard-password",
    "JWT_ISSUER": "http://api.example.com/auth/v1",
}
LEGACY = {**KEYS, "SUPABASE_PUBLISHABLE_KEY": "", "SUPABASE_SECRET_KEY": ""}


def supabase_file(port: int) -> str:
    """Supabase's 2026 kong.yml with every upstream pointed at the test upstream."""
    text = UPSTREAM_2026.read_text()
    text = re.sub(r"http://(auth|rest|storage|functions|meta|studio):\d+", f"http://127.0.0.1:{port}", text)
    return text.replace("realtime-dev.supabase-realtime:4000", f"{REALTIME_HOST}:{port}")


def runnable_entrypoint(tmp_path: Path, template: Path) -> Path:
    """The script with its input file and its final exec pointed at this test's files."""
    script = ENTRYPOINT.read_text()
    assert "/home/kong/temp.yml" in script and "exec /entrypoint.sh kong docker-start" in script
    script = script.replace("/home/kong/temp.yml", str(template)).replace(
        "exec /entrypoint.sh kong docker-start", f'exec "{sys.executable}" "{STANDIN}" docker-start'
    )
    path = tmp_path / "kong-entrypoint.sh"
    path.write_text(script)
    return path


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    with Upstream() as server:
        yield server


@pytest.fixture
def start_modern_kong(tmp_path: Path, upstream: Upstream) -> Iterator[Callable[..., Kong]]:
    """Run the entrypoint under busybox sh, as the 2026 compose runs it (`/bin/sh ...`)."""
    started: list[Kong] = []

    def start(keys: dict[str, str] = KEYS, config: str | None = None) -> Kong:
        template = tmp_path / "temp.yml"
        template.write_text(config if config is not None else supabase_file(upstream.port))
        port = free_port()
        env = kong_env(
            tmp_path,
            "3.9.3",
            KONG_DECLARATIVE_CONFIG=str(tmp_path / "kong.yml"),
            KONG_PROXY_LISTEN=f"127.0.0.1:{port}",
            KONG_ROUTER_FLAVOR="expressions",
            KONG_PLUGINS=MODERN_PLUGINS,
            **keys,
        )
        out, err = tmp_path / f"out-{len(started)}.log", tmp_path / f"err-{len(started)}.log"
        with out.open("wb") as stdout, err.open("wb") as stderr:
            process = subprocess.Popen(
                [BUSYBOX, "sh", str(runnable_entrypoint(tmp_path, template))], env=env, stdout=stdout, stderr=stderr
            )
        started.append(Kong(port, process, out, err))
        wait_for_port(port, process, err)
        return started[-1]

    yield start
    for instance in started:
        instance.stop()


def seen_upstream(kong: Kong, path: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    status, _, body = kong.get(path, headers)
    assert status == 200, body
    return dict(json.loads(body))


def lower(headers: dict[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


# ------------------------------------------------------------------ the entrypoint
def test_entrypoint_substitutes_names_keeps_quotes_and_unknown_names_and_drops_empty_keys(
    start_modern_kong: Callable[..., Kong], tmp_path: Path
) -> None:
    config = (
        "_format_version: '2.1'\n"
        "consumers:\n  - username: anon\n    keyauth_credentials:\n"
        "      - key: $SUPABASE_ANON_KEY\n      - key: $SUPABASE_PUBLISHABLE_KEY\n"
        '    custom_id: "$NOT_A_VARIABLE"\n'
        "routes:\n  - name: oauth\n    paths:\n      - $WELL_KNOWN_OAUTH_PATH\n"
    )
    start_modern_kong(LEGACY, config)
    rendered = (tmp_path / "kong.yml").read_text()
    assert f"- key: {LEGACY['SUPABASE_ANON_KEY']}\n" in rendered
    assert "$SUPABASE_PUBLISHABLE_KEY" not in rendered and rendered.count("- key:") == 1  # the empty one is gone
    assert 'custom_id: "$NOT_A_VARIABLE"' in rendered  # unknown name and double quotes kept
    assert "- /.well-known/oauth-authorization-server/auth/v1\n" in rendered  # from JWT_ISSUER


def test_entrypoint_refuses_an_issuer_that_is_not_a_url(tmp_path: Path) -> None:
    template = tmp_path / "temp.yml"
    template.write_text("_format_version: '2.1'\n")
    result = subprocess.run(
        [BUSYBOX, "sh", str(runnable_entrypoint(tmp_path, template))],
        env={"PATH": "/usr/bin:/bin", "JWT_ISSUER": "api.example.com", "KONG_DECLARATIVE_CONFIG": str(tmp_path / "k")},
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert result.returncode == 1
    assert result.stdout == "ERROR: JWT_ISSUER must start with http:// or https:// (got: api.example.com)\n"


def test_supabases_2026_file_loads_after_the_entrypoint(start_modern_kong: Callable[..., Kong]) -> None:
    gateway = start_modern_kong()
    assert "declarative config loaded from" in gateway.stderr.read_text()


# ------------------------------------------------------------------ the Realtime WebSocket
def test_a_publishable_key_reaches_realtime_as_the_asymmetric_jwt(start_modern_kong: Callable[..., Kong]) -> None:
    gateway = start_modern_kong()
    url = f"ws://127.0.0.1:{gateway.port}/realtime/v1/websocket?vsn=2.0.0&apikey={KEYS['SUPABASE_PUBLISHABLE_KEY']}"
    with connect(url, proxy=None, open_timeout=5) as ws:
        ws.send("whoami")
        seen = json.loads(ws.recv(timeout=5))
    assert lower(seen["headers"])["x-api-key"] == KEYS["ANON_KEY_ASYMMETRIC"]
    # request-transformer rewrites the query string in sorted order (kong.service.request.set_query)
    assert seen["path"] == f"/socket/websocket?apikey={KEYS['ANON_KEY_ASYMMETRIC']}&vsn=2.0.0"


def test_a_secret_key_becomes_the_service_role_jwt(start_modern_kong: Callable[..., Kong]) -> None:
    gateway = start_modern_kong()
    seen = seen_upstream(gateway, f"/realtime/v1/websocket?apikey={KEYS['SUPABASE_SECRET_KEY']}")
    assert lower(seen["headers"])["x-api-key"] == KEYS["SERVICE_ROLE_KEY_ASYMMETRIC"]


def test_a_legacy_key_passes_through_unchanged(start_modern_kong: Callable[..., Kong]) -> None:
    gateway = start_modern_kong(LEGACY)
    seen = seen_upstream(gateway, f"/realtime/v1/websocket?apikey={KEYS['SUPABASE_ANON_KEY']}")
    assert lower(seen["headers"])["x-api-key"] == KEYS["SUPABASE_ANON_KEY"]


def test_an_unknown_key_is_refused_with_kong_3s_error_body(start_modern_kong: Callable[..., Kong]) -> None:
    status, headers, body = start_modern_kong().get("/realtime/v1/websocket?apikey=sb_publishable_stale")
    assert status == 401 and headers["WWW-Authenticate"] == "Key"
    assert json.loads(body) == {"message": "Unauthorized", "request_id": headers["X-Kong-Request-Id"]}


# ------------------------------------------------------------------ REST: the expression route
def test_the_rest_root_expression_route_admits_only_the_admin_group(start_modern_kong: Callable[..., Kong]) -> None:
    gateway = start_modern_kong()
    status, _, body = gateway.get("/rest/v1/", {"apikey": KEYS["SUPABASE_PUBLISHABLE_KEY"]})
    assert (status, json.loads(body)["message"]) == (403, "You cannot consume this service")
    seen = seen_upstream(gateway, "/rest/v1/", {"apikey": KEYS["SUPABASE_SECRET_KEY"]})
    assert seen["path"] == "/"
    assert lower(seen["headers"])["authorization"] == f"Bearer {KEYS['SERVICE_ROLE_KEY_ASYMMETRIC']}"


def test_other_rest_paths_take_the_prefix_route(start_modern_kong: Callable[..., Kong]) -> None:
    seen = seen_upstream(start_modern_kong(), "/rest/v1/items?select=id", {"apikey": KEYS["SUPABASE_PUBLISHABLE_KEY"]})
    assert seen["path"] == "/items?select=id"
    assert lower(seen["headers"])["authorization"] == f"Bearer {KEYS['ANON_KEY_ASYMMETRIC']}"


def test_a_user_session_jwt_is_not_replaced(start_modern_kong: Callable[..., Kong]) -> None:
    session = "Bearer eyJ.user.session"
    headers = {"apikey": KEYS["SUPABASE_PUBLISHABLE_KEY"], "Authorization": session}
    seen = seen_upstream(start_modern_kong(), "/rest/v1/items", headers)
    assert lower(seen["headers"])["authorization"] == session


def test_proxied_answers_carry_kong_3s_via_and_request_id(start_modern_kong: Callable[..., Kong]) -> None:
    _, headers, _ = start_modern_kong().get("/rest/v1/items", {"apikey": KEYS["SUPABASE_PUBLISHABLE_KEY"]})
    assert headers["Via"] == "1.1 kong/3.9.3" and len(headers["X-Kong-Request-Id"]) == 32


# ------------------------------------------------------------------ post-function
def test_storage_without_credentials_gets_no_authorization_header(start_modern_kong: Callable[..., Kong]) -> None:
    # LUA_AUTH_EXPR is nil: "Authorization: $(...)" renders " " (the space after the colon);
    # the route's post-function clears that blank header before Storage sees it.
    seen = seen_upstream(start_modern_kong(), "/storage/v1/object/public/a.png")
    assert "authorization" not in lower(seen["headers"])


def test_functions_get_the_translated_key_and_never_a_client_supplied_one(
    start_modern_kong: Callable[..., Kong],
) -> None:
    gateway = start_modern_kong()
    spoofed = seen_upstream(gateway, "/functions/v1/hello", {"sb-api-key": "spoof"})
    assert "sb-api-key" not in lower(spoofed["headers"])
    seen = seen_upstream(gateway, "/functions/v1/hello", {"apikey": KEYS["SUPABASE_PUBLISHABLE_KEY"]})
    assert lower(seen["headers"])["sb-api-key"] == KEYS["ANON_KEY_ASYMMETRIC"]


def test_a_failing_template_answers_500_like_kong(start_modern_kong: Callable[..., Kong], upstream: Upstream) -> None:
    config = (
        "_format_version: '2.1'\nservices:\n  - name: s\n"
        f"    url: http://127.0.0.1:{upstream.port}/\n    routes:\n      - name: r\n        paths: [/t]\n"
        "    plugins:\n      - name: request-transformer\n        config:\n          add:\n"
        "            headers: ['x-a:$(headers.missing.field)']\n"
    )
    gateway = start_modern_kong(LEGACY, config)
    status, _, body = gateway.get("/t")
    assert (status, json.loads(body)["message"]) == (500, "An unexpected error occurred")
    assert "[request-transformer] failed to render the template" in gateway.stderr.read_text()
