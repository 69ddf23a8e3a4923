"""Reload or restart: a pure choice from the host's profile, its Kong container and the plan.

Kong DB-less takes a new declarative config on ``POST /config`` of its Admin API without
touching nginx or open connections
(docs.konghq.com/gateway/latest/admin-api/declarative-configuration).
A reload is chosen when that can work: a running DB-less Kong whose entrypoint supakong can
re-run, with an Admin API listening (``admin_listen``, default ``127.0.0.1:8001``, reached
from inside the container). Everything else restarts the container as before, with why.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..container import ContainerState
from ..hostprofile import AWK, EVAL, KONG, NO_EXPANSION, HostProfile

RELOADED, RESTARTED = "reloaded", "restarted"
#: kong_defaults.lua's admin_listen (Kong 2.8.1 and 3.9.x).
DEFAULT_ADMIN_LISTEN = "127.0.0.1:8001 reuseport backlog=16384, 127.0.0.1:8444 http2 ssl reuseport backlog=16384"
#: Kong 3.x answers 201 before its workers rebuild their routers (kong/db/declarative/import.lua):
#: give them this long before the verification probes a route.
V3_SETTLE_SECONDS = 1.0


@dataclass(frozen=True)
class ApplyChoice:
    """How this host's Kong gets the new file: ``reloaded`` or ``restarted``, and why."""

    method: str
    why: str
    admin_url: str = ""
    settle: float = 0.0

    @property
    def reload(self) -> bool:
        return self.method == RELOADED

    def describe(self) -> str:
        if self.reload:
            return f"apply: reload through Kong's Admin API ({self.admin_url}/config, in the container)"
        return f"apply: restart Kong ({self.why})"


def admin_url(admin_listen: str) -> str | None:
    """The http URL of the first plain ``admin_listen`` address, as reached from inside the
    container (a wildcard address is reached on loopback); None when off or TLS only."""
    for entry in admin_listen.split(","):
        words = entry.split()
        if not words or words[0] == "off" or "ssl" in words[1:]:
            continue
        host, _, port = words[0].rpartition(":")
        host = host.strip("[]")
        if host in ("", "0.0.0.0", "*", "::"):
            host = "127.0.0.1"
        return f"http://{'[' + host + ']' if ':' in host else host}:{port}"
    return None


def choose_apply(
    kong: ContainerState, profile: HostProfile, *, replace: bool, force_restart: bool = False
) -> ApplyChoice:
    """Reload when every condition for ``POST /config`` holds, else restart with the first
    reason that rules the reload out."""

    def restart(why: str) -> ApplyChoice:
        return ApplyChoice(RESTARTED, why)

    env = kong.env
    listen = env.get("KONG_ADMIN_LISTEN", "").strip() or DEFAULT_ADMIN_LISTEN
    url = admin_url(listen)
    if force_restart:
        return restart("--restart")
    if not replace:
        return restart("the file is unchanged; Kong must start to load it")
    if profile.gateway != KONG or not kong.exists:
        return restart(f"{kong.name} is not a Kong container")
    if not kong.running or kong.restarting:
        return restart(f"Kong is {kong.status}: starting it loads the file")
    if kong.health == "unhealthy":
        return restart("Kong is running but unhealthy")
    if env.get("KONG_DATABASE", "").strip() != "off":
        return restart("Kong is not DB-less (KONG_DATABASE is not off): POST /config is DB-less only")
    if not profile.declarative_config:
        return restart("KONG_DECLARATIVE_CONFIG is not set: the container's file would not follow the reload")
    if profile.expansion == AWK and not (profile.entrypoint_script and profile.template_mount):
        return restart("the entrypoint script or the template's mount is unknown: cannot render as it does")
    if profile.expansion not in (EVAL, AWK, NO_EXPANSION):
        return restart(f"unknown expansion {profile.expansion}")
    if url is None:
        return restart(f"the Admin API is off (KONG_ADMIN_LISTEN={listen})")
    major = (profile.kong_version or "0").split(".")[0]
    settle = V3_SETTLE_SECONDS if major.isdigit() and int(major) >= 3 else 0.0
    return ApplyChoice(RELOADED, "POST /config", url, settle)
