"""Kong schema rules per version family and edition, as data tables.

Each case edits a small valid Supabase-shaped config (see conftest) at YAML paths written
like the findings print them, then expects one finding (severity, path, message fragment),
or no error at all.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from supakong.kong import Finding, KongTarget, has_errors, validate_kong_document

Edit = tuple[str, Any]
_DROP = object()


def _steps(path: str) -> list[str | int]:
    return [int(p) if p.isdigit() else p for p in re.findall(r"[^.\[\]]+", path)]


def put(doc: dict[str, Any], path: str, value: Any) -> None:
    """Set, append (index == length) or with _DROP delete the node at a findings-style path."""
    *parents, last = _steps(path)
    node: Any = doc
    for step in parents:
        node = node[step] if isinstance(step, int) else node.setdefault(step, {})
    if value is _DROP:
        del node[last]
    elif isinstance(last, int) and last == len(node):
        node.append(value)
    else:
        node[last] = value


def run(minimal_doc: Callable[[], dict[str, Any]], edits: list[Edit], target: KongTarget) -> list[Finding]:
    doc = minimal_doc()
    for path, value in edits:
        put(doc, path, value)
    return validate_kong_document(doc, target)


ROUTE = "services[0].routes[0]"
SERVICE = "services[0]"
CORS = "services[0].plugins[0]"
KEY_AUTH = "services[0].plugins[1]"
ACL = "services[0].plugins[2]"

VALID_CASES = [
    pytest.param("2.8.1", "oss", [], id="minimal-config-is-valid-on-2.8.1"),
    pytest.param("3.9.1", "oss", [], id="minimal-config-is-valid-on-3.9.1"),
    pytest.param("3.9.1", "enterprise", [], id="minimal-config-is-valid-on-enterprise"),
    pytest.param("3.0", "oss", [("_format_version", "3.0")], id="format-3.0-loads-on-3.x"),
    pytest.param(
        "3.5",
        "oss",
        [(f"{CORS}.config", {"private_network": True})],
        id="cors-private-network-exists-from-3.5",
    ),
    pytest.param(
        "3.6",
        "oss",
        [("services[0].plugins[3]", {"name": "basic-auth", "config": {"realm": "x"}})],
        id="basic-auth-realm-exists-from-3.6",
    ),
    pytest.param(
        "3.7",
        "oss",
        [(f"{KEY_AUTH}.config.realm", "supabase")],
        id="key-auth-realm-exists-from-3.7",
    ),
    pytest.param(
        "3.8",
        "oss",
        [(f"{ACL}.config.always_use_authenticated_groups", True)],
        id="acl-always-use-authenticated-groups-exists-from-3.8",
    ),
    pytest.param(
        "3.9.1",
        "enterprise",
        [(f"{ROUTE}.protocols", ["ws", "wss"]), (f"{SERVICE}.url", "ws://rest:3000/")],
        id="ws-routes-and-services-are-valid-on-enterprise",
    ),
    pytest.param(
        "3.9.1",
        "oss",
        [("_format_version", "3.0"), (f"{ROUTE}.paths", ["~/rest/v1/(?<table>[a-z]+)$"])],
        id="tilde-regex-path-with-named-group-is-valid-on-3.x",
    ),
    pytest.param(
        "2.8.1",
        "oss",
        [(f"{ROUTE}.paths", ["/rest/v1/(?<table>[a-z]+)$"])],
        id="regex-path-without-tilde-is-valid-on-2.8",
    ),
    pytest.param(
        "2.8.1",
        "oss",
        [
            (f"{ROUTE}.methods", ["GET", "POST"]),
            (f"{ROUTE}.hosts", ["*.example.com", "api.example.com:8000"]),
        ],
        id="methods-and-wildcard-hosts",
    ),
    pytest.param(
        "3.9.1",
        "oss",
        [
            (
                "services[0].plugins[3]",
                {
                    "name": "request-termination",
                    "config": {"status_code": 403, "message": "Access is forbidden."},
                },
            )
        ],
        id="request-termination-403-message",
    ),
    pytest.param(
        "2.8.1",
        "oss",
        [
            (
                "services[0].plugins[3]",
                {
                    "name": "ip-restriction",
                    "config": {"allow": ["10.0.0.0/8", "::1"], "status": 403},
                },
            )
        ],
        id="ip-restriction-allow-cidrs",
    ),
    pytest.param(
        "3.9.1",  # $LUA_RT_WS_EXPR: kong-entrypoint.sh of the 2026 stack
        "oss",
        [
            (
                "services[0].plugins[3]",
                {
                    "name": "request-transformer",
                    "config": {
                        "add": {"headers": ["x-api-key:$LUA_RT_WS_EXPR"]},
                        "replace": {"querystring": ["apikey:$LUA_RT_WS_EXPR"], "uri": "/x"},
                        "rename": {"headers": ["apikey:x-api-key"]},
                    },
                },
            )
        ],
        id="request-transformer-supabase-style",
    ),
    pytest.param(
        "2.8.1",
        "oss",
        [(f"{SERVICE}.read_timeout", 150000), (f"{SERVICE}.retries", 0)],
        id="service-timeouts-in-range",
    ),
    pytest.param("3.9.1", "oss", [(f"{ROUTE}.name", "rest-v1-all-ñ")], id="non-ascii-route-name-is-allowed"),
    pytest.param(
        "2.8.1",
        "oss",
        [(f"{ROUTE}.paths", _DROP), (f"{ROUTE}.headers", {"x-tenant": ["a"]})],
        id="headers-alone-satisfy-route-matching",
    ),
]


@pytest.mark.parametrize(("version", "edition", "edits"), VALID_CASES)
def test_valid_configs_have_no_errors(
    minimal_doc: Callable[[], dict[str, Any]], version: str, edition: str, edits: list[Edit]
) -> None:
    findings = run(minimal_doc, edits, KongTarget(version, edition))
    assert not has_errors(findings), [f.as_line() for f in findings]


INVALID_CASES = [
    # route protocols
    pytest.param(
        "2.8.1",
        "oss",
        [(f"{ROUTE}.protocols", ["http", "ws"])],
        "error",
        f"{ROUTE}.protocols[1]",
        "'ws' is not a Kong OSS protocol",
        id="ws-route-protocol-is-refused-on-oss-2.8.1",
    ),
    pytest.param(
        "3.9.1",
        "oss",
        [(f"{ROUTE}.protocols", ["wss"])],
        "error",
        f"{ROUTE}.protocols[0]",
        "'wss' is not a Kong OSS protocol",
        id="wss-only-route-is-refused-on-oss-3.9.1",
    ),
    pytest.param(
        "3.9.1",
        "enterprise",
        [(f"{ROUTE}.protocols", ["http", "websocket"])],
        "error",
        f"{ROUTE}.protocols[1]",
        "'websocket' is not a Kong protocol",
        id="unknown-protocol-is-refused-on-enterprise",
    ),
    pytest.param(
        "2.8.1",
        "oss",
        [(f"{ROUTE}.protocols", ["http", "grpc"])],
        "error",
        f"{ROUTE}.protocols",
        "mutually exclusive",
        id="http-and-grpc-cannot-share-a-route",
    ),
    pytest.param(
        "3.9.1",
        "oss",
        [(f"{ROUTE}.protocols", [])],
        "error",
        f"{ROUTE}.protocols",
        "length must be at least 1",
        id="empty-protocols-list",
    ),
    # service protocol and url
    pytest.param(
        "2.8.1",
        "oss",
        [(f"{SERVICE}.url", _DROP), (f"{SERVICE}.host", "rest"), (f"{SERVICE}.protocol", "ws")],
        "error",
        f"{SERVICE}.protocol",
        "not a Kong OSS protocol",
        id="service-protocol-ws-without-url-is-refused-on-oss",
    ),
    pytest.param(
        "3.9.1",
        "oss",
        [(f"{SERVICE}.url", "ws://rest:3000/")],
        "error",
        f"{SERVICE}.url",
        "not a Kong OSS protocol",
        id="ws-url-is-refused-on-oss",
    ),
    pytest.param(
        "2.8.1",
        "oss",
        [(f"{SERVICE}.url", "rest:3000")],
        "error",
        f"{SERVICE}.url",
        "invalid url",
        id="url-without-scheme-and-host",
    ),
    pytest.param(
        "2.8.1",
        "oss",
        [(f"{SERVICE}.url", _DROP)],
        "error",
        f"{SERVICE}.host",
        "required field 'host'",
        id="service-needs-host-or-url",
    ),
    pytest.param(
        "2.8.1",
        "oss",
        [(f"{SERVICE}.read_timeout", 0)],
        "error",
        f"{SERVICE}.read_timeout",
        "between 1 and 2147483646",
        id="zero-timeout",
    ),
    pytest.param(
        "3.9.1",
        "oss",
        [(f"{SERVICE}.connect_timeout", 2**31)],
        "error",
        f"{SERVICE}.connect_timeout",
        "between 1 and",
        id="timeout-above-2^31-2",
    ),
    pytest.param(
        "3.9.1",
        "oss",
        [(f"{SERVICE}.write_timeout", "60s")],
        "error",
        f"{SERVICE}.write_timeout",
        "expected an integer",
        id="timeout-as-string",
    ),
    pytest.param(
        "2.8.1",
        "oss",
        [(f"{SERVICE}.url", _DROP), (f"{SERVICE}.host", "rest"), (f"{SERVICE}.port", 70000)],
        "error",
        f"{SERVICE}.port",
        "between 0 and 65535",
        id="port-out-of-range",
    ),
    pytest.param(
        "2.8.1",
        "oss",
        [(f"{SERVICE}.url", _DROP), (f"{SERVICE}.host", "rest"), (f"{SERVICE}.path", "rest")],
        "error",
        f"{SERVICE}.path",
        "should start with: /",
        id="service-path-without-slash",
    ),
    pytest.param(
        "2.8.1",
        "oss",
        [(f"{SERVICE}.timeout", 1000)],
        "error",
        f"{SERVICE}.timeout",
        "unknown field 'timeout'",
        id="unknown-service-field",
    ),
    pytest.param(
        "3.9.1",
        "oss",
        [(f"{SERVICE}.name", "rest v1")],
        "error",
        f"{SERVICE}.name",
        "invalid name",
        id="service-name-with-space",
    ),
    # format version
    pytest.param(
        "2.8.1",
        "oss",
        [("_format_version", "3.0")],
        "error",
        "_format_version",
        "expected one of: 1.1, 2.1",
        id="format-3.0-does-not-load-on-2.8",
    ),
    pytest.param(
        "3.9.1",
        "oss",
        [("_format_version", 2.1)],
        "error",
        "_format_version",
        "expected a string",
        id="unquoted-format-version-is-a-number",
    ),
    pytest.param(
        "3.9.1",
        "oss",
        [("_format_version", _DROP)],
        "error",
        "_format_version",
        "missing",
        id="format-version-is-required",
    ),
    pytest.param(
        "2.8.1",
        "oss",
        [("upstream", [])],
        "error",
        "upstream",
        "unknown top-level field",
        id="unknown-top-level-key",
    ),
    pytest.param(
        "2.8.1",
        "oss",
        [("vaults", [])],
        "error",
        "vaults",
        "no 'vaults' entity",
        id="vaults-entity-is-3.x-only",
    ),
    # route matching fields
    pytest.param(
        "2.8.1",
        "oss",
        [(f"{ROUTE}.paths", _DROP)],
        "error",
        ROUTE,
        "at least one of methods, hosts, headers, paths",
        id="http-route-needs-a-matching-field",
    ),
    pytest.param(
        "3.9.1",
        "oss",
        [(f"{ROUTE}.methods", ["get"])],
        "error",
        f"{ROUTE}.methods[0]",
        "upper-case",
        id="lower-case-method",
    ),
    pytest.param(
        "3.9.1",
        "oss",
        [(f"{ROUTE}.headers", {"Host": ["x"]})],
        "error",
        f"{ROUTE}.headers.Host",
        "cannot contain 'host' header",
        id="host-in-headers",
    ),
    pytest.param(
        "2.8.1",
        "oss",
        [(f"{ROUTE}.snis", ["example.com"]), (f"{ROUTE}.protocols", ["http"])],
        "error",
        f"{ROUTE}.snis",
        "'snis' can only be set",
        id="snis-on-plain-http-route",
    ),
    pytest.param(
        "3.9.1",
        "oss",
        [(f"{ROUTE}.hosts", ["a.*.com"])],
        "error",
        f"{ROUTE}.hosts[0]",
        "leftmost or rightmost",
        id="wildcard-in-the-middle",
    ),
    pytest.param(
        "3.9.1",
        "oss",
        [(f"{ROUTE}.expression", 'http.path ^= "/rest"')],
        "error",
        f"{ROUTE}.expression",
        "KONG_ROUTER_FLAVOR=expressions",
        id="expression-routes-need-the-expressions-flavor",
    ),
    pytest.param(
        "3.9.1",
        "oss",
        [(f"{ROUTE}.https_redirect_status_code", 303)],
        "error",
        f"{ROUTE}.https_redirect_status_code",
        "expected one of",
        id="redirect-status-code-enum",
    ),
    # route paths per version
    pytest.param(
        "2.8.1",
        "oss",
        [(f"{ROUTE}.paths", ["rest/v1"])],
        "error",
        f"{ROUTE}.paths[0]",
        "should start with: /",
        id="relative-path-on-2.8",
    ),
    pytest.param(
        "3.9.1",
        "oss",
        [(f"{ROUTE}.paths", ["rest/v1"])],
        "error",
        f"{ROUTE}.paths[0]",
        "(fixed path) or ~/ (regex path)",
        id="relative-path-on-3.x",
    ),
    pytest.param(
        "2.8.1",
        "oss",
        [(f"{ROUTE}.paths", ["~/rest/v1/.*"])],
        "error",
        f"{ROUTE}.paths[0]",
        "should start with: /",
        id="tilde-prefix-is-3.x-syntax",
    ),
    pytest.param(
        "2.8.1",
        "oss",
        [(f"{ROUTE}.paths", ["/rest//v1"])],
        "error",
        f"{ROUTE}.paths[0]",
        "empty segments",
        id="empty-path-segment-on-2.8",
    ),
    pytest.param(
        "3.9.1",
        "oss",
        [("_format_version", "3.0"), (f"{ROUTE}.paths", ["/rest/./v1"])],
        "error",
        f"{ROUTE}.paths[0]",
        "non-normalized path",
        id="non-normalized-path-in-a-3.0-file",
    ),
    pytest.param(
        "3.9.1",
        "oss",
        [(f"{ROUTE}.paths", ["/rest/./v1"])],
        "info",
        f"{ROUTE}.paths[0]",
        "normalizes",
        id="2.1-file-paths-are-normalized-on-3.x",
    ),
    pytest.param(
        "3.9.1",
        "oss",
        [(f"{ROUTE}.paths", ["/rest/v1/(a|b)"])],
        "info",
        f"{ROUTE}.paths[0]",
        "as the regex '~/rest/v1/(a|b)'",
        id="2.1-file-regex-paths-get-a-tilde-on-3.x",
    ),
    pytest.param(
        "3.9.1",
        "oss",
        [("_format_version", "3.0"), (f"{ROUTE}.paths", ["~/a/(b"])],
        "error",
        f"{ROUTE}.paths[0]",
        "does not compile",
        id="broken-regex-path",
    ),
    # plugins
    pytest.param(
        "2.8.1",
        "oss",
        [(f"{CORS}.config", {"private_network": True})],
        "error",
        f"{CORS}.config.private_network",
        "does not exist before Kong 3.5",
        id="cors-private-network-is-refused-on-2.8.1",
    ),
    pytest.param(
        "3.4",
        "oss",
        [(f"{CORS}.config", {"private_network": True})],
        "error",
        f"{CORS}.config.private_network",
        "does not exist before Kong 3.5",
        id="cors-private-network-is-refused-on-3.4",
    ),
    pytest.param(
        "3.9.1",
        "oss",
        [(f"{CORS}.config", {"origin": ["*"]})],
        "error",
        f"{CORS}.config.origin",
        "unknown field 'origin'",
        id="cors-typo-is-refused",
    ),
    pytest.param(
        "3.9.1",
        "enterprise",
        [(f"{CORS}.config", {"origin": ["*"]})],
        "warning",
        f"{CORS}.config.origin",
        "not known to this validator",
        id="unknown-plugin-field-is-a-warning-on-enterprise",
    ),
    pytest.param(
        "3.9.1",
        "oss",
        [(f"{CORS}.config", {"methods": ["GET", "FETCH"]})],
        "error",
        f"{CORS}.config.methods[1]",
        "expected one of",
        id="cors-method-enum",
    ),
    pytest.param(
        "2.8.1",
        "oss",
        [(f"{KEY_AUTH}.config.realm", "x")],
        "error",
        f"{KEY_AUTH}.config.realm",
        "does not exist before Kong 3.7",
        id="key-auth-realm-is-refused-before-3.7",
    ),
    pytest.param(
        "2.8.1",
        "oss",
        [(f"{KEY_AUTH}.config.key_names", [])],
        "warning",
        f"{KEY_AUTH}.config.key_names",
        "key_names is empty",
        id="key-auth-with-no-key-names",
    ),
    pytest.param(
        "3.9.1",
        "oss",
        [(f"{KEY_AUTH}.config.hide_credentials", "yes please")],
        "error",
        f"{KEY_AUTH}.config.hide_credentials",
        "expected a boolean",
        id="boolean-field-given-a-string",
    ),
    pytest.param(
        "3.9.1",
        "oss",
        [(f"{ACL}.config.deny", ["x"])],
        "error",
        f"{ACL}.config.allow",
        "exactly one of",
        id="acl-allow-and-deny",
    ),
    pytest.param(
        "3.9.1",
        "oss",
        [(f"{ACL}.config", {"hide_groups_header": True})],
        "error",
        f"{ACL}.config.allow",
        "exactly one of",
        id="acl-needs-allow-or-deny",
    ),
    pytest.param(
        "2.8.1",
        "oss",
        [(f"{ACL}.config", {"whitelist": ["anon"]})],
        "warning",
        f"{ACL}.config.whitelist",
        "deprecated",
        id="acl-whitelist-deprecated-on-2.8",
    ),
    pytest.param(
        "3.0",
        "oss",
        [(f"{ACL}.config", {"whitelist": ["anon"]})],
        "error",
        f"{ACL}.config.whitelist",
        "removed in Kong 3.0",
        id="acl-whitelist-removed-in-3.0",
    ),
    pytest.param(
        "2.8.1",
        "oss",
        [("services[0].plugins[1]", {"name": "rate-limiting"})],
        "error",
        "services[0].plugins[1].name",
        "not enabled",
        id="plugin-not-in-kong-plugins",
    ),
    pytest.param(
        "2.8.1",
        "oss",
        [
            (
                "services[0].plugins[3]",
                {"name": "request-termination", "config": {"message": "no", "body": "x"}},
            )
        ],
        "error",
        "services[0].plugins[3].config.message",
        "cannot be used with",
        id="request-termination-message-and-body",
    ),
    pytest.param(
        "2.8.1",
        "oss",
        [
            (
                "services[0].plugins[3]",
                {"name": "request-termination", "config": {"status_code": 600}},
            )
        ],
        "error",
        "services[0].plugins[3].config.status_code",
        "between 100 and 599",
        id="request-termination-status-range",
    ),
    pytest.param(
        "3.9.1",
        "oss",
        [
            (
                "services[0].plugins[3]",
                {"name": "ip-restriction", "config": {"allow": ["10.0.0.300"]}},
            )
        ],
        "error",
        "services[0].plugins[3].config.allow[0]",
        "invalid ip",
        id="ip-restriction-bad-address",
    ),
    pytest.param(
        "3.9.1",
        "oss",
        [("services[0].plugins[3]", {"name": "ip-restriction", "config": {}})],
        "error",
        "services[0].plugins[3].config",
        "at least one of",
        id="ip-restriction-needs-allow-or-deny",
    ),
    pytest.param(
        "2.8.1",
        "oss",
        [
            (
                "services[0].plugins[3]",
                {"name": "request-transformer", "config": {"add": {"headers": ["x-api-key"]}}},
            )
        ],
        "error",
        "services[0].plugins[3].config.add.headers[0]",
        "has no ':'",
        id="request-transformer-header-without-colon",
    ),
    pytest.param(
        "3.9.1",
        "oss",
        [("consumers[0].plugins", [{"name": "key-auth"}])],
        "error",
        "consumers[0].plugins[0].consumer",
        "cannot be applied to a consumer",
        id="key-auth-cannot-be-consumer-scoped",
    ),
    pytest.param(
        "3.9.1",
        "oss",
        [(f"{CORS}.protocols", ["tcp"])],
        "error",
        f"{CORS}.protocols[0]",
        "not a Kong protocol",
        id="cors-is-http-only",
    ),
    # consumers, credentials and references
    pytest.param(
        "2.8.1",
        "oss",
        [("consumers[0].username", _DROP)],
        "error",
        "consumers[0]",
        "username' or 'custom_id'",
        id="consumer-needs-username-or-custom-id",
    ),
    pytest.param(
        "2.8.1",
        "oss",
        [("acls[0].consumer", "anonymous")],
        "error",
        "acls[0].consumer",
        "not declared",
        id="acl-for-unknown-consumer",
    ),
    pytest.param(
        "2.8.1",
        "oss",
        [("acls[0].consumer", _DROP)],
        "error",
        "acls[0].consumer",
        "required field 'consumer'",
        id="top-level-acl-needs-consumer",
    ),
    pytest.param(
        "2.8.1",
        "oss",
        [("routes", [{"name": "x", "service": "nope", "paths": ["/x"]}])],
        "error",
        "routes[0].service",
        "not declared",
        id="route-for-unknown-service",
    ),
    pytest.param(
        "2.8.1",
        "oss",
        [("plugins", [{"name": "cors", "route": "nope"}])],
        "error",
        "plugins[0].route",
        "not declared",
        id="plugin-for-unknown-route",
    ),
    pytest.param(
        "2.8.1",
        "oss",
        [("basicauth_credentials", [{"consumer": "anon", "username": "u"}])],
        "error",
        "basicauth_credentials[0].password",
        "required field 'password'",
        id="basic-auth-credential-needs-password",
    ),
    pytest.param(
        "3.9.1",
        "oss",
        [("consumers[0].keyauth_credentials[0].key", 12345)],
        "error",
        "consumers[0].keyauth_credentials[0].key",
        "expected a string",
        id="numeric-key-must-be-quoted",
    ),
]


@pytest.mark.parametrize(("version", "edition", "edits", "severity", "path", "fragment"), INVALID_CASES)
def test_invalid_configs_are_reported_at_the_right_path(
    minimal_doc: Callable[[], dict[str, Any]],
    version: str,
    edition: str,
    edits: list[Edit],
    severity: str,
    path: str,
    fragment: str,
) -> None:
    findings = run(minimal_doc, edits, KongTarget(version, edition))
    matching = [f for f in findings if f.path == path and fragment in f.message]
    assert matching, [f.as_line() for f in findings]
    assert matching[0].severity == severity


DISABLED_PLUGIN_CASES = [
    pytest.param(("cors", "key-auth"), "acls", id="acls-without-the-acl-plugin"),
    pytest.param(
        ("cors", "acl"),
        "consumers[0].keyauth_credentials",
        id="keyauth-credentials-without-key-auth",
    ),
]


@pytest.mark.parametrize(("plugins", "path"), DISABLED_PLUGIN_CASES)
def test_plugin_entities_need_their_plugin_enabled(
    minimal_doc: Callable[[], dict[str, Any]], plugins: tuple[str, ...], path: str
) -> None:
    findings = run(minimal_doc, [], KongTarget("3.9.1", plugins=plugins))
    assert any(f.severity == "error" and f.path == path for f in findings)


def test_bundled_kong_plugins_enable_rate_limiting(
    minimal_doc: Callable[[], dict[str, Any]],
) -> None:
    edits: list[Edit] = [("services[0].plugins[3]", {"name": "rate-limiting", "config": {"minute": 5}})]
    findings = run(minimal_doc, edits, KongTarget("3.9.1", plugins=("bundled",)))
    assert not has_errors(findings)
    assert any("not validated offline" in f.message for f in findings)


UNIQUENESS_CASES = [
    pytest.param("2.8.1", "warning", id="2.8.1-silently-collapses"),
    pytest.param("3.3", "warning", id="3.3-still-collapses"),
    pytest.param("3.4", "error", id="3.4-refuses-duplicates"),
    pytest.param("3.9.1", "error", id="3.9.1-refuses-duplicates"),
]


@pytest.mark.parametrize(("version", "severity"), UNIQUENESS_CASES)
def test_duplicate_route_names(minimal_doc: Callable[[], dict[str, Any]], version: str, severity: str) -> None:
    findings = run(minimal_doc, [("services[1].routes[0].name", "rest-v1-all")], KongTarget(version))
    (duplicate,) = [f for f in findings if f.path == "services[1].routes[0].name"]
    assert duplicate.severity == severity
    assert "services[0].routes[0]" in duplicate.message


@pytest.mark.parametrize(("version", "severity"), UNIQUENESS_CASES)
def test_duplicate_keyauth_keys(minimal_doc: Callable[[], dict[str, Any]], version: str, severity: str) -> None:
    edits: list[Edit] = [("consumers[1]", {"username": "service_role", "keyauth_credentials": [{"key": "anon-key"}]})]
    findings = run(minimal_doc, edits, KongTarget(version))
    path = "consumers[1].keyauth_credentials[0].key"
    assert [f.severity for f in findings if f.path == path] == [severity]
