"""Property-based tests: generated valid configs are clean, mutations are caught where made,
and nothing the validator is given makes it raise."""

from __future__ import annotations

import copy
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from supakong.kong import Finding, KongTarget, validate_kong_config, validate_kong_document
from supakong.kong.protocols import OSS_PROTOCOLS

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

TARGETS = st.builds(
    KongTarget,
    version=st.sampled_from(["2.8.1", "3.0", "3.3", "3.4", "3.5", "3.9.1"]),
    edition=st.sampled_from(["oss", "enterprise"]),
)
LABELS = st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=8)
SEGMENTS = st.lists(LABELS, min_size=1, max_size=3)
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def _path(segments: list[str], trailing: bool) -> str:
    return "/" + "/".join(segments) + ("/" if trailing else "")


@st.composite
def routes(draw: st.DrawFn, prefix: str) -> list[dict[str, Any]]:
    count = draw(st.integers(1, 3))
    result = []
    for index in range(count):
        route: dict[str, Any] = {"name": f"{prefix}-r{index}", "strip_path": draw(st.booleans())}
        route["paths"] = [_path([prefix, f"r{index}", *draw(SEGMENTS)], draw(st.booleans()))]
        if draw(st.booleans()):
            route["protocols"] = draw(st.sampled_from([["http"], ["https"], ["http", "https"]]))
        if draw(st.booleans()):
            route["methods"] = draw(st.lists(st.sampled_from(METHODS), min_size=1, unique=True))
        result.append(route)
    return result


PLUGIN_CONFIGS = st.one_of(
    st.builds(
        lambda origins, max_age: {
            "name": "cors",
            "config": {"origins": origins, "max_age": max_age},
        },
        st.lists(st.sampled_from(["*", "https://app.example.com"]), max_size=2),
        st.integers(0, 86400),
    ),
    st.builds(lambda hide: {"name": "key-auth", "config": {"hide_credentials": hide}}, st.booleans()),
    st.builds(
        lambda groups: {"name": "acl", "config": {"allow": groups}},
        st.lists(st.sampled_from(["admin", "anon"]), min_size=1, unique=True),
    ),
    st.builds(
        lambda code: {
            "name": "request-termination",
            "config": {"status_code": code, "message": "no"},
        },
        st.integers(100, 599),
    ),
    st.builds(
        lambda value: {
            "name": "request-transformer",
            "config": {"add": {"headers": [f"x-extra:{value}"]}},
        },
        LABELS,
    ),
    st.builds(
        lambda bits: {"name": "ip-restriction", "config": {"allow": [f"10.0.0.0/{bits}"]}},
        st.integers(8, 32),
    ),
)


@st.composite
def services(draw: st.DrawFn) -> list[dict[str, Any]]:
    count = draw(st.integers(1, 4))
    result = []
    for index in range(count):
        name = f"svc{index}"
        service: dict[str, Any] = {
            "name": name,
            "url": f"{draw(st.sampled_from(['http', 'https']))}://{draw(LABELS)}:"
            f"{draw(st.integers(1, 65535))}{_path(draw(SEGMENTS), False)}",
            "routes": draw(routes(name)),
        }
        if draw(st.booleans()):
            service["read_timeout"] = draw(st.integers(25_000, 2**31 - 2))
        plugins = draw(st.lists(PLUGIN_CONFIGS, max_size=3, unique_by=lambda p: p["name"]))
        if plugins:
            service["plugins"] = plugins
        result.append(service)
    return result


@st.composite
def valid_configs(draw: st.DrawFn) -> dict[str, Any]:
    consumers = [
        {"username": name, "keyauth_credentials": [{"key": f"key-{name}"}]}
        for name in draw(st.lists(LABELS, max_size=3, unique=True))
    ]
    doc: dict[str, Any] = {
        "_format_version": draw(st.sampled_from(["1.1", "2.1"])),
        "services": draw(services()),
        "consumers": consumers,
        "acls": [{"consumer": c["username"], "group": "anon"} for c in consumers],
    }
    if draw(st.booleans()):
        doc["services"].append(
            {
                "name": "realtime-v1-ws",
                "url": "http://realtime-dev.supabase-realtime:4000/socket",
                "routes": [{"name": "realtime-v1-ws", "strip_path": True, "paths": ["/realtime/v1/"]}],
            }
        )
    return doc


def errors(findings: list[Finding]) -> list[str]:
    return [f.as_line() for f in findings if f.severity == "error"]


@FAST
@given(doc=valid_configs(), target=TARGETS)
def test_generated_valid_configs_have_no_errors(doc: dict[str, Any], target: KongTarget) -> None:
    assert errors(validate_kong_document(doc, target)) == []
    assert errors(validate_kong_config(yaml.safe_dump(doc, sort_keys=False), target)) == []


