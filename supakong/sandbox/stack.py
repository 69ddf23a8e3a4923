"""The sandbox's Supabase gateway stack: images, secrets, the seed config and the Kong and
Realtime containers (the db container is :mod:`supakong.sandbox.db`).

There is no image registry here, so images are made with ``docker import`` from a small
busybox tarball; the stand-ins run on the host's Python, bind-mounted read-only (``/usr``,
``/lib``, ``/lib64`` and the virtualenv). Images carry the real names and tags
(``kong:2.8.1``, ``kong/kong:3.9.1``, ``supabase/realtime:…``) so that supakong reads the
Kong version from the image tag exactly as it does on a real server.
"""

from __future__ import annotations

import io
import os
import secrets as pysecrets
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from typing import Any

import docker
import jwt

from ..container import parse_docker_time, probed_healthy, state_from_inspect
from ..errors import DeployError
from ..secrets import KONG_CREDENTIAL_NAMES
from .db import DB_IMAGE, DB_IMAGE_ENV, postgres_ids
from .spec import SSH_USER, STANDINS_DIR, SUPABASE_PLUGINS, SUPABASE_PLUGINS_2026, SandboxSpec, compose_labels

KONG_IMAGES = {"kong:2.8.1": "2.8.1", "kong/kong:3.9.1": "3.9.1", "kong/kong:3.9.3": "3.9.3"}
REALTIME_IMAGE_VERSION = "v2.129.8"
SEEDS = Path(__file__).resolve().parent
SEED_CONFIG = SEEDS / "seed-kong.yml"  # the default seed
#: The sandbox's own kong-entrypoint.sh (what Supabase's 2026 Kong container runs).
KONG_ENTRYPOINT_SCRIPT = SEEDS / "kong-entrypoint.sh"
#: Supabase's 2.8.1 compose entrypoint, verbatim in spirit: expand $VARS with a shell eval
#: into the file Kong reads, then start Kong.
KONG_ENTRYPOINT = 'eval "echo \\"$(cat /home/kong/temp.yml)\\"" > /home/kong/kong.yml && exec kong docker-start'
SECOND = 1_000_000_000  # Docker durations are in nanoseconds


def docker_client(spec: SandboxSpec) -> docker.APIClient:
    """A local API client for the VPS's engine (the sandbox's own setup only)."""
    return docker.APIClient(base_url=f"unix://{spec.docker_socket}", version="auto", timeout=60)


#: What each Kong image has besides busybox's applets: Kong's images have no curl; both
#: have bash, perl and OpenResty's ``resty`` (Kong/kong@3.9.1:build/package/nfpm.yaml,
#: Kong/docker-kong@2.8.1:alpine/Dockerfile). 2.8.1 is Alpine (BusyBox wget and nc stay);
#: kong/kong:3.9.x is Ubuntu with neither.
KONG_IMAGE_LINKS = {"bin/bash": "/usr/bin/bash", "bin/perl": "/usr/bin/perl"}
UBUNTU_LACKS = frozenset({"wget", "nc"})
#: Bumped when the images' contents change, so a sandbox made earlier re-imports them.
IMAGE_REVISION = "2"


