"""Supabase pitfalls: valid Kong config that breaks Realtime or browser clients."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from supakong.kong import Finding, KongTarget, validate_kong_document

Doc = dict[str, Any]
REALTIME = "services[1]"
RT_ROUTE = "services[1].routes[0]"

EVERY_TARGET = [
    pytest.param(version, edition, id=f"{version}-{edition}")
    for version in ("2.8.1", "3.9.1")
    for edition in ("oss", "enterprise")
]


def findings_for(doc: Doc, target: KongTarget | None = None) -> list[Finding]:
    return validate_kong_document(doc, target or KongTarget())


def at(findings: list[Finding], path: str) -> list[Finding]:
    return [f for f in findings if f.path == path]


@pytest.mark.parametrize(("version", "edition"), EVERY_TARGET)
def test_preserve_host_on_the_realtime_route_is_an_error_on_every_target(
    minimal_doc: Callable[[], Doc], version: str, edition: str
) -> None:
    doc = minimal_doc()
    doc["services"][1]["routes"][0]["preserve_host"] = True
    (finding,) = at(findings_for(doc, KongTarget(version, edition)), f"{RT_ROUTE}.preserve_host")
    assert finding.severity == "error"
    assert "tenant" in finding.message and "remove preserve_host" in finding.hint


def test_preserve_host_on_a_rest_route_is_fine(minimal_doc: Callable[[], Doc]) -> None:
    doc = minimal_doc()
    doc["services"][0]["routes"][0]["preserve_host"] = True
    assert at(findings_for(doc), "services[0].routes[0].preserve_host") == []


def _rename_everything(doc: Doc) -> Doc:
    service = doc["services"][1]
    service["name"] = "rt"
    service["routes"][0]["name"] = "rt"
    return doc


def _by_route_name(doc: Doc) -> None:
    _rename_everything(doc)
    doc["services"][1]["routes"][0]["name"] = "realtime-v1-ws"
    doc["services"][1]["url"] = "http://realtime-dev.supabase-realtime:4000/"
    doc["services"][1]["routes"][0]["paths"] = ["/rt/"]


def _by_service_name(doc: Doc) -> None:
    _rename_everything(doc)
    doc["services"][1]["name"] = "realtime-v1-ws"
    doc["services"][1]["url"] = "http://realtime-dev.supabase-realtime:4000/"
    doc["services"][1]["routes"][0]["paths"] = ["/rt/"]


def _by_route_path(doc: Doc) -> None:
    _rename_everything(doc)
    doc["services"][1]["url"] = "http://realtime-dev.supabase-realtime:4000/"


def _by_socket_url(doc: Doc) -> None:
    _rename_everything(doc)
    doc["services"][1]["routes"][0]["paths"] = ["/rt/"]


@pytest.mark.parametrize(
    "identify",
    [
        pytest.param(_by_route_name, id="route-named-realtime-v1-ws"),
        pytest.param(_by_service_name, id="service-named-realtime-v1-ws"),
        pytest.param(_by_route_path, id="route-path-realtime-v1"),
        pytest.param(_by_socket_url, id="service-url-path-socket"),
    ],
)
def test_the_realtime_route_is_recognised(minimal_doc: Callable[[], Doc], identify: Callable[[Doc], None]) -> None:
    doc = minimal_doc()
    identify(doc)
    doc["services"][1]["routes"][0]["preserve_host"] = True
    assert [f.severity for f in at(findings_for(doc), f"{RT_ROUTE}.preserve_host")] == ["error"]


def test_a_config_without_realtime_route_gets_a_warning(minimal_doc: Callable[[], Doc]) -> None:
    doc = minimal_doc()
    del doc["services"][1]
    (finding,) = at(findings_for(doc), "services")
    assert finding.severity == "warning" and "no Route matched" in finding.message


TENANT_CASES = [
    pytest.param("http://realtime:4000/socket", "realtime-dev", "error", id="bare-realtime-host"),
    pytest.param(
        "http://supabase-realtime.internal:4000/socket",
        "realtime-dev",
        "error",
        id="kubernetes-style-name",
    ),
    pytest.param("http://10.0.0.7:4000/socket", "realtime-dev", "error", id="ip-address"),
    pytest.param(
        "http://realtime-dev.supabase-realtime:4000/socket",
        "realtime-dev",
        None,
        id="supabase-default",
    ),
    pytest.param("http://Realtime-Dev.x:4000/socket", "realtime-dev", None, id="host-is-case-insensitive"),
    pytest.param("http://acme.realtime:4000/socket", "acme", None, id="custom-tenant"),
]


@pytest.mark.parametrize(("url", "tenant", "severity"), TENANT_CASES)
def test_upstream_host_first_label_must_be_the_realtime_tenant(
    minimal_doc: Callable[[], Doc], url: str, tenant: str, severity: str | None
) -> None:
    doc = minimal_doc()
    doc["services"][1]["url"] = url
    found = at(findings_for(doc, KongTarget(realtime_tenant=tenant)), f"{REALTIME}.url")
    assert [f.severity for f in found] == ([severity] if severity else [])
    if found:
        assert "Tenant not found" in found[0].message


def test_tenant_is_checked_on_host_when_there_is_no_url(minimal_doc: Callable[[], Doc]) -> None:
    doc = minimal_doc()
    service = doc["services"][1]
    del service["url"]
    service.update(host="realtime", port=4000, path="/socket")
    assert [f.severity for f in at(findings_for(doc), f"{REALTIME}.host")] == ["error"]


TIMEOUT_CASES = [
    pytest.param("read_timeout", 10_000, "warning", id="read-timeout-10s-is-too-short"),
    pytest.param("write_timeout", 24_999, "warning", id="write-timeout-just-below-heartbeat"),
    pytest.param("read_timeout", 25_000, None, id="read-timeout-equal-to-heartbeat"),
    pytest.param("read_timeout", 60_000, None, id="default-read-timeout"),
]


@pytest.mark.parametrize(("key", "value", "severity"), TIMEOUT_CASES)
def test_realtime_service_timeouts_against_the_heartbeat(
    minimal_doc: Callable[[], Doc], key: str, value: int, severity: str | None
) -> None:
    doc = minimal_doc()
    doc["services"][1][key] = value
    doc["services"][0][key] = value  # a REST service may time out quickly: no finding there
    findings = findings_for(doc)
    assert [f.severity for f in at(findings, f"{REALTIME}.{key}")] == ([severity] if severity else [])
    assert at(findings, f"services[0].{key}") == []


CORS_CASES = [
    pytest.param(
        0,
        ["Content-Type"],
        ["apikey, authorization, x-client-info"],
        id="rest-route-list-blocks-supabase-headers",
    ),
    pytest.param(
        0,
        ["apikey", "Authorization", "x-client-info", "content-type"],
        [],
        id="rest-route-list-with-all-supabase-headers",
    ),
    pytest.param(
        1,
        ["Sec-WebSocket-Key", "Sec-WebSocket-Protocol"],
        ["does nothing"],
        id="websocket-headers-on-realtime-route-are-useless",
    ),
    pytest.param(
        0,
        ["Sec-WebSocket-Key"],
        ["does nothing", "apikey"],
        id="websocket-headers-on-rest-route-are-useless-and-harmful",
    ),
]


@pytest.mark.parametrize(("service", "headers", "fragments"), CORS_CASES)
def test_cors_header_lists(
    minimal_doc: Callable[[], Doc], service: int, headers: list[str], fragments: list[str]
) -> None:
    doc = minimal_doc()
    plugins = doc["services"][service].setdefault("plugins", [])
    if not plugins:
        plugins.append({"name": "cors"})
    plugins[0]["config"] = {"headers": headers}
    found = at(findings_for(doc), f"services[{service}].plugins[0].config.headers")
    assert all(f.severity == "warning" for f in found)
    assert len(found) == len(fragments)
    for fragment in fragments:
        assert any(fragment in f.message for f in found), [f.message for f in found]


def test_global_cors_plugin_blocking_rest_preflights_is_reported(
    minimal_doc: Callable[[], Doc],
) -> None:
    doc = minimal_doc()
    doc["plugins"] = [{"name": "cors", "config": {"headers": ["x-custom"]}}]
    (finding,) = at(findings_for(doc), "plugins[0].config.headers")
    assert "rest-v1-all" in finding.message


ANONYMOUS_CASES = [
    pytest.param("anon", "warning", "missing OR invalid", id="anonymous-masks-bad-keys"),
    pytest.param("nobody", "error", "not declared", id="anonymous-points-nowhere"),
]


@pytest.mark.parametrize(("anonymous", "severity", "fragment"), ANONYMOUS_CASES)
def test_key_auth_anonymous(minimal_doc: Callable[[], Doc], anonymous: str, severity: str, fragment: str) -> None:
    doc = minimal_doc()
    doc["services"][0]["plugins"][1]["config"]["anonymous"] = anonymous
    (finding,) = at(findings_for(doc), "services[0].plugins[1].config.anonymous")
    assert finding.severity == severity and fragment in finding.message


def test_basic_auth_anonymous_pointing_nowhere_is_an_error(minimal_doc: Callable[[], Doc]) -> None:
    doc = minimal_doc()
    doc["services"][0]["plugins"].append({"name": "basic-auth", "config": {"anonymous": "x"}})
    (finding,) = at(findings_for(doc), "services[0].plugins[3].config.anonymous")
    assert finding.severity == "error"


def test_dokploys_template_url_gets_a_hint_that_fits_dokploy(minimal_doc: Callable[[], Doc]) -> None:
    doc = minimal_doc()
    doc["services"][1]["url"] = "http://realtime:4000/socket"  # Dokploy/templates blueprints/supabase
    found = at(findings_for(doc, KongTarget(realtime_tenant="realtime-dev")), f"{REALTIME}.url")
    assert [f.severity for f in found] == ["error"]
    assert "look up tenant 'realtime'" in found[0].message
    assert "Dokploy's Supabase template" in found[0].hint
    assert "network alias realtime-dev.supabase-realtime" in found[0].hint
    assert "http://realtime-dev.supabase-realtime:4000/socket" in found[0].hint
