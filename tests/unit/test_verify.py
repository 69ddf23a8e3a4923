"""Tests of supakong.verify: the diagnosis tables, the Phoenix wire format, and the staged
probe against the sandbox's Kong and Realtime stand-ins running on 127.0.0.1 (tests/gateway.py),
plus a small fake for the faults neither of them produces (each such test says why).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
import http
import ipaddress
import json
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from gateway import Gateway, start_gateway, supabase_key
from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from supakong import verify_phoenix as phx
from supakong.errors import VerifyError
from supakong.verify import (
    CHANNEL_ERROR,
    SUBSCRIBED,
    TIMED_OUT,
    ChannelSpec,
    Diagnosis,
    StageResult,
    VerifyReport,
    diagnose_handshake,
    diagnose_join_error,
    diagnose_system_error,
    format_report,
    raise_if_failed,
    realtime_websocket_url,
    verify_realtime,
    verify_realtime_async,
)
from supakong.verify_diagnose import KONG, REALTIME, UNKNOWN, HostHints, answer_source, for_host
from supakong.verify_transport import describe_connect_error

GOOD_KEY = "eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoiYW5vbiJ9.c3VwYWtvbmctdGVzdC1hbm9uLWtleQ"
KONG_SERVER = [("Server", "kong/2.8.1")]
VIA_KONG = [("Via", "kong/2.8.1")]


# =========================================================================== pure: URL


def test_http_public_url_becomes_ws_realtime_url_with_key_and_vsn() -> None:
    url = realtime_websocket_url("http://h:8000", "k", "2.0.0")
    assert url == "ws://h:8000/realtime/v1/websocket?apikey=k&vsn=2.0.0"


def test_https_public_url_becomes_wss_and_keeps_its_path_prefix() -> None:
    url = realtime_websocket_url("https://api.example.com/supa/", "k", "1.0.0")
    assert url == "wss://api.example.com/supa/realtime/v1/websocket?apikey=k&vsn=1.0.0"


def test_public_url_without_http_scheme_is_refused() -> None:
    with pytest.raises(VerifyError, match="public URL"):
        realtime_websocket_url("ftp://h:8000", "k")


# =========================================================================== pure: handshake


def _json(obj: dict[str, Any]) -> str:
    return json.dumps(obj)


HANDSHAKE_CASES = [
    pytest.param(
        401,
        _json({"message": "No API key found in request"}),
        KONG_SERVER,
        "no apikey",
        "key_in_query",
        id="kong_missing_key_is_a_missing_key",
    ),
    pytest.param(
        401,
        _json({"message": "Invalid authentication credentials"}),
        KONG_SERVER,
        "keyauth_credentials",
        "restart the kong container",
        id="kong_invalid_credentials_is_a_stale_key",
    ),
    pytest.param(
        401,
        _json({"message": "Unauthorized", "request_id": "x"}),
        KONG_SERVER,
        "keyauth_credentials",
        "ANON_KEY",
        id="kong3_unauthorized_is_a_stale_key",
    ),
    pytest.param(
        403,
        _json({"message": "You cannot consume this service"}),
        KONG_SERVER,
        "acl",
        "allow",
        id="kong_acl_refusal_names_the_acl_group",
    ),
    pytest.param(
        404,
        _json({"message": "no Route matched with those values"}),
        KONG_SERVER,
        "no route",
        "realtime-v1-ws",
        id="kong_no_route_is_a_missing_realtime_route",
    ),
    pytest.param(
        503,
        _json({"message": "name resolution failed"}),
        KONG_SERVER,
        "cannot resolve",
        "KONG_DNS_ORDER",
        id="kong_name_resolution_failure_is_an_upstream_dns_problem",
    ),
    pytest.param(
        502,
        _json({"message": "An invalid response was received from the upstream server"}),
        KONG_SERVER,
        "Realtime",
        "4000",
        id="bad_gateway_is_realtime_down_or_wrong_port",
    ),
    pytest.param(
        404,
        _json({"error": "Tenant not found"}),
        VIA_KONG,
        "tenant",
        "preserve_host",
        id="realtime_tenant_not_found_is_a_tenant_mismatch",
    ),
    pytest.param(
        403, "", VIA_KONG, "tenant", "SELF_HOST_TENANT_NAME", id="old_realtime_empty_403_is_a_tenant_mismatch"
    ),
    pytest.param(
        401,
        _json({"error": "Failed to validate JWT signature"}),
        VIA_KONG,
        "API_JWT_SECRET",
        "JWT_SECRET",
        id="realtime_bad_signature_is_a_jwt_secret_mismatch",
    ),
    pytest.param(
        401,
        _json({"error": "Token has expired"}),
        VIA_KONG,
        "expired",
        "exp",
        id="realtime_expired_token_is_an_expired_key",
    ),
    pytest.param(
        401,
        _json({"error": "The token provided is not a valid JWT"}),
        VIA_KONG,
        "not a JWT",
        "request-transformer",
        id="realtime_non_jwt_token",
    ),
    pytest.param(
        401,
        _json({"error": "API key is missing"}),
        VIA_KONG,
        "not forwarding",
        "hide_credentials",
        id="realtime_missing_api_key_means_kong_is_not_forwarding_it",
    ),
    pytest.param(
        426,
        "Upgrade Required",
        [],
        "upgrade headers were lost",
        "Upgrade",
        id="plain_426_means_a_proxy_drops_the_upgrade",
    ),
]


@pytest.mark.parametrize(("status", "body", "headers", "in_cause", "in_fix"), HANDSHAKE_CASES)
def test_handshake_refusals_name_their_cause(
    status: int, body: str, headers: list[tuple[str, str]], in_cause: str, in_fix: str
) -> None:
    diagnosis = diagnose_handshake(status, body, dict(headers))
    assert in_cause.lower() in diagnosis.cause.lower()
    assert in_fix.lower() in diagnosis.fix.lower()
    assert diagnosis.status == status


def test_unknown_handshake_status_is_reported_like_supabase_js_would() -> None:
    diagnosis = diagnose_handshake(418, "teapot", {})
    assert "HTTP 418" in diagnosis.cause and "CHANNEL_ERROR" in diagnosis.cause
    assert diagnosis.body == "teapot"


def test_redirected_handshake_names_the_target_because_browsers_do_not_follow_it() -> None:
    diagnosis = diagnose_handshake(301, "", {"Location": "https://api.example.com/x"})
    assert "redirected to https://api.example.com/x" in diagnosis.cause


def test_handshake_body_is_trimmed_to_about_300_chars() -> None:
    diagnosis = diagnose_handshake(500, "x" * 5000, {})
    assert len(diagnosis.body) <= 300


@pytest.mark.parametrize(
    ("status", "body", "headers", "source"),
    [
        pytest.param(401, '{"message":"Unauthorized"}', {}, KONG, id="kong_body_shape"),
        pytest.param(401, '{"error":"Token has expired"}', {}, REALTIME, id="realtime_body_shape"),
        pytest.param(401, "nope", {"server": "kong/3.9.1"}, KONG, id="kong_server_header"),
        pytest.param(401, "", {"WWW-Authenticate": 'Key realm="kong"'}, KONG, id="key_auth_challenge"),
        pytest.param(404, "nope", {"Via": "1.1 kong/3.9.1"}, REALTIME, id="proxied_via_kong"),
        pytest.param(403, "", {}, REALTIME, id="empty_403_is_old_realtime"),
        pytest.param(401, "nope", {}, UNKNOWN, id="no_marker_is_unknown"),
    ],
)
def test_answer_source_tells_kong_from_realtime(status: int, body: str, headers: dict[str, str], source: str) -> None:
    assert answer_source(status, body, headers) == source


# =========================================================================== pure: join/system


@pytest.mark.parametrize(
    ("reason", "in_cause"),
    [
        pytest.param(
            "TenantNotFound: Tenant with the given ID does not exist",
            "tenant",
            id="join_tenant_not_found_is_a_tenant_mismatch",
        ),
        pytest.param(
            "JwtSignatureError: Failed to validate JWT signature",
            "API_JWT_SECRET",
            id="join_signature_error_is_a_jwt_secret_mismatch",
        ),
        pytest.param("InvalidJWTToken: Token has expired 30 seconds ago", "expired", id="join_expired_token"),
        pytest.param("InvalidJWTToken: Fields `role` and `exp` are required in JWT", "role", id="join_missing_claims"),
        pytest.param("ChannelRateLimitReached: Too many channels", "channel limit", id="join_channel_limit"),
        pytest.param(
            "Unauthorized: You do not have permissions to read from this Channel topic: x", "RLS", id="join_rls_refusal"
        ),
        pytest.param("PrivateOnly: This project only allows private channels", "private", id="join_private_only"),
        pytest.param(
            "UnableToConnectToProject: Realtime was unable to connect to the project database",
            "database",
            id="join_database_unreachable",
        ),
        pytest.param("Unknown Error on Channel", "unexpected", id="join_unknown_error"),
    ],
)
def test_join_errors_name_their_cause(reason: str, in_cause: str) -> None:
    diagnosis = diagnose_join_error(reason)
    assert in_cause.lower() in diagnosis.cause.lower()
    assert diagnosis.body == reason


def test_unrecognised_join_error_keeps_the_reason() -> None:
    diagnosis = diagnose_join_error("BrandNewCode: something odd")
    assert "BrandNewCode: something odd" in diagnosis.cause


@pytest.mark.parametrize(
    "message",
    [
        pytest.param(
            "Subscription insert failed with 0 rows. Check that tables are part of "
            "publication supabase_realtime and subscription params are correct: "
            '%{"event" => "*", "schema" => "public", "table" => "wells"}',
            id="old_wording",
        ),
        pytest.param(
            "Unable to subscribe to changes with given parameters. Please check Realtime "
            "is enabled for the given connect parameters: [event: *, schema: public, "
            "table: wells, filters: [], select: nil]",
            id="current_wording",
        ),
    ],
)
def test_table_missing_from_publication_says_how_to_add_it(message: str) -> None:
    diagnosis = diagnose_system_error(message)
    assert "supabase_realtime publication" in diagnosis.cause
    assert diagnosis.fix == "alter publication supabase_realtime add table public.wells;"


@pytest.mark.parametrize(
    ("message", "in_cause"),
    [
        pytest.param(
            "Unable to subscribe to changes with given parameters. An exception "
            "happened so please check your connect parameters: [...]. Exception: "
            'ERROR 42P01 (undefined_table) relation "public.wellz" does not exist',
            "does not exist",
            id="missing_table",
        ),
        pytest.param("Replication connection was not established in time", "replication", id="replication_not_ready"),
        pytest.param("something new", "something new", id="unknown_keeps_message"),
    ],
)
def test_system_errors_name_their_cause(message: str, in_cause: str) -> None:
    assert in_cause in diagnose_system_error(message).cause


def test_unresolvable_name_is_described_as_such() -> None:
    assert describe_connect_error(socket.gaierror(-2, "Name or service not known")) == ("name not resolved")


# =========================================================================== pure: phoenix


def test_join_payload_is_what_supabase_js_sends() -> None:
    assert phx.join_payload(ChannelSpec(), "KEY") == {
        "config": {
            "broadcast": {"ack": True, "self": True},
            "presence": {"enabled": False, "key": ""},
            "postgres_changes": [{"event": "*", "schema": "public", "table": "wells"}],
            "private": False,
        },
        "access_token": "KEY",
    }


def test_channel_without_table_sends_no_postgres_changes_binding() -> None:
    payload = phx.join_payload(ChannelSpec(table=""), "KEY")
    assert payload["config"]["postgres_changes"] == []


def test_vsn2_frames_are_arrays_and_vsn1_frames_are_objects() -> None:
    message = phx.PhoenixMessage("realtime:x", "phx_join", {"a": 1}, "1", "1")
    assert json.loads(phx.encode(message, "2.0.0")) == ["1", "1", "realtime:x", "phx_join", {"a": 1}]
    assert json.loads(phx.encode(message, "1.0.0")) == {
        "topic": "realtime:x",
        "event": "phx_join",
        "payload": {"a": 1},
        "ref": "1",
        "join_ref": "1",
    }
    assert phx.decode('["1","2","t","phx_reply",{"status":"ok","response":{}}]', "2.0.0") == (
        phx.PhoenixMessage("t", "phx_reply", {"status": "ok", "response": {}}, "2", "1")
    )
    assert phx.decode('{"topic":"t","event":"e","payload":{},"ref":null}', "1.0.0") == (
        phx.PhoenixMessage("t", "e", {}, None, None)
    )


def test_binary_user_broadcast_frame_is_decoded() -> None:
    frame = _user_broadcast_frame("realtime:x", phx.BROADCAST_EVENT, {"nonce": "n"})
    message = phx.decode(frame, "2.0.0")
    assert message is not None and phx.is_echo(message, "realtime:x", "n")


@pytest.mark.parametrize(
    ("server", "matches"),
    [
        pytest.param(None, True, id="no_server_bindings_is_accepted"),
        pytest.param([{"event": "*", "schema": "public", "table": "wells", "id": 1}], True, id="same_binding_with_id"),
        pytest.param([{"event": "*", "schema": "public", "table": "other", "id": 1}], False, id="other_table"),
        pytest.param(
            [{"event": "*", "schema": "public", "table": "wells", "filter": "id=eq.1"}], False, id="extra_filter"
        ),
        pytest.param([], False, id="binding_missing"),
    ],
)
def test_bindings_are_compared_like_supabase_js(server: Any, matches: bool) -> None:
    response = {} if server is None else {"postgres_changes": server}
    assert phx.bindings_match(phx.sent_bindings(ChannelSpec()), response) is matches


# =========================================================================== pure: report


def _report(state: str, *stages: StageResult, diagnosis: Diagnosis | None = None) -> VerifyReport:
    return VerifyReport("ws://h/realtime/v1/websocket?apikey=***&vsn=2.0.0", state, stages, diagnosis)


def test_report_is_ok_only_when_subscribed_and_every_stage_passed() -> None:
    good = StageResult("join", True, 0.01, "ok")
    bad = StageResult("postgres_changes", False, 0.01, "error")
    assert _report(SUBSCRIBED, good).ok
    assert not _report(SUBSCRIBED, good, bad).ok
    assert not _report(CHANNEL_ERROR, good).ok


def test_format_report_shows_stages_state_cause_and_fix() -> None:
    report = _report(
        CHANNEL_ERROR,
        StageResult("tcp", True, 0.001, "connected to h:8000"),
        StageResult("upgrade", False, 0.012, "401 Unauthorized: Invalid credentials"),
        diagnosis=Diagnosis("stale key", "restart kong", 401, '{"message":"x"}'),
    )
    lines = format_report(report)
    assert lines[1] == "  ✓ tcp                  1 ms  connected to h:8000"
    assert lines[2].startswith("  ✗ upgrade             12 ms  401 Unauthorized")
    assert lines[3:] == [
        "CHANNEL_ERROR",
        "  cause: stale key",
        "  fix:   restart kong",
        '  got:   HTTP 401  {"message":"x"}',
    ]
    with pytest.raises(VerifyError, match="stale key"):
        raise_if_failed(report)


# =========================================================================== the servers

# Traffic tests speak to the sandbox's own Kong and Realtime stand-ins (tests/gateway.py: two
# processes on 127.0.0.1, Kong in front with the config the project's template renders), the
# servers the official clients are checked against (tests/standins). A few faults neither
# Kong nor Realtime produces (a join left unanswered, a missing heartbeat reply…) come from
# FaultyRealtime below; each test using it says why the stand-ins cannot.


@pytest.fixture(scope="module")
def gateways(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Gateway]]:
    """Gateways by variant, started on first use and stopped with the module."""
    started: dict[str, Gateway] = {}

    def gateway(variant: str = "healthy", **options: Any) -> Gateway:
        if variant not in started:
            started[variant] = start_gateway(tmp_path_factory.mktemp(variant), **options)
        return started[variant]

    yield gateway
    for running in started.values():
        running.stop()


@pytest.fixture(scope="module")
def gateway(gateways: Callable[..., Gateway]) -> Gateway:
    """Kong and Realtime as Supabase runs them, healthy."""
    return gateways()


def verify(gateway: Gateway, **kwargs: Any) -> VerifyReport:
    return verify_realtime(gateway.public_url, kwargs.pop("key", gateway.anon_key), **kwargs)


def stage_of(report: VerifyReport, name: str) -> StageResult:
    found = report.stage(name)
    assert found is not None, f"stage {name} did not run: {format_report(report)}"
    return found


def names(report: VerifyReport) -> list[str]:
    return [stage.name for stage in report.stages]


def assert_key_never_shown(report: VerifyReport, key: str) -> None:
    assert key not in repr(report)
    assert key not in "\n".join(format_report(report))
    assert "apikey=***" in report.url


# =========================================================================== traffic: success


def test_healthy_realtime_behind_kong_is_subscribed_and_every_stage_passes(gateway: Gateway) -> None:
    report = verify(gateway)
    assert report.state == SUBSCRIBED and report.ok, format_report(report)
    assert names(report) == ["tcp", "upgrade", "join", "postgres_changes", "heartbeat", "broadcast", "negative_key"]
    assert stage_of(report, "upgrade").detail == "101 Switching Protocols, Sec-WebSocket-Accept valid (via kong/2.8.1)"
    assert stage_of(report, "postgres_changes").detail == "Subscribed to PostgreSQL"
    assert stage_of(report, "negative_key").detail == "refused by Kong with 401 Invalid authentication credentials"
    assert report.diagnosis is None
    assert_key_never_shown(report, gateway.anon_key)


def test_vsn1_object_frames_work_too(gateway: Gateway) -> None:
    report = verify(gateway, vsn="1.0.0")
    assert report.ok, format_report(report)
    assert report.url.endswith("vsn=1.0.0")


def test_channel_without_table_skips_the_postgres_changes_stage(gateway: Gateway) -> None:
    report = verify(gateway, channel=ChannelSpec(table=""), negative_probe=False)
    assert report.ok and names(report) == ["tcp", "upgrade", "join", "heartbeat", "broadcast"]


def test_the_async_probe_runs_in_a_loop_of_the_callers(gateway: Gateway) -> None:
    async def scenario() -> VerifyReport:
        return await verify_realtime_async(gateway.public_url, gateway.anon_key, negative_probe=False)

    report = asyncio.run(scenario())
    assert report.ok, format_report(report)


# =========================================================================== traffic: refusals


@pytest.mark.parametrize(
    ("variant", "key", "status", "in_cause"),
    [
        pytest.param("healthy", "stale", 401, "keyauth_credentials", id="kong_stale_key_is_channel_error"),
        pytest.param("no-route", "anon", 404, "no route", id="kong_missing_route_is_channel_error"),
        pytest.param("unresolvable", "anon", 503, "cannot resolve", id="kong_upstream_dns_is_channel_error"),
        pytest.param("other-tenant", "anon", 404, "tenant", id="realtime_tenant_mismatch_is_channel_error"),
        pytest.param("old-realtime", "anon", 403, "empty 403", id="old_realtime_403_is_channel_error"),
    ],
)
def test_refused_handshake_is_channel_error_with_its_cause(
    gateways: Callable[..., Gateway], variant: str, key: str, status: int, in_cause: str
) -> None:
    options: dict[str, Any] = {
        "healthy": {},
        "no-route": {"edit": lambda config: config.replace("- /realtime/v1/\n", "- /realtime/v9/\n")},
        "unresolvable": {"upstream_host": "nowhere.supabase-internal"},
        "other-tenant": {"realtime_env": {"SELF_HOST_TENANT_NAME": "another-tenant"}},
        "old-realtime": {"realtime_env": {"REALTIME_VERSION": "v2.30.0", "SELF_HOST_TENANT_NAME": "another-tenant"}},
    }[variant]
    gateway = gateways(variant, **options)
    apikey = gateway.anon_key if key == "anon" else supabase_key("anon", "a-secret-this-kong-never-had-0123456789")
    report = verify(gateway, key=apikey)
    assert report.state == CHANNEL_ERROR, format_report(report)
    assert names(report) == ["tcp", "upgrade"] and not stage_of(report, "upgrade").ok
    assert report.diagnosis is not None and in_cause.lower() in report.diagnosis.cause.lower()
    assert report.diagnosis.status == status
    assert_key_never_shown(report, apikey)


def test_apikey_echoed_by_the_server_is_masked_everywhere_in_the_report() -> None:
    """Neither Kong nor Realtime repeats the key in an answer; a proxy in front might."""
    echo = kong_refusal(401, f"key {GOOD_KEY} unknown; try ?apikey={GOOD_KEY}")
    report = probe(Behaviour(refuse=echo))
    assert report.diagnosis is not None and "***" in report.diagnosis.body
    assert_key_never_shown(report, GOOD_KEY)


def test_redirect_is_not_followed_like_in_a_browser() -> None:
    """Kong redirects only for https-only routes, and the Kong stand-in serves plain HTTP:
    the redirect comes from a fake (as from a proxy in front)."""
    redirect = _http(301, "", [("Location", "http://127.0.0.1:1/elsewhere")])
    report = probe(Behaviour(refuse=redirect))
    assert report.state == CHANNEL_ERROR
    assert report.diagnosis is not None and "redirected" in report.diagnosis.cause


def test_closed_port_is_kong_not_reachable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    report = verify_realtime(f"http://127.0.0.1:{port}", GOOD_KEY, timeout=1.0)
    assert report.state == CHANNEL_ERROR and names(report) == ["tcp"]
    assert report.diagnosis == Diagnosis(
        f"Kong is not reachable at 127.0.0.1:{port} (connection refused)",
        "start the Kong container / check the port and firewall",
    )


def test_server_that_never_answers_the_handshake_is_timed_out() -> None:
    """Kong and Realtime answer every handshake; something holding it (a stuck proxy) is
    played by a server that reads and never answers."""

    async def scenario() -> VerifyReport:
        async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                await reader.read(65536)
                await asyncio.sleep(2)
            finally:
                writer.close()

        server = await asyncio.start_server(hold, "127.0.0.1", 0)
        async with server:
            port = server.sockets[0].getsockname()[1]
            return await verify_realtime_async(f"http://127.0.0.1:{port}", GOOD_KEY, timeout=0.3)

    report = asyncio.run(scenario())
    assert report.state == TIMED_OUT
    assert names(report) == ["tcp", "upgrade"] and not stage_of(report, "upgrade").ok


# =========================================================================== traffic: channel


def test_table_outside_the_publication_stays_subscribed_but_fails_the_report(gateway: Gateway) -> None:
    report = verify(gateway, channel=ChannelSpec(table="unpublished"))
    assert report.state == SUBSCRIBED and not report.ok
    assert not stage_of(report, "postgres_changes").ok
    assert stage_of(report, "broadcast").ok
    assert report.diagnosis is not None
    assert report.diagnosis.fix == "alter publication supabase_realtime add table public.unpublished;"
    assert "SUBSCRIBED, but failed: postgres_changes" in format_report(report)


def test_join_error_is_channel_error_with_the_reason_diagnosed() -> None:
    """Realtime checks the join's access_token as it checked the handshake's, and the probe
    sends the same key in both: a join refused after an accepted handshake needs a fault."""
    report = probe(Behaviour(join="error"))
    assert report.state == CHANNEL_ERROR
    assert "TenantNotFound" in stage_of(report, "join").detail
    assert report.diagnosis is not None and "preserve_host" in report.diagnosis.fix


def test_unanswered_join_is_timed_out() -> None:
    """A fault: Realtime answers every join."""
    report = probe(Behaviour(join="silent"), timeout=0.3, negative_probe=False)
    assert report.state == TIMED_OUT and names(report) == ["tcp", "upgrade", "join"]


def test_binding_mismatch_is_channel_error_like_supabase_js() -> None:
    """A fault: Realtime binds what it was asked for."""
    report = probe(Behaviour(join="mismatch"), negative_probe=False)
    assert report.state == CHANNEL_ERROR
    assert report.diagnosis is not None
    assert report.diagnosis.cause == ("mismatch between server and client bindings for postgres changes")


def test_socket_closed_during_join_is_channel_error() -> None:
    """A fault: Realtime closing the socket (1011) in the middle of a join."""
    report = probe(Behaviour(join="close"), negative_probe=False)
    assert report.state == CHANNEL_ERROR
    assert "1011" in stage_of(report, "join").detail


def test_missing_heartbeat_reply_fails_the_heartbeat_stage() -> None:
    """A fault: Realtime answers every heartbeat."""
    report = probe(Behaviour(heartbeat=False), timeout=0.3, negative_probe=False)
    assert report.state == SUBSCRIBED and not report.ok
    assert [s.name for s in report.failed_stages] == ["heartbeat"]


def test_missing_self_echo_fails_the_broadcast_stage() -> None:
    """A fault: Realtime echoes a broadcast to its sender when the join asked for self."""
    report = probe(Behaviour(echo="none"), timeout=0.3, negative_probe=False)
    assert [s.name for s in report.failed_stages] == ["broadcast"]
    assert "self-echo" in stage_of(report, "broadcast").detail


def test_binary_user_broadcast_echo_counts_as_the_self_echo() -> None:
    """Realtime sends a V2 socket the binary form of a broadcast that was pushed binary (by
    realtime-js); the probe pushes JSON, which the stand-in, like Realtime, echoes as JSON:
    the binary echo comes from a fake."""
    report = probe(Behaviour(echo="binary"))
    assert stage_of(report, "broadcast").ok, format_report(report)


# =========================================================================== traffic: negative key


def test_kong_accepting_any_key_fails_the_negative_probe(gateways: Callable[..., Gateway]) -> None:
    """key-auth's anonymous fallback lets the invalid key through, and a request-transformer
    puts the anon key in its place: Realtime accepts the connection too (it still refuses
    the join, whose access_token is the invalid key)."""
    swap = "      - name: request-transformer\n        config:\n          replace:\n            querystring:\n"
    swap += f"              - 'apikey:{supabase_key('anon')}'\n"
    report = verify(gateways("any-key", edit=lambda config: with_anonymous(config, swap)))
    assert report.state == SUBSCRIBED and not report.ok, format_report(report)
    stage = stage_of(report, "negative_key")
    assert not stage.ok
    assert stage.detail == (
        "101 with an invalid apikey (join: error: JwtSignatureError: Failed to validate JWT signature)"
    )
    assert report.diagnosis == Diagnosis(
        "Kong accepted an invalid apikey: key-auth `anonymous` fallback is masking bad keys",
        "remove `anonymous:` from the key-auth plugin on the realtime route",
    )


def test_bad_key_refused_only_by_realtime_means_kong_let_it_through(gateways: Callable[..., Gateway]) -> None:
    report = verify(gateways("anonymous", edit=with_anonymous))
    stage = stage_of(report, "negative_key")
    assert not stage.ok, format_report(report)
    assert "refused by Realtime" in stage.detail
    assert report.diagnosis is not None and "anonymous" in report.diagnosis.fix


def with_anonymous(config: str, plugins: str = "") -> str:
    """The rendered config with Kong's anonymous fallback (to the anon consumer) on the
    realtime route's key-auth, and ``plugins`` (YAML list items) after it."""
    head, route, tail = config.partition("  - name: realtime-v1-ws\n")
    key_auth = "      - name: key-auth\n        config:\n          hide_credentials: false\n"
    assert route and key_auth in tail, "the template's realtime route changed"
    return head + route + tail.replace(key_auth, key_auth + "          anonymous: anon\n" + plugins, 1)