def busybox_tarball(kong_version: str | None = None) -> bytes:
    """A minimal root filesystem: busybox, its applets, a ``kong`` wrapper and a few dirs;
    for a Kong image (``kong_version``) also what that image has of bash, perl and resty."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        dirs = ("bin", "etc", "home", "home/kong", "tmp", "var", "var/run", "var/run/kong", "standins", "var/lib")
        for d in (*dirs, "usr", "usr/local", "usr/local/kong"):
            info = tarfile.TarInfo(d)
            info.type, info.mode = tarfile.DIRTYPE, 0o1777 if d == "tmp" else 0o755
            tar.addfile(info)
        _add_users(tar)
        tar.add(shutil.which("busybox") or "/bin/busybox", arcname="bin/busybox")
        applets = subprocess.run(["busybox", "--list"], capture_output=True, text=True, check=True).stdout.split()
        lacks = UBUNTU_LACKS if kong_version and not kong_version.startswith("2.") else frozenset()
        for applet in applets:
            if applet != "busybox" and applet not in lacks:
                info = tarfile.TarInfo(f"bin/{applet}")
                info.type, info.linkname = tarfile.SYMTYPE, "busybox"
                tar.addfile(info)
        _add_script(tar, "bin/kong", 'exec "$STANDIN_PYTHON" /standins/kong_standin.py "$@"\n')
        _add_script(tar, "bin/realtime", 'exec "$STANDIN_PYTHON" /standins/realtime_standin.py "$@"\n')
        if kong_version:
            _add_script(tar, "bin/resty", 'exec "$STANDIN_PYTHON" /standins/resty_standin.py "$@"\n')
            for name, target in KONG_IMAGE_LINKS.items():
                info = tarfile.TarInfo(name)
                info.type, info.linkname = tarfile.SYMTYPE, target
                tar.addfile(info)
        # Kong's image entrypoint (build/dockerfiles/entrypoint.sh) starts `kong docker-start`
        # in the foreground; the stand-in's `kong` does that itself.
        _add_script(tar, "entrypoint.sh", 'exec "$@"\n')
    return buf.getvalue()


def _add_script(tar: tarfile.TarFile, name: str, body: str) -> None:
    _add_file(tar, name, ("#!/bin/sh\n" + body).encode(), 0o755)


def _add_file(tar: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644) -> None:
    info = tarfile.TarInfo(name)
    info.mode, info.size = mode, len(data)
    tar.addfile(info, io.BytesIO(data))


def _add_users(tar: tarfile.TarFile) -> None:
    """root, and the db image's postgres user with the host's ids (the owner of its data
    directory on the volume), plus that user's directories."""
    users, groups = ["root:x:0:0:root:/root:/bin/sh"], ["root:x:0:"]
    try:
        uid, gid = postgres_ids()
    except DeployError:
        uid = gid = -1  # no postgresql-15 on this machine: the db container cannot run anyway
    if uid >= 0:
        users.append(f"postgres:x:{uid}:{gid}:PostgreSQL:/var/lib/postgresql:/bin/sh")
        groups.append(f"postgres:x:{gid}:")
        for d in ("var/lib/postgresql", "var/run/postgresql"):
            info = tarfile.TarInfo(d)
            info.type, info.mode, info.uid, info.gid = tarfile.DIRTYPE, 0o2775, uid, gid
            tar.addfile(info)
    _add_file(tar, "etc/passwd", ("\n".join(users) + "\n").encode())
    _add_file(tar, "etc/group", ("\n".join(groups) + "\n").encode())


def _current_images(client: docker.APIClient) -> set[str]:
    """Tags of this revision's images (an older revision's are imported again)."""
    have = set()
    for image in client.images():
        for tag in image.get("RepoTags") or []:
            if tag not in KONG_IMAGES:  # e.g. "<none>:<none>" of a replaced image: not inspectable
                have.add(tag)
                continue
            env = client.inspect_image(tag)["Config"].get("Env") or []
            if f"SUPAKONG_IMAGE_REVISION={IMAGE_REVISION}" in env:
                have.add(tag)
    return have


def ensure_images(client: docker.APIClient, spec: SandboxSpec) -> None:
    """Import the Kong and Realtime images if the engine does not have them yet."""
    have = _current_images(client)
    # Kong's images: PATH without /usr/bin, whose host binaries (curl, wget) the real
    # images lack; the Kong-only tools are linked into /bin.
    wanted: dict[str, list[str]] = {
        name: [
            f"ENV KONG_VERSION={version}",
            "ENV KONG_PREFIX=/var/run/kong",
            f"ENV SUPAKONG_IMAGE_REVISION={IMAGE_REVISION}",
            "ENV PATH=/bin",
        ]
        for name, version in KONG_IMAGES.items()
    }
    # Realtime's Dockerfile sets SLOT_NAME_SUFFIX from a build argument, empty in the images.
    version = spec.realtime_image.rsplit(":", 1)[1]
    wanted[spec.realtime_image] = [f"ENV REALTIME_VERSION={version}", "ENV SLOT_NAME_SUFFIX="]
    wanted[DB_IMAGE] = list(DB_IMAGE_ENV)
    if spec.dokploy:
        wanted["dokploy/dokploy:v0.25.0"] = ["ENV NODE_ENV=production"]
    for name, changes in wanted.items():
        if name in have:
            continue
        repository, tag = name.rsplit(":", 1)
        default_path = [] if name in (DB_IMAGE, *KONG_IMAGES) else ["ENV PATH=/bin:/usr/sbin:/usr/bin"]
        client.import_image_from_data(
            busybox_tarball(KONG_IMAGES.get(name)),
            repository=repository,
            tag=tag,
            changes=[*changes, *default_path, 'CMD ["/bin/sh"]'],
        )


