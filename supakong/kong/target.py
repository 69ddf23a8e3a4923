"""Which Kong the config is meant for: version family, edition and enabled plugins.

The validator's rules differ per Kong release (facts §1, §3, §4, §5), so every check reads
the target. Supported: 2.8.x and 3.x (rules known up to 3.9; later 3.x use the 3.9 rules).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

Version = tuple[int, int]

# The KONG_PLUGINS of Supabase's docker-compose.yml (facts §7).
SUPABASE_PLUGINS: tuple[str, ...] = (
    "request-transformer",
    "cors",
    "key-auth",
    "acl",
    "basic-auth",
    "request-termination",
    "ip-restriction",
)

EDITIONS = ("oss", "enterprise")

# `bundled` in KONG_PLUGINS means every plugin shipped with Kong (kong/constants.lua).
_BUNDLED_2_8: tuple[str, ...] = (
    "jwt", "acl", "correlation-id", "cors", "oauth2", "tcp-log", "udp-log", "file-log",
    "http-log", "key-auth", "hmac-auth", "basic-auth", "ip-restriction",
    "request-transformer", "response-transformer", "request-size-limiting", "rate-limiting",
    "response-ratelimiting", "syslog", "loggly", "datadog", "ldap-auth", "statsd",
    "bot-detection", "aws-lambda", "request-termination", "prometheus", "proxy-cache",
    "session", "acme", "grpc-gateway", "grpc-web", "pre-function", "post-function",
    "azure-functions", "zipkin",
)  # fmt: skip
_BUNDLED_ADDED: dict[Version, tuple[str, ...]] = {
    (3, 0): ("opentelemetry",),
    (3, 6): (
        "ai-proxy", "ai-prompt-decorator", "ai-prompt-guard", "ai-prompt-template",
        "ai-request-transformer", "ai-response-transformer",
    ),
    (3, 8): ("standard-webhooks",),
    (3, 9): ("redirect",),
}  # fmt: skip

_VERSION_RE = re.compile(r"^\s*v?(\d+)\.(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:[-+_~].*)?\s*$")
_ENTERPRISE_IMAGE_NAMES = ("kong-gateway", "kong-enterprise", "kong-ee")


def parse_version(version: str) -> tuple[int, int, int]:
    """Parse `2.8.1`, `3.9`, `3.9.1.0`, `v3.4.2-ubuntu` into (major, minor, patch).

    Raises ValueError for anything that is not Kong 2.8.x or 3.x.
    """
    match = _VERSION_RE.match(str(version))
    if not match:
        raise ValueError(f"cannot read Kong version {version!r}: expected something like 2.8.1 or 3.9.1")
    major, minor = int(match.group(1)), int(match.group(2))
    patch = int(match.group(3) or 0)
    if major not in (2, 3):
        raise ValueError(
            f"unsupported Kong major version {major} in {version!r}: this validator knows Kong 2.8.x and 3.x"
        )
    if major == 2 and minor != 8:
        raise ValueError(
            f"unsupported Kong version {version!r}: of the 2.x line only 2.8.x is supported; upgrade to 2.8.x or 3.x"
        )
    return major, minor, patch


def bundled_plugins(version: Version) -> tuple[str, ...]:
    """The plugins that `KONG_PLUGINS=bundled` enables on this Kong version."""
    names = list(_BUNDLED_2_8)
    for since, added in sorted(_BUNDLED_ADDED.items()):
        if version >= since:
            names.extend(added)
    return tuple(names)


def _split_plugins(plugins: tuple[str, ...] | str) -> tuple[str, ...]:
    items = plugins.split(",") if isinstance(plugins, str) else plugins
    return tuple(name.strip().lower() for name in items if name and name.strip())


@dataclass(frozen=True)
class KongTarget:
    """The Kong a declarative config will be loaded into."""

    version: str = "2.8.1"
    edition: str = "oss"
    plugins: tuple[str, ...] = SUPABASE_PLUGINS
    realtime_tenant: str = "realtime-dev"

    def __post_init__(self) -> None:
        parse_version(self.version)  # raises ValueError with a clear message
        edition = str(self.edition).strip().lower()
        if edition not in EDITIONS:
            raise ValueError(f"edition must be 'oss' or 'enterprise', not {self.edition!r}")
        object.__setattr__(self, "edition", edition)
        object.__setattr__(self, "plugins", _split_plugins(self.plugins))

    @property
    def release(self) -> tuple[int, int, int]:
        """(major, minor, patch) of the target version."""
        return parse_version(self.version)

    @property
    def minor_version(self) -> Version:
        """(major, minor): the granularity at which Kong's schemas change."""
        major, minor, _ = self.release
        return major, minor

    @property
    def is_enterprise(self) -> bool:
        """True for Kong Enterprise / Kong Gateway images."""
        return self.edition == "enterprise"

    @property
    def label(self) -> str:
        """Human label such as `Kong 2.8.1 OSS`."""
        return f"Kong {self.version} {'Enterprise' if self.is_enterprise else 'OSS'}"

    @property
    def enabled_plugins(self) -> frozenset[str]:
        """KONG_PLUGINS with `bundled` expanded and `off` honoured."""
        names: set[str] = set()
        for name in self.plugins:
            if name == "bundled":
                names.update(bundled_plugins(self.minor_version))
            elif name != "off":
                names.add(name)
        return frozenset(names)

    @property
    def bundled_enabled(self) -> bool:
        """True when KONG_PLUGINS contains `bundled` (Enterprise bundles more than we know)."""
        return "bundled" in self.plugins

    def at_least(self, version: Version) -> bool:
        """True when the target is this (major, minor) or newer."""
        return self.minor_version >= version

    @classmethod
    def from_image(
        cls,
        image: str,
        kong_plugins_env: str | None = None,
        realtime_tenant: str = "realtime-dev",
    ) -> KongTarget:
        """Derive the target from a Docker image reference such as `kong/kong:3.9.1`.

        `kong_plugins_env` is the container's KONG_PLUGINS; None means Supabase's list, an
        empty string means Kong's own default (`bundled`).
        """
        repository, tag = _split_image(image)
        version = _version_from_tag(image, tag)
        name = repository.rsplit("/", 1)[-1].lower()
        edition = "enterprise" if name.startswith(_ENTERPRISE_IMAGE_NAMES) else "oss"
        if kong_plugins_env is None:
            plugins: tuple[str, ...] = SUPABASE_PLUGINS
        else:
            plugins = _split_plugins(kong_plugins_env) or ("bundled",)
        return cls(version, edition, plugins, realtime_tenant)


def _split_image(image: str) -> tuple[str, str | None]:
    reference = image.strip().split("@", 1)[0]  # a digest alone says nothing about the version
    last = reference.rsplit("/", 1)[-1]
    if ":" not in last:
        return reference, None
    repository, _, tag = reference.rpartition(":")
    return repository, tag


def _version_from_tag(image: str, tag: str | None) -> str:
    pin_hint = (
        "pin kong_version in the inventory (e.g. kong:2.8.1 or kong/kong:3.9.1) so the "
        "config is validated against the Kong that will load it"
    )
    if not tag or tag == "latest":
        raise ValueError(f"image {image!r} does not name a Kong version: {pin_hint}")
    version = tag.split("-", 1)[0]
    if not re.match(r"^v?\d+\.\d+", version):
        raise ValueError(f"image tag {tag!r} of {image!r} is not a Kong version: {pin_hint}")
    parse_version(version)
    return version.lstrip("v")
