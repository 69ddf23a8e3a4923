"""Which Kong the config is meant for: version, edition, enabled plugins, router flavor,
and how the container's entrypoint expands the file before Kong reads it.

The validator's rules differ per Kong release, so every check reads the target. Supported:
2.8.x and 3.x (rules known up to 3.9; later 3.x use the 3.9 rules). Defaults follow the
self-hosted Supabase of each era: Kong 2.8.1 with the ``eval`` entrypoint and seven
plugins, Kong 3.x with the awk-based ``kong-entrypoint.sh`` and ``post-function`` too
(supabase/supabase:docker/docker-compose.yml before 2026-03, docker-compose.kong.yml after).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from ..supabase_env import SUPABASE_ENV

Version = tuple[int, int]

# The KONG_PLUGINS of Supabase's docker-compose.yml with kong:2.8.1.
SUPABASE_PLUGINS: tuple[str, ...] = (
    "request-transformer",
    "cors",
    "key-auth",
    "acl",
    "basic-auth",
    "request-termination",
    "ip-restriction",
)
# Since 2026-03 (kong/kong:3.9.x): post-function too (supabase/supabase:docker/docker-compose.kong.yml).
SUPABASE_PLUGINS_3X: tuple[str, ...] = (*SUPABASE_PLUGINS, "post-function")

EDITIONS = ("oss", "enterprise")
#: How the container turns the mounted file into the one Kong reads: ``eval`` (the
#: ``eval "echo \"$(cat ~/temp.yml)\""`` of Supabase's 2.8.1 compose), ``awk`` (Supabase's
#: kong-entrypoint.sh: ``$NAME`` from the environment, unknown names kept), ``none``.
EXPANSIONS = ("eval", "awk", "none")
#: KONG_ROUTER_FLAVOR (3.x; Kong/kong@3.9.3:kong/templates/kong_defaults.lua:189).
ROUTER_FLAVORS = ("traditional", "traditional_compatible", "expressions")

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


def _choice(value: str, allowed: tuple[str, ...], what: str, default: str) -> str:
    if not str(value).strip():
        return default
    choice = str(value).strip().lower()
    if choice not in allowed:
        raise ValueError(f"{what} must be one of {', '.join(allowed)}, not {value!r}")
    return choice


@dataclass(frozen=True)
class KongTarget:
    """The Kong a declarative config will be loaded into.

    Empty ``plugins``: Supabase's KONG_PLUGINS of the version's era. Empty ``expansion``:
    ``eval`` for 2.x, ``awk`` for 3.x. Empty ``router_flavor``: Kong's default
    (``traditional_compatible`` on 3.x; 2.8 has only the traditional router). ``env_names``
    None: the variables Supabase's Kong container has for the expansion.
    """

    version: str = "2.8.1"
    edition: str = "oss"
    plugins: tuple[str, ...] = ()
    realtime_tenant: str = "realtime-dev"
    expansion: str = ""
    router_flavor: str = ""
    env_names: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        major, _, _ = parse_version(self.version)  # raises ValueError with a clear message
        edition = str(self.edition).strip().lower()
        if edition not in EDITIONS:
            raise ValueError(f"edition must be 'oss' or 'enterprise', not {self.edition!r}")
        object.__setattr__(self, "edition", edition)
        era_plugins = SUPABASE_PLUGINS_3X if major >= 3 else SUPABASE_PLUGINS
        object.__setattr__(self, "plugins", _split_plugins(self.plugins or era_plugins))
        expansion = _choice(self.expansion, EXPANSIONS, "expansion", "awk" if major >= 3 else "eval")
        object.__setattr__(self, "expansion", expansion)
        flavor = _choice(self.router_flavor, ROUTER_FLAVORS, "router_flavor", "traditional_compatible")
        object.__setattr__(self, "router_flavor", flavor if major >= 3 else "traditional")
        names = SUPABASE_ENV[expansion] if self.env_names is None else self.env_names
        object.__setattr__(self, "env_names", tuple(names))

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

    def substitutes(self, name: str) -> bool:
        """True when the container's entrypoint replaces ``$name`` with a value."""
        return self.expansion != "none" and name in (self.env_names or ())

    def substitutes_any(self, text: str) -> bool:
        """True when ``text`` holds a ``$NAME`` the entrypoint replaces."""
        return any(self.substitutes(name) for name in re.findall(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)", text))

    @property
    def expressions_router(self) -> bool:
        """True when routes may (and can only) be matched by an ``expression``."""
        return self.router_flavor == "expressions"

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
        *,
        expansion: str | None = None,
        router_flavor: str | None = None,
        env_names: tuple[str, ...] | None = None,
    ) -> KongTarget:
        """Derive the target from a Docker image reference such as `kong/kong:3.9.1`.

        `kong_plugins_env` is the container's KONG_PLUGINS; None means Supabase's list of
        the version's era, an empty string means Kong's own default (`bundled`). The other
        keywords are the container's entrypoint kind, KONG_ROUTER_FLAVOR and env names.
        """
        repository, tag = _split_image(image)
        version = _version_from_tag(image, tag)
        name = repository.rsplit("/", 1)[-1].lower()
        edition = "enterprise" if name.startswith(_ENTERPRISE_IMAGE_NAMES) else "oss"
        plugins = () if kong_plugins_env is None else (_split_plugins(kong_plugins_env) or ("bundled",))
        return cls(version, edition, plugins, realtime_tenant, expansion or "", router_flavor or "", env_names)

    def with_overrides(self, **changes: str | None) -> KongTarget:
        """A copy with some of edition, expansion and router_flavor changed (None keeps the
        field); raises ValueError for a value Kong does not have."""
        kept: dict[str, object] = {key: value for key, value in changes.items() if value is not None}
        if "expansion" in kept:
            kept["env_names"] = None  # the variables follow the entrypoint
        return replace(self, **kept)  # type: ignore[arg-type]


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