def ensure_secrets(spec: SandboxSpec) -> dict[str, str]:
    """The sandbox's JWT secret, the anon/service keys signed with it and the db's
    POSTGRES_PASSWORD; with ``spec.api_keys`` also today's opaque keys, ES256 JWTs and JWKS
    (:mod:`supakong.sandbox.api_keys`) and the dashboard's credentials. Made once; values a
    file made earlier lacks are added to it."""
    values: dict[str, str] = {}
    if spec.secrets_path.exists():
        from ..secrets import parse_env_file

        values = parse_env_file(spec.secrets_path.read_text(), str(spec.secrets_path))
    missing = {k: v for k, v in _new_secrets(spec, values).items() if k not in values}
    if missing:
        spec.secrets_path.touch(mode=0o600)
        with spec.secrets_path.open("a") as env_file:
            env_file.write("".join(f"{k}={v}\n" for k, v in missing.items()))
    return {**values, **missing}


def _new_secrets(spec: SandboxSpec, have: dict[str, str]) -> dict[str, str]:
    """Fresh values for every secret the sandbox has (the caller keeps the ones it has)."""
    jwt_secret = have.get("JWT_SECRET") or pysecrets.token_urlsafe(32)
    now = int(time.time())
    claims = {"iss": "supabase", "iat": now, "exp": now + 10 * 365 * 86400}
    values = {
        "JWT_SECRET": jwt_secret,
        "SUPABASE_ANON_KEY": jwt.encode({**claims, "role": "anon"}, jwt_secret, algorithm="HS256"),
        "SUPABASE_SERVICE_KEY": jwt.encode({**claims, "role": "service_role"}, jwt_secret, algorithm="HS256"),
        "POSTGRES_PASSWORD": pysecrets.token_urlsafe(24),
    }
    if spec.api_keys:
        from .api_keys import NAMES, make_api_keys

        if not all(name in have for name in NAMES):  # one set: the JWTs need their JWKS
            values.update(make_api_keys(jwt_secret, now))
        values.update(DASHBOARD_USERNAME="supabase", DASHBOARD_PASSWORD=pysecrets.token_urlsafe(16))
    return values


def seed_config(spec: SandboxSpec, force: bool = False) -> None:
    """Put Supabase's stock-style file (with a realistic realtime bug) on the VPS volume."""
    path = spec.kong_config_path
    path.parent.mkdir(parents=True, exist_ok=True)
    for d in (spec.srv_dir, spec.srv_dir / "volumes", path.parent):
        shutil.chown(d, SSH_USER, SSH_USER)
        d.chmod(0o755)
    if force:
        # A fresh before state: no backups, lock, audit log or temp files of earlier runs.
        shutil.rmtree(path.parent / ".supakong", ignore_errors=True)
        for stray in path.parent.glob(f".{path.name}.supakong-*.tmp"):
            stray.unlink()
    if force or not path.exists():
        path.write_text((SEEDS / spec.seed).read_text())
        path.chmod(0o640)
        shutil.chown(path, SSH_USER, SSH_USER)


def _runtime_binds(spec: SandboxSpec, *, own_usr_local: bool = False) -> dict[str, dict[str, str]]:
    """The host's runtime for the stand-ins, read-only. ``own_usr_local`` keeps the image's
    /usr/local (the 2026 Kong writes /usr/local/kong/kong.yml) by binding /usr's other parts."""
    usr = [f"/usr/{d}" for d in sorted(os.listdir("/usr")) if d != "local"] if own_usr_local else ["/usr"]
    binds = {p: {"bind": p, "mode": "ro"} for p in (*usr, "/lib", "/lib64")}
    for prefix in {sys.prefix, sys.base_prefix}:
        if not prefix.startswith("/usr"):
            binds[prefix] = {"bind": prefix, "mode": "ro"}
    binds[str(STANDINS_DIR)] = {"bind": "/standins", "mode": "ro"}
    return binds