BAD_PROTOCOLS = st.one_of(
    st.sampled_from(["ws", "wss", "websocket", "HTTP", "h2", "http2", ""]),
    st.text("abcdefghijklmnopqrstuvwxyz_", max_size=10),
)


@FAST
@given(doc=valid_configs(), target=TARGETS, data=st.data())
def test_an_inserted_invalid_protocol_is_an_error_at_its_path(
    doc: dict[str, Any], target: KongTarget, data: st.DataObject
) -> None:
    allowed = set(OSS_PROTOCOLS) | ({"ws", "wss"} if target.is_enterprise else set())
    bad = data.draw(BAD_PROTOCOLS.filter(lambda p: p not in allowed), label="protocol")
    service_index = data.draw(st.integers(0, len(doc["services"]) - 1), label="service")
    service = doc["services"][service_index]
    route_index = data.draw(st.integers(0, len(service["routes"]) - 1), label="route")
    route = service["routes"][route_index]
    protocols = route.setdefault("protocols", ["http", "https"])
    position = data.draw(st.integers(0, len(protocols)), label="position")
    protocols.insert(position, bad)
    expected = f"services[{service_index}].routes[{route_index}].protocols[{position}]"
    findings = validate_kong_document(doc, target)
    assert any(f.severity == "error" and f.path == expected for f in findings), errors(findings)


@FAST
@given(doc=valid_configs(), target=TARGETS, data=st.data())
def test_an_out_of_range_timeout_is_an_error_at_its_path(
    doc: dict[str, Any], target: KongTarget, data: st.DataObject
) -> None:
    index = data.draw(st.integers(0, len(doc["services"]) - 1), label="service")
    key = data.draw(st.sampled_from(["connect_timeout", "read_timeout", "write_timeout"]))
    doc["services"][index][key] = data.draw(st.one_of(st.integers(max_value=0), st.integers(min_value=2**31 - 1)))
    findings = validate_kong_document(doc, target)
    assert [f.severity for f in findings if f.path == f"services[{index}].{key}"] == ["error"]


@FAST
@given(doc=valid_configs(), data=st.data())
def test_an_unknown_plugin_field_is_an_error_on_oss(doc: dict[str, Any], data: st.DataObject) -> None:
    with_plugins = [i for i, s in enumerate(doc["services"]) if s.get("plugins")]
    if not with_plugins:
        return
    index = data.draw(st.sampled_from(with_plugins), label="service")
    plugin_index = data.draw(st.integers(0, len(doc["services"][index]["plugins"]) - 1))
    plugin = doc["services"][index]["plugins"][plugin_index]
    plugin.setdefault("config", {})["not_a_kong_field"] = True
    target = KongTarget(data.draw(st.sampled_from(["2.8.1", "3.9.1"])), "oss")
    expected = f"services[{index}].plugins[{plugin_index}].config.not_a_kong_field"
    findings = validate_kong_document(doc, target)
    assert [f.severity for f in findings if f.path == expected] == ["error"]


YAML_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.text(max_size=10)
            | st.sampled_from(
                [
                    "services",
                    "routes",
                    "plugins",
                    "consumers",
                    "acls",
                    "config",
                    "name",
                    "paths",
                    "protocols",
                    "url",
                    "keyauth_credentials",
                    "_format_version",
                    "service",
                ]
            ),
            inner,
            max_size=4,
        )
    ),
    max_leaves=25,
)


@settings(max_examples=100, deadline=None)
@given(doc=YAML_VALUES, target=TARGETS)
def test_arbitrary_documents_never_raise(doc: object, target: KongTarget) -> None:
    findings = validate_kong_document(doc, target)
    assert all(isinstance(f, Finding) for f in findings)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=valid_configs(), junk=YAML_VALUES, target=TARGETS, data=st.data())
def test_junk_anywhere_in_a_valid_config_never_raises(
    doc: dict[str, Any], junk: object, target: KongTarget, data: st.DataObject
) -> None:
    node: Any = doc
    for _ in range(data.draw(st.integers(0, 5), label="depth")):
        children = list(node.keys()) if isinstance(node, dict) else list(range(len(node)))
        if not children:
            break
        key = data.draw(st.sampled_from(children))
        if not isinstance(node[key], dict | list):
            break
        node = node[key]
    if isinstance(node, dict):
        node[data.draw(st.sampled_from([*node.keys(), "extra"]))] = copy.deepcopy(junk)
    elif node:
        node[data.draw(st.integers(0, len(node) - 1))] = copy.deepcopy(junk)
    validate_kong_document(doc, target)
    validate_kong_config(yaml.safe_dump(doc), target)


@settings(max_examples=100, deadline=None)
@given(text=st.text(max_size=80))
def test_arbitrary_text_never_raises(text: str) -> None:
    findings = validate_kong_config(text, KongTarget())
    assert all(isinstance(f, Finding) for f in findings)
