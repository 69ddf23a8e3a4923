"""The node configuration Kong reads from its ``KONG_*`` environment."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

Version = tuple[int, int, int]

# `bundled` in KONG_PLUGINS (Kong/kong@2.8.1:kong/constants.lua BUNDLED_PLUGINS; 3.x adds
# the ones below, Kong/kong@3.9.3:kong/constants.lua).
BUNDLED_2_8 = frozenset(
    """
    acl acme aws-lambda azure-functions basic-auth bot-detection correlation-id cors datadog
    file-log grpc-gateway grpc-web hmac-auth http-log ip-restriction jwt key-auth ldap-auth
    loggly oauth2 post-function pre-function prometheus proxy-cache rate-limiting
    request-size-limiting request-termination request-transformer response-ratelimiting
    response-transformer session statsd syslog tcp-log udp-log zipkin
    """.split()
)  # noqa: SIM905 - a word list reads better than 40 quoted strings
BUNDLED_3_9 = BUNDLED_2_8 | frozenset(
    """
    opentelemetry ai-proxy ai-prompt-decorator ai-prompt-guard ai-prompt-template
    ai-request-transformer ai-response-transformer standard-webhooks redirect
    """.split()
)  # noqa: SIM905
#: kong_defaults.lua's admin_listen (2.8.1 and 3.9.x): loopback inside the container.
ADMIN_LISTEN = "127.0.0.1:8001 reuseport backlog=16384, 127.0.0.1:8444 http2 ssl reuseport backlog=16384"
ROUTER_FLAVORS = ("traditional", "traditional_compatible", "expressions")


@dataclass(frozen=True)
class Settings:
    """What the stand-in understands of Kong's configuration."""

    version: Version
    plugins: frozenset[str]
    declarative_config: str | None
    proxy_listen: str
    prefix: str
    hostsfile: str
    hosts_only: bool
    router_flavor: str = "traditional"
    untrusted_lua: str = "sandbox"
    admin_listen: str = ADMIN_LISTEN

    @property
    def version_text(self) -> str:
        return ".".join(map(str, self.version))

    @property
    def v3(self) -> bool:
        return self.version >= (3, 0, 0)

    @property
    def pid_file(self) -> str:
        return os.path.join(self.prefix, "pids", "nginx.pid")

    @property
    def server_token(self) -> str:
        """``_SERVER_TOKENS`` of kong/meta.lua: the Server and Via header value."""
        return f"kong/{self.version_text}"


def parse_version(text: str) -> Version:
    digits = [int(n) for n in re.findall(r"\d+", text)] + [0, 0, 0]
    return digits[0], digits[1], digits[2]


def load_settings(env: Mapping[str, str]) -> Settings:
    """Read the KONG_* variables the stand-in understands.

    ``router_flavor`` exists from 3.0 on, default ``traditional_compatible``
    (Kong/kong@3.9.3:kong/templates/kong_defaults.lua:189); 2.8 has only the traditional
    router. ``untrusted_lua`` defaults to ``sandbox`` in both (kong_defaults.lua).
    """
    version = parse_version(env.get("KONG_VERSION", "2.8.1"))
    names = {p.strip() for p in env.get("KONG_PLUGINS", "bundled").split(",") if p.strip()}
    if "bundled" in names:
        names = (names - {"bundled"}) | (BUNDLED_3_9 if version >= (3, 0, 0) else BUNDLED_2_8)
    flavor = env.get("KONG_ROUTER_FLAVOR", "").strip() or "traditional_compatible"
    return Settings(
        version=version,
        plugins=frozenset(names - {"off"}),
        declarative_config=env.get("KONG_DECLARATIVE_CONFIG") or None,
        proxy_listen=env.get("KONG_PROXY_LISTEN", "0.0.0.0:8000"),
        prefix=env.get("KONG_PREFIX", "/usr/local/kong"),
        hostsfile=env.get("KONG_DNS_HOSTSFILE", "/etc/hosts"),
        hosts_only=env.get("KONG_STANDIN_HOSTS_ONLY", "") not in ("", "0", "off"),
        router_flavor=flavor if version >= (3, 0, 0) else "traditional",
        untrusted_lua=env.get("KONG_UNTRUSTED_LUA", "").strip() or "sandbox",
        admin_listen=env.get("KONG_ADMIN_LISTEN", "").strip() or ADMIN_LISTEN,
    )