#: Variables of Supabase's 2026 Kong service besides KONG_* (docker-compose.kong.yml); the
#: ones the sandbox's secrets lack are empty, as in Supabase's .env.example.
KONG_2026_VARIABLES = (*KONG_CREDENTIAL_NAMES, "JWT_ISSUER")


def create_kong(
    client: docker.APIClient, spec: SandboxSpec, keys: dict[str, str], template: Path | None = None
) -> None:
    """The Kong stand-in, started the way Supabase's compose of the spec's era starts Kong;
    ``template`` replaces the VPS's kong config (the file mounted at /home/kong/temp.yml).

    "legacy": the 2.8.1 compose's eval one-liner. "2026": docker-compose.kong.yml's
    ``/bin/sh /home/kong/kong-entrypoint.sh`` with the script mounted, writing
    /usr/local/kong/kong.yml, the expressions router and post-function."""
    modern = spec.kong_era == "2026"
    binds = _runtime_binds(spec, own_usr_local=modern)
    binds[str(template or spec.kong_config_path)] = {"bind": "/home/kong/temp.yml", "mode": "ro"}
    if modern:
        binds[str(KONG_ENTRYPOINT_SCRIPT)] = {"bind": "/home/kong/kong-entrypoint.sh", "mode": "ro"}
        start: dict[str, Any] = {"entrypoint": ["/bin/sh", "/home/kong/kong-entrypoint.sh"]}
        environment = {
            "KONG_DECLARATIVE_CONFIG": "/usr/local/kong/kong.yml",
            "KONG_ROUTER_FLAVOR": "expressions",
            "KONG_PLUGINS": SUPABASE_PLUGINS_2026,
            **{name: keys.get(name, "") for name in KONG_2026_VARIABLES},
        }
    else:
        start = {"entrypoint": ["/bin/sh", "-c"], "command": [KONG_ENTRYPOINT]}
        environment = {
            "KONG_DECLARATIVE_CONFIG": "/home/kong/kong.yml",
            "KONG_PLUGINS": SUPABASE_PLUGINS,
            "SUPABASE_ANON_KEY": keys["SUPABASE_ANON_KEY"],
            "SUPABASE_SERVICE_KEY": keys["SUPABASE_SERVICE_KEY"],
        }
    host_config = client.create_host_config(
        network_mode="host",
        binds=binds,
        restart_policy={"Name": "unless-stopped"},
        extra_hosts={spec.realtime_upstream_host: "127.0.0.1"},
    )
    client.create_container(
        spec.kong_image,
        name=spec.kong_container,
        environment={
            "KONG_DATABASE": "off",
            "KONG_DNS_ORDER": "LAST,A,CNAME",
            "KONG_PROXY_LISTEN": f"0.0.0.0:{spec.kong_port}",
            **environment,
            **({"KONG_ADMIN_LISTEN": spec.kong_admin_listen} if spec.kong_admin_listen else {}),
            "STANDIN_PYTHON": sys.executable,
        },
        healthcheck={"test": ["CMD", "kong", "health"], "interval": 2 * SECOND, "timeout": 5 * SECOND, "retries": 3},
        host_config=host_config,
        labels=compose_labels(spec, "kong"),
        **start,
    )


def create_realtime(client: docker.APIClient, spec: SandboxSpec, keys: dict[str, str]) -> None:
    """The Realtime stand-in, reachable from Kong as ``realtime_upstream_host:4000``, with
    the compose file's connection to the db (``DB_HOST=db``, here the VPS's address)."""
    host_config = client.create_host_config(
        network_mode="host",
        binds=_runtime_binds(spec),
        restart_policy={"Name": "unless-stopped"},
        extra_hosts={"db": spec.vps_addr},
    )
    client.create_container(
        spec.realtime_image,
        name=spec.realtime_container,
        command=["realtime"],
        # Upstream's compose ships `#API_JWT_JWKS: ${JWT_JWKS:-{"keys":[]}}` commented out;
        # the modern sandbox has it on (add-new-auth-keys.sh uncomments it since 2026-04).
        environment=realtime_environment(
            spec, keys["JWT_SECRET"], keys["POSTGRES_PASSWORD"], keys["JWT_JWKS"] if spec.realtime_jwks else None
        ),
        host_config=host_config,
        labels=compose_labels(spec, "realtime"),
    )