# =========================================================================== traffic: TLS


def _make_tls_files(directory: Path) -> tuple[ssl.SSLContext, str]:
    """A throwaway CA and a server certificate for 127.0.0.1 signed by it."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)

    def cert(subject: str, key: Any, issuer: str, issuer_key: Any, ca: bool) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False
            )
        return builder.sign(issuer_key, hashes.SHA256())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = cert("supakong test CA", ca_key, "supakong test CA", ca_key, True)
    leaf = cert("127.0.0.1", leaf_key, "supakong test CA", ca_key, False)
    pem = serialization.Encoding.PEM
    (directory / "ca.pem").write_bytes(ca_cert.public_bytes(pem))
    (directory / "leaf.pem").write_bytes(leaf.public_bytes(pem))
    (directory / "leaf.key").write_bytes(
        leaf_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(directory / "leaf.pem", directory / "leaf.key")
    return server, str(directory / "ca.pem")


@contextlib.asynccontextmanager
async def tls_in_front(port: int, context: ssl.SSLContext) -> AsyncIterator[str]:
    """TLS ended in front of Kong at 127.0.0.1:``port``, as a load balancer does (the Kong
    stand-in serves plain HTTP only); yields the https:// public URL."""

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()

    async def forward(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", port)
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    server = await asyncio.start_server(forward, "127.0.0.1", 0, ssl=context)
    async with server:
        yield f"https://127.0.0.1:{server.sockets[0].getsockname()[1]}"


def test_wss_with_the_right_ca_passes_the_tls_stage(gateway: Gateway, tmp_path: Path) -> None:
    pytest.importorskip("cryptography")
    server_context, ca_file = _make_tls_files(tmp_path)

    async def scenario() -> VerifyReport:
        async with tls_in_front(gateway.kong.port, server_context) as public_url:
            return await verify_realtime_async(public_url, gateway.anon_key, ca_file=ca_file)

    report = asyncio.run(scenario())
    assert report.ok, format_report(report)
    assert names(report)[:3] == ["tcp", "tls", "upgrade"]
    assert report.url.startswith("wss://127.0.0.1:")
    assert "certificate verified for 127.0.0.1" in stage_of(report, "tls").detail


def test_wss_with_an_untrusted_certificate_fails_the_tls_stage(gateway: Gateway, tmp_path: Path) -> None:
    pytest.importorskip("cryptography")
    server_context, _ = _make_tls_files(tmp_path)

    async def scenario() -> VerifyReport:
        async with tls_in_front(gateway.kong.port, server_context) as public_url:
            return await verify_realtime_async(public_url, gateway.anon_key, timeout=2.0)

    report = asyncio.run(scenario())
    assert report.state == CHANNEL_ERROR and names(report) == ["tcp", "tls"]
    assert report.diagnosis is not None and "not trusted" in report.diagnosis.cause


# =========================================================================== the faults' server


def _http(status: int, body: str, headers: list[tuple[str, str]]) -> Response:
    data = body.encode()
    all_headers = Headers(
        [("Content-Type", "application/json; charset=utf-8"), ("Content-Length", str(len(data))), *headers]
    )
    return Response(status, http.HTTPStatus(status).phrase, all_headers, data)


def kong_refusal(status: int, message: str) -> Response:
    return _http(status, json.dumps({"message": message}), KONG_SERVER)


def _user_broadcast_frame(topic: str, event: str, payload: dict[str, Any]) -> bytes:
    head = bytes([4, len(topic), len(event), 0, 1])
    return head + topic.encode() + event.encode() + json.dumps(payload).encode()


@dataclass
class Behaviour:
    """Which fault FaultyRealtime plays; otherwise it answers as the Realtime stand-in does."""

    refuse: Response | None = None  # answer every handshake with this
    join: str = "ok"  # ok | error | silent | mismatch | close
    join_reason: str = "TenantNotFound: Tenant with the given ID does not exist"
    heartbeat: bool = True
    echo: str = "text"  # text | binary | none


class FaultyRealtime:
    """Just enough of Realtime behind Kong (refusing a wrong key as Kong does) to play the
    faults above; no presence_state unless the join enabled presence, as Realtime."""

    def __init__(self, behaviour: Behaviour) -> None:
        self.b = behaviour

    def process_request(self, _conn: ServerConnection, request: Request) -> Response | None:
        if self.b.refuse is not None:
            return self.b.refuse
        key = parse_qs(urlsplit(request.path).query).get("apikey", [""])[0]
        return kong_refusal(401, "Invalid authentication credentials") if key != GOOD_KEY else None

    async def handler(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        vsn = parse_qs(urlsplit(ws.request.path).query).get("vsn", ["1.0.0"])[0]
        v1 = vsn.startswith("1")

        async def send(join_ref: Any, ref: Any, topic: str, event: str, payload: Any) -> None:
            frame: Any = (
                {"topic": topic, "event": event, "payload": payload, "ref": ref}
                if v1
                else [join_ref, ref, topic, event, payload]
            )
            await ws.send(json.dumps(frame))

        async for raw in ws:
            data = json.loads(raw)
            if v1:
                join_ref, ref = data.get("join_ref"), data["ref"]
                topic, event, payload = data["topic"], data["event"], data["payload"]
            else:
                join_ref, ref, topic, event, payload = data
            await self.answer(send, join_ref, ref, topic, event, payload, ws)

    async def answer(
        self,
        send: Callable[..., Awaitable[None]],
        join_ref: Any,
        ref: Any,
        topic: str,
        event: str,
        payload: Any,
        ws: ServerConnection,
    ) -> None:
        ok = {"status": "ok", "response": {}}
        if topic == "phoenix" and event == "heartbeat":
            if self.b.heartbeat:
                await send(None, ref, topic, "phx_reply", ok)
        elif event == "phx_join":
            await self.answer_join(send, join_ref, ref, topic, payload, ws)
        elif event == "broadcast":
            await send(join_ref, ref, topic, "phx_reply", ok)
            if self.b.echo == "text":
                await send(None, None, topic, "broadcast", payload)
            elif self.b.echo == "binary":
                await ws.send(_user_broadcast_frame(topic, payload["event"], payload["payload"]))
        elif event == "phx_leave":
            await send(join_ref, ref, topic, "phx_reply", ok)

    async def answer_join(
        self,
        send: Callable[..., Awaitable[None]],
        join_ref: Any,
        ref: Any,
        topic: str,
        payload: dict[str, Any],
        ws: ServerConnection,
    ) -> None:
        if self.b.join == "silent":
            return
        if self.b.join == "close":
            await ws.close(1011, "boom")
            return
        if self.b.join == "error":
            reply = {"status": "error", "response": {"reason": self.b.join_reason}}
            await send(join_ref, ref, topic, "phx_reply", reply)
            return
        bindings = [dict(b, id=1234) for b in payload["config"]["postgres_changes"]]
        if self.b.join == "mismatch":
            bindings = [dict(b, table="somewhere_else") for b in bindings]
        await send(join_ref, ref, topic, "phx_reply", {"status": "ok", "response": {"postgres_changes": bindings}})
        if payload["config"].get("presence", {}).get("enabled"):
            await send(join_ref, None, topic, "presence_state", {})
        if bindings:
            system = {
                "extension": "postgres_changes",
                "status": "ok",
                "message": "Subscribed to PostgreSQL",
                "channel": topic.removeprefix("realtime:"),
            }
            await send(join_ref, None, topic, "system", system)


def probe(behaviour: Behaviour, **kwargs: Any) -> VerifyReport:
    """The probe against FaultyRealtime on 127.0.0.1."""

    async def scenario() -> VerifyReport:
        fake = FaultyRealtime(behaviour)
        async with serve(
            fake.handler, "127.0.0.1", 0, process_request=fake.process_request, server_header=None
        ) as server:
            port = next(iter(server.sockets)).getsockname()[1]
            return await verify_realtime_async(f"http://127.0.0.1:{port}", GOOD_KEY, **kwargs)

    return asyncio.run(scenario())


# --------------------------------------------------------------------------- a host's own values

HINTS = HostHints(
    host="edge-1",
    upstream_host="realtime-dev.acme-realtime",
    tenant="realtime-dev",
    tenant_source="SELF_HOST_TENANT_NAME of acme-realtime",
    kong_container="acme-kong",
    realtime_container="acme-realtime",
)


def test_the_tenant_fix_names_the_hosts_own_upstream_and_cites_public_sources():
    generic = diagnose_handshake(404, _json({"error": "Tenant not found"}), {"Via": "kong/2.8.1"})
    fixed = for_host(generic, HINTS)
    assert fixed is not None and fixed.cause == generic.cause
    assert "Host realtime-dev.acme-realtime" in fixed.fix and "supabase-realtime" not in fixed.fix
    assert "supabase/realtime lib/realtime/database.ex" in fixed.fix and "facts" not in fixed.fix


def test_a_renamed_upstream_gets_the_tenant_it_gives_and_the_container_to_change():
    hints = dataclasses.replace(HINTS, upstream_host="realtime.acme")
    fixed = for_host(diagnose_join_error("TenantNotFound: Tenant not found: realtime"), hints)
    assert fixed is not None
    assert "gives tenant 'realtime'" in fixed.fix and "SELF_HOST_TENANT_NAME=realtime on acme-realtime" in fixed.fix


def test_the_dns_fix_names_the_hosts_containers_and_upstream():
    fixed = for_host(diagnose_handshake(503, _json({"message": "name resolution failed"}), dict(KONG_SERVER)), HINTS)
    assert fixed is not None
    assert "acme-kong cannot resolve realtime-dev.acme-realtime" in fixed.fix and "acme-realtime on" in fixed.fix


def test_a_diagnosis_without_a_host_value_is_left_as_is():
    diagnosis = diagnose_join_error("JwtSignatureError: Failed to validate JWT signature")
    assert for_host(diagnosis, HINTS) is diagnosis
