"""The read-only look ``supakong init`` takes at a server it did not build: one shell
command (the session's ``DOCKER_HOST``, Dokploy's directory), the engine's container list,
the inspections of the containers that matter, and the kong file Kong's container mounts.
Nothing on the server is written, started or restarted.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from ..container import ContainerState, inspect_container
from ..discovery import ContainerSummary, Discovery, discover, summaries
from ..envoy import SWITCH_TO_KONG, envoy_detail
from ..envrefs import register_file_credentials
from ..errors import InventoryError
from ..hostprofile import HostProfile, build_profile
from ..secrets import register_env_secrets
from ..transport import HostConnection

#: What the session says about the host: its DOCKER_HOST, and whether Dokploy lives there.
_PROBE = 'printf "docker_host=%s\\n" "$DOCKER_HOST"; [ -d /etc/dokploy ] && echo dokploy=/etc/dokploy; exit 0'
#: Supabase's services whose environment names the public URL (auth: API_EXTERNAL_URL,
#: studio: SUPABASE_PUBLIC_URL; supabase/supabase docker/docker-compose.yml).
URL_SERVICES = {"auth": "API_EXTERNAL_URL", "studio": "SUPABASE_PUBLIC_URL"}


@dataclass(frozen=True)
class Survey:
    """Everything init read on the host."""

    ssh_address: str  # the host init dialled (after the ssh config), for the public URL
    docker_socket: str | None  # from the session's DOCKER_HOST (unix://…), if any
    discovery: Discovery
    kong: ContainerState
    realtime: ContainerState | None
    db: ContainerState | None
    profile: HostProfile
    live_path: str
    live_text: str = field(repr=False)
    public_urls: tuple[tuple[str, str], ...] = ()  # (url, where it was read)


def take_survey(conn: HostConnection, project: str | None = None) -> Survey:
    """Read the host (see the module doc); :class:`InventoryError` when it has no Kong whose
    file supakong could deploy."""
    name = conn.host.name
    session = _session(conn)
    socket = session.get("docker_host", "")
    docker_socket = socket[len("unix://") :] if socket.startswith("unix://") else None
    if docker_socket:  # the engine the session's docker CLI uses: the one to read
        conn.host = dataclasses.replace(conn.host, docker_socket=docker_socket)
    engine = conn.engine()
    containers = summaries(engine.list_containers())
    found = discover(containers, project, host=name)
    kong = _require_kong(found, containers, name)
    state = inspect_container(engine, kong.name)
    register_env_secrets(state.env)
    realtime = inspect_container(engine, found.realtime.name) if found.realtime else None
    db = inspect_container(engine, found.db.name) if found.db else None
    markers = (f"{session['dokploy']} exists",) if session.get("dokploy") else ()
    profile = build_profile(
        state,
        realtime,
        db,
        envoy=found.envoy.name if found.envoy else None,
        containers=containers,
        host_markers=markers,
    )
    if profile.template_source is None:
        mounts = ", ".join(f"{src} → {dst}" for src, dst in state.mounts) or "none"
        raise InventoryError(
            f"{name}: {state.name} bind-mounts no kong file supakong could write (its mounts: {mounts});"
            " Supabase mounts ./volumes/api/kong.yml at /home/kong/temp.yml"
        )
    raw = conn.run(["cat", "--", profile.template_source]).stdout
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InventoryError(f"{name}: {profile.template_source} is not UTF-8 text (byte {exc.start})") from None
    register_file_credentials(text)  # keys and passwords in clear never print, even in a diff
    return Survey(
        ssh_address=conn.address.rsplit(":", 1)[0],
        docker_socket=docker_socket,
        discovery=found,
        kong=state,
        realtime=realtime,
        db=db,
        profile=profile,
        live_path=profile.template_source,
        live_text=text,
        public_urls=_public_urls(engine, found, containers),
    )


def _session(conn: HostConnection) -> dict[str, str]:
    lines = conn.run(["sh", "-c", _PROBE]).text.splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line)


def _require_kong(found: Discovery, containers: list[ContainerSummary], host: str) -> ContainerSummary:
    if found.kong is not None:
        return found.kong
    if found.envoy is not None:
        raise InventoryError(f"{host}: {envoy_detail(found.envoy)}; {SWITCH_TO_KONG}")
    listed = ", ".join(f"{c.name} ({c.image})" for c in containers[:12]) or "none"
    raise InventoryError(
        f"{host}: no Kong container (image kong, kong/kong or kong/kong-gateway, or compose service kong);"
        f" containers: {listed}"
    )


def _public_urls(engine: object, found: Discovery, containers: list[ContainerSummary]) -> tuple[tuple[str, str], ...]:
    """API_EXTERNAL_URL / SUPABASE_PUBLIC_URL of the stack's auth and studio containers."""
    urls = []
    for container in containers:
        variable = URL_SERVICES.get(container.service or "")
        if variable is None or container.project != found.project:
            continue
        value = inspect_container(engine, container.name).env.get(variable, "")
        if value:
            urls.append((value.rstrip("/"), f"{variable} of {container.name}"))
    return tuple(urls)


def choose_public_url(survey: Survey) -> tuple[str, str]:
    """(the URL browsers reach Kong at, where that came from): the stack's own public URL
    unless it is a loopback one, else Kong's published proxy port on the host init dialled."""
    for url, source in survey.public_urls:
        host = urlsplit(url).hostname or ""
        if host and host != "localhost" and not host.startswith("127.") and host != "0.0.0.0":
            return url, source
    kong = survey.kong
    for container_port in ("8000/tcp", "80/tcp"):
        for address, port in kong.published.get(container_port, ()):
            where = address if address not in ("", "0.0.0.0", "::") else survey.ssh_address
            return f"http://{where}:{port}", f"{kong.name} publishes {container_port} on {address or '*'}:{port}"
    if kong.network_mode == "host":
        port = _proxy_port(kong.env.get("KONG_PROXY_LISTEN", ""))
        return (
            f"http://{survey.ssh_address}:{port}",
            f"{kong.name} uses the host's network, proxy port {port} (KONG_PROXY_LISTEN)",
        )
    return f"http://{survey.ssh_address}:8000", "assumed: Kong's default proxy port 8000 on the SSH host; check it"


def _proxy_port(listen: str) -> str:
    """The port of KONG_PROXY_LISTEN's first address (Kong's default: 8000)."""
    first = listen.split(",", 1)[0].strip().split(" ", 1)[0]
    port = first.rsplit(":", 1)[-1] if ":" in first else ""
    return port if port.isdigit() else "8000"