def realtime_environment(
    spec: SandboxSpec, jwt_secret: str, db_password: str, jwks: str | None = None, python: str = sys.executable
) -> dict[str, str]:
    """The Realtime container's environment as Supabase's compose sets it (values, or a
    compose file's ``${NAME}`` references), run by the stand-in on ``python``."""
    return {
        "PORT": "4000",
        "HOST": "127.0.0.1",
        "API_JWT_SECRET": jwt_secret,
        **({"API_JWT_JWKS": jwks} if jwks is not None else {}),
        "SELF_HOST_TENANT_NAME": spec.tenant,
        "APP_NAME": "realtime",
        "SEED_SELF_HOST": "true",
        "DB_HOST": "db",
        "DB_PORT": "5432",
        "DB_USER": "supabase_admin",
        "DB_PASSWORD": db_password,
        "DB_NAME": "postgres",
        "DB_AFTER_CONNECT_QUERY": "SET search_path TO _realtime",
        "DB_ENC_KEY": "supabaserealtime",
        "STANDIN_PYTHON": python,
    }


def ensure_containers(client: docker.APIClient, spec: SandboxSpec, keys: dict[str, str], recreate: bool) -> None:
    """Create (or recreate) both containers and start them."""
    existing = {c["Names"][0].lstrip("/"): c for c in client.containers(all=True)}
    for name, create in ((spec.realtime_container, create_realtime), (spec.kong_container, create_kong)):
        if name in existing and not recreate and not _runs_this_checkout(client, name):
            recreate_this = True  # made by another checkout or virtualenv: its paths may be gone
        else:
            recreate_this = recreate
        if name in existing and recreate_this:
            client.remove_container(name, force=True)
            existing.pop(name)
        if name not in existing:
            create(client, spec, keys)
        client.start(name)


def _runs_this_checkout(client: docker.APIClient, name: str) -> bool:
    """True if the container uses this interpreter and this checkout's stand-ins (and was
    made with compose's labels)."""
    info = client.inspect_container(name)
    env = dict(e.split("=", 1) for e in info["Config"].get("Env") or [] if "=" in e)
    sources = {m.get("Source") for m in info.get("Mounts") or []}
    labelled = "com.docker.compose.project" in (info["Config"].get("Labels") or {})
    current_image = info["Image"] == client.inspect_image(info["Config"]["Image"])["Id"]
    return env.get("STANDIN_PYTHON") == sys.executable and str(STANDINS_DIR) in sources and labelled and current_image


def wait_running(
    client: docker.APIClient,
    name: str,
    *,
    healthy: bool = False,
    log_marker: bytes | None = None,
    timeout: float = 30.0,
) -> dict[str, Any]:
    """Wait until a container runs (and is healthy / has logged ``log_marker``). Healthy
    means Docker says so, or the container's healthcheck command passes when we run it now
    (Docker's own first probe comes only an ``interval`` after the start)."""
    deadline, delay = time.monotonic() + timeout, 0.05
    state: dict[str, Any] = {}
    while time.monotonic() < deadline:
        data = client.inspect_container(name)
        state = data["State"]
        ready = state.get("Running") and not state.get("Restarting")
        if ready and healthy:
            status = (state.get("Health") or {}).get("Status")
            ready = status in (None, "healthy") or probed_healthy(client, state_from_inspect(name, data)) is not None
        if ready and log_marker:
            # Only this incarnation's lines: after a restart the old marker is still in the log.
            # They come after the last incarnation's FinishedAt (none: every line), not after
            # StartedAt: dockerd records StartedAt once the process already runs, and a line
            # printed at once can be older; and not after StartedAt's whole second either: a
            # restart within that second would still see the old marker.
            finished = parse_docker_time(state.get("FinishedAt", ""))
            ready = log_marker in client.logs(name, stdout=True, stderr=True, since=finished or None)
        if ready:
            return state
        time.sleep(delay)
        delay = min(delay * 1.5, 0.5)
    raise DeployError(f"sandbox: container {name} is not ready: {state.get('Status')} {state.get('Health', {})}")
