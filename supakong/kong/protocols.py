"""Kong protocols per edition, and the checks that explain `ws`/`wss` on OSS."""

from __future__ import annotations

from .schema_types import Problem
from .target import KongTarget

# constants.PROTOCOLS: identical in Kong/kong@2.8.1, 3.0.0, 3.4.0 and 3.9.3 (kong/constants.lua).
OSS_PROTOCOLS: tuple[str, ...] = (
    "grpc", "grpcs", "http", "https", "tcp", "tls", "tls_passthrough", "udp",
)  # fmt: skip
# "WS(S) services and routes" are a Kong Enterprise feature (Kong docs, "Proxy WebSocket traffic").
ENTERPRISE_ONLY_PROTOCOLS: tuple[str, ...] = ("ws", "wss")
HTTP_FAMILY: tuple[str, ...] = ("grpc", "grpcs", "http", "https")

# Route `protocols` mutually exclusive subsets (kong/db/schema/entities/routes.lua).
PROTOCOL_GROUPS: dict[str, str] = {
    "http": "http", "https": "http",
    "tcp": "stream", "tls": "stream", "udp": "stream",
    "tls_passthrough": "tls_passthrough",
    "grpc": "grpc", "grpcs": "grpc",
    "ws": "ws", "wss": "ws",
}  # fmt: skip
GROUP_MEMBERS: dict[str, str] = {
    "http": "{http, https}",
    "stream": "{tcp, tls, udp}",
    "tls_passthrough": "{tls_passthrough}",
    "grpc": "{grpc, grpcs}",
    "ws": "{ws, wss}",
}

WS_ON_OSS_HINT = (
    "remove ws/wss: OSS Kong already proxies WebSocket upgrades on plain http/https routes "
    "and services; ws/wss are a Kong Enterprise feature "
    "(https://docs.konghq.com/gateway/latest/how-kong-works/routing-traffic/#proxy-websocket-traffic)"
)


def allowed_protocols(target: KongTarget, family: tuple[str, ...] = OSS_PROTOCOLS) -> set[str]:
    """Protocols the target accepts out of `family` (Enterprise adds ws/wss)."""
    allowed = set(family)
    if target.is_enterprise:
        allowed.update(ENTERPRISE_ONLY_PROTOCOLS)
    return allowed


def protocol_problem(value: object, target: KongTarget, family: tuple[str, ...] = OSS_PROTOCOLS) -> Problem | None:
    """Explain why `value` is not a protocol of the target (None when it is fine)."""
    allowed = allowed_protocols(target, family)
    if value in allowed:
        return None
    expected = ", ".join(sorted(allowed))
    if value in ENTERPRISE_ONLY_PROTOCOLS:
        return Problem(
            f"{value!r} is not a Kong OSS protocol: {target.label} refuses to start with this "
            f"file (expected one of: {expected})",
            WS_ON_OSS_HINT,
        )
    return Problem(
        f"{value!r} is not a Kong protocol (expected one of: {expected})",
        "use one of the listed protocols",
    )


def protocol_check(value: object, target: KongTarget) -> Problem | None:
    """Field check for a route `protocols` element or a service `protocol`."""
    return protocol_problem(value, target)
