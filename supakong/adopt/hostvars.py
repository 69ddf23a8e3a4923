"""What init writes into the inventory from its survey, each value with where it came from.

Pure. Two kinds of values: those the inventory needs to deploy (containers, the file and
its mount, the public URL, the template, the engine's socket, the realtime upstream), and,
under ``supakong_discovered``, what init saw for the reader (Kong's version, plugins,
entrypoint, router flavor, owner…): supakong reads those from the host again on every run,
so they are informational, not pins.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..hostprofile import AWK, EVAL, NO_EXPANSION, HostProfile
from ..inventory import INLINE, REFERENCE
from ..kong.entities import Upstream
from .localfiles import Entry
from .survey import Survey

DISCOVERED = "supakong_discovered"
_ENTRYPOINTS = {
    EVAL: "eval: the compose entrypoint expands $NAME with a shell eval",
    AWK: "awk: the mounted kong-entrypoint.sh substitutes $NAME",
    NO_EXPANSION: "none: Kong loads the mounted file as is",
}


@dataclass(frozen=True)
class SshTarget:
    """``--ssh [user@]host[:port]``."""

    host: str
    user: str | None = None
    port: int | None = None

    @classmethod
    def parse(cls, text: str) -> SshTarget:
        """Split ``[user@]host[:port]``; ValueError on anything else."""
        user, _, rest = text.rpartition("@")
        host, colon, port = rest.partition(":")
        if not host or (colon and not port.isdigit()) or any(c.isspace() for c in text):
            raise ValueError(f"--ssh: expected [user@]host[:port] or an ssh config alias, got {text!r}")
        return cls(host, user or None, int(port) if colon else None)


def connection_vars(name: str, ssh: SshTarget, ssh_config: str | None) -> dict[str, object]:
    """The host's entry in hosts.yml: Ansible's connection variables."""
    found: dict[str, object] = {}
    if ssh.host != name:
        found["ansible_host"] = ssh.host
    if ssh.user:
        found["ansible_user"] = ssh.user
    if ssh.port:
        found["ansible_port"] = ssh.port
    if ssh_config:
        found["ssh_config_file"] = ssh_config
    return found


def inventory_entries(
    survey: Survey,
    public_url: tuple[str, str],
    upstream: tuple[Upstream, str] | None,
    template: str,
) -> list[Entry]:
    """The variables a deploy needs, with their sources."""
    p, kong = survey.profile, survey.kong
    url, url_source = public_url
    entries = [
        Entry("public_url", url, url_source),
        Entry("kong_container", kong.name, _found_by(survey, "kong")),
        Entry("kong_config_path", p.template_source, f"bind-mounted into {kong.name} at {p.template_mount}"),
        Entry("kong_config_mount", p.template_mount, f"what {kong.name}'s entrypoint reads ({p.expansion})"),
    ]
    if survey.realtime is not None:
        entries.insert(2, Entry("realtime_container", survey.realtime.name, _found_by(survey, "realtime")))
    if survey.docker_socket:
        entries.append(Entry("docker_socket", survey.docker_socket, "DOCKER_HOST of the SSH session"))
    if upstream is not None:
        found, service = upstream
        where = f"the url of service {service} in the live file"
        entries.append(Entry("realtime_upstream_host", found.host, where))
        if found.port:
            entries.append(Entry("realtime_upstream_port", found.port, where))
    entries.append(Entry("kong_template", template, f"{survey.live_path}, imported (keys as $NAME references)"))
    if p.expands_references:
        entries.append(Entry("kong_secrets", REFERENCE, f"{kong.name} holds the keys; its entrypoint expands them"))
    else:
        entries.append(Entry("kong_secrets", INLINE, "Kong loads the file as is: put the keys in secrets_env_file"))
    return entries


def _found_by(survey: Survey, role: str) -> str:
    found = survey.discovery.kong if role == "kong" else survey.discovery.realtime
    if found is None:
        return ""
    service = f", compose service {found.service}" if found.service else ""
    return f"image {found.image}{service}"


def discovered_entries(survey: Survey) -> list[Entry]:
    """What init saw, for the reader (re-read from the host on every run)."""
    p: HostProfile = survey.profile
    owner = p.owner
    script = f" ({p.entrypoint_script})" if p.entrypoint_script else ""
    entries = [
        Entry("kong_image", p.kong_image, f"image of {p.kong_container}"),
        Entry("kong_version", p.kong_version, p.kong_version_source),
        Entry("kong_edition", p.kong_edition, "from the image name"),
        Entry("kong_plugins", p.kong_plugins, "KONG_PLUGINS" if p.kong_plugins is not None else "KONG_PLUGINS not set"),
        Entry("router_flavor", p.router_flavor, p.router_flavor_source),
        Entry("entrypoint", p.expansion, _ENTRYPOINTS[p.expansion] + script),
        Entry("declarative_config", p.declarative_config, "KONG_DECLARATIVE_CONFIG: the file Kong loads"),
        Entry("kong_credentials", sorted(p.secret_env), "names only, in Kong's environment"),
        Entry("realtime_tenant", p.realtime_tenant, p.tenant_source),
        Entry("db_container", p.db_container, "image supabase/postgres" if p.db_container else "none found"),
        Entry("owner", owner.kind, _owner_source(survey)),
    ]
    if owner.project:
        entries.append(Entry("compose_project", owner.project, "com.docker.compose.project"))
        entries.append(Entry("compose_working_dir", owner.working_dir, "com.docker.compose.project.working_dir"))
    entries.append(
        Entry(
            "dokploy_markers",
            list(owner.markers),
            "seen: deploy-kong goes through Dokploy's API (dokploy_url)" if owner.markers else "none seen",
        )
    )
    stack = survey.profile.dokploy
    if stack is not None:
        entries.append(Entry("dokploy_app_name", stack.app_name, f"Dokploy {stack.mode} service"))
        entries.append(Entry("dokploy_file_mount", stack.file_path, f"{stack.location}/ of {stack.base}"))
    return entries


def _owner_source(survey: Survey) -> str:
    kind = survey.profile.owner.kind
    if kind == "dokploy":
        return "its compose project lives under /etc/dokploy/compose/"
    if kind == "compose":
        return "compose labels of the kong container"
    return "no compose labels (docker run)"
