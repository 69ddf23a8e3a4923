"""The sandbox's Dokploy-managed Supabase (the ``sandbox-dokploy`` host profile): a Dokploy
stand-in container (``standins/dokploy_standin.py``) owning a compose service made from
Dokploy's Supabase template, laid out as Dokploy lays it out:

- ``/etc/dokploy/compose/<appName>/files/volumes/api/kong.yml`` and ``kong-entrypoint.sh``:
  the template's file mounts, written by Dokploy from its own stored copy;
- ``/etc/dokploy/compose/<appName>/code/docker-compose.yml`` and ``.env``: rewritten on every
  deploy from the stored compose text;
- containers ``<appName>-kong-1`` and ``<appName>-realtime-1`` made by Dokploy's deploy with
  compose's labels (project ``<appName>``, working dir ``…/code``).

``appName`` follows Dokploy's ``slugify("<project> supabase")-<6 chars>`` with the six
characters derived from the sandbox's name, so that sandboxes never share a directory. The
db container stays the sandbox's own (:mod:`supakong.sandbox.db`). The API listens on the
VPS's address, port 3000 (a Dokploy reached from another machine, as a remote server's is);
the API keys (an owner's and a member's with read-only volumes) are in ``dokploy.env`` in the
sandbox's state directory, their sha256 only in the stand-in's rows.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import secrets as pysecrets
import shutil
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import docker
import yaml

from ..errors import DeployError
from .spec import SSH_USER, SUPABASE_PLUGINS_2026, SandboxSpec
from .stack import KONG_2026_VARIABLES, realtime_environment

DOKPLOY_ROOT = Path("/etc/dokploy")
DOKPLOY_IMAGE = "dokploy/dokploy:v0.25.0"
DOKPLOY_CONTAINER = "dokploy"
DOKPLOY_PORT = 3000
KONG_IMAGE = "kong/kong:3.9.1"  # Dokploy's current Supabase template
KONG_MOUNT = "/volumes/api/kong.yml"
ENTRYPOINT_MOUNT = "/volumes/api/kong-entrypoint.sh"
SEED = Path(__file__).resolve().parent / "seed-kong-dokploy.yml"
ENTRYPOINT = Path(__file__).resolve().parent / "kong-entrypoint.sh"
KEY_ENV, READONLY_KEY_ENV = "DOKPLOY_API_KEY", "DOKPLOY_READONLY_API_KEY"
SECOND = 1_000_000_000


def dokploy_spec(name: str, index: int) -> SandboxSpec:
    """A sandbox whose Kong and Realtime are Dokploy's (containers ``<appName>-<service>-1``)."""
    spec = SandboxSpec(
        name=name,
        index=index,
        dokploy=True,
        kong_image=KONG_IMAGE,
        kong_era="2026",
        api_keys=True,  # the template's kong.yml: opaque keys and the dashboard's basic-auth
        realtime_jwks=True,
    )
    app = app_name(spec)
    return dataclasses.replace(
        spec,
        kong_container=f"{app}-kong-1",
        realtime_container=f"{app}-realtime-1",
        db_container=f"{name}-supabase-db",
    )


def app_name(spec: SandboxSpec) -> str:
    """Dokploy's appName for the sandbox's Supabase template service."""
    return f"{spec.name}-supabase-{hashlib.sha256(spec.name.encode()).hexdigest()[:6]}"


def compose_dir(spec: SandboxSpec) -> Path:
    return DOKPLOY_ROOT / "compose" / app_name(spec)


def files_path(spec: SandboxSpec, file_path: str = KONG_MOUNT) -> Path:
    """A file mount on disk: ``files/<filePath>``."""
    return compose_dir(spec) / "files" / file_path.lstrip("/")


def api_url(spec: SandboxSpec) -> str:
    return f"http://{spec.vps_addr}:{DOKPLOY_PORT}"


def db_path(spec: SandboxSpec) -> Path:
    return spec.state_dir / "dokploy" / "db.json"


def keys_path(spec: SandboxSpec) -> Path:
    return spec.state_dir / "dokploy.env"


def api_keys(spec: SandboxSpec) -> dict[str, str]:
    """The sandbox's Dokploy API keys (made once): ``DOKPLOY_API_KEY`` (owner) and
    ``DOKPLOY_READONLY_API_KEY`` (a member who may read volumes, not change them)."""
    path = keys_path(spec)
    if not path.exists():
        path.touch(mode=0o600)
        path.write_text("".join(f"{n}={pysecrets.token_urlsafe(32)}\n" for n in (KEY_ENV, READONLY_KEY_ENV)))
    return dict(line.split("=", 1) for line in path.read_text().split())


def runtime_binds(own_usr_local: bool) -> list[str]:
    """The host's runtime and the stand-ins, read-only, as compose volume strings."""
    from .stack import _runtime_binds

    return [f"{src}:{b['bind']}:ro" for src, b in _runtime_binds(SandboxSpec(), own_usr_local=own_usr_local).items()]


def compose_text(spec: SandboxSpec) -> str:
    """The compose text Dokploy stores for the service: the template's kong and realtime
    (``../files/…`` mounts), played by the stand-ins on the VPS's network."""
    python = sys.executable
    kong = {
        "image": KONG_IMAGE,
        "restart": "unless-stopped",
        "entrypoint": ["/bin/sh", "/home/kong/kong-entrypoint.sh"],
        "volumes": [
            f"../files{KONG_MOUNT}:/home/kong/temp.yml:ro,z",
            f"../files{ENTRYPOINT_MOUNT}:/home/kong/kong-entrypoint.sh:ro,z",
            *runtime_binds(True),
        ],
        "network_mode": "host",
        # In Dokploy's compose network Realtime is `realtime`; an alias gives it the
        # tenant-named host too (what the fixed upstream uses).
        "extra_hosts": ["realtime:127.0.0.1", f"{spec.realtime_upstream_host}:127.0.0.1"],
        "environment": {
            "KONG_DATABASE": "off",
            "KONG_DECLARATIVE_CONFIG": "/usr/local/kong/kong.yml",
            "KONG_DNS_ORDER": "LAST,A,CNAME",
            "KONG_PLUGINS": SUPABASE_PLUGINS_2026,
            "KONG_PROXY_LISTEN": f"0.0.0.0:{spec.kong_port}",
            "KONG_ROUTER_FLAVOR": "expressions",
            # The template's key variables (from the service's Environment), empty when unset.
            **{name: f"${{{name}}}" for name in KONG_2026_VARIABLES},
            "STANDIN_PYTHON": python,
        },
        # A loaded machine makes the stand-in's `kong health` slow: a generous timeout.
        "healthcheck": {"test": ["CMD", "kong", "health"], "interval": "2s", "timeout": "15s", "retries": 3},
    }
    realtime = {
        "image": spec.realtime_image,
        "restart": "unless-stopped",
        "command": ["realtime"],
        "volumes": runtime_binds(False),
        "network_mode": "host",
        "extra_hosts": [f"db:{spec.vps_addr}"],
        "environment": realtime_environment(spec, "${JWT_SECRET}", "${POSTGRES_PASSWORD}", "${JWT_JWKS}", python),
    }
    return yaml.safe_dump({"services": {"kong": kong, "realtime": realtime}}, sort_keys=False, width=1000)


def seed_rows(spec: SandboxSpec, keys: dict[str, str]) -> dict[str, Any]:
    """Dokploy's rows after ``compose.deployTemplate`` of Supabase in project ``<name>``."""
    ids = {k: hashlib.sha256(f"{spec.name}/{k}".encode()).hexdigest()[:21] for k in ("p", "e", "c", "m1", "m2")}
    names = (*KONG_2026_VARIABLES, "JWT_SECRET", "JWT_JWKS", "POSTGRES_PASSWORD")
    env = "".join(f"{name}={keys.get(name, '')}\n" for name in names)
    compose = {
        "composeId": ids["c"],
        "name": "supabase",
        "appName": app_name(spec),
        "description": None,
        "env": env,
        "composeFile": compose_text(spec),
        "sourceType": "raw",
        "composeType": "docker-compose",
        "composePath": "./docker-compose.yml",
        "composeStatus": "idle",
        "serverId": None,
        "environmentId": ids["e"],
        "createdAt": "2026-07-22T10:00:00.000Z",
        "domains": [{"serviceName": "kong", "host": spec.vps_addr, "port": spec.kong_port, "uniqueConfigKey": 1}],
    }

    def mount(mount_id: str, file_path: str, content: str) -> dict[str, Any]:
        return {
            "mountId": mount_id,
            "type": "file",
            "hostPath": None,
            "volumeName": None,
            "filePath": file_path,
            "content": content,
            "serviceType": "compose",
            "mountPath": "",
            "composeId": ids["c"],
        }

    api = api_keys(spec)
    return {
        "projects": [
            {
                "projectId": ids["p"],
                "name": spec.name,
                "description": None,
                "createdAt": "2026-07-22T10:00:00.000Z",
                "environments": [
                    {"environmentId": ids["e"], "name": "production", "isDefault": True, "composeIds": [ids["c"]]}
                ],
            }
        ],
        "compose": {ids["c"]: compose},
        "mounts": {
            ids["m1"]: mount(ids["m1"], KONG_MOUNT, SEED.read_text()),
            ids["m2"]: mount(ids["m2"], ENTRYPOINT_MOUNT, ENTRYPOINT.read_text()),
        },
        "deployments": [],
        "apiKeys": [
            {"hash": hashlib.sha256(api[KEY_ENV].encode()).hexdigest(), "role": "owner"},
            {
                "hash": hashlib.sha256(api[READONLY_KEY_ENV].encode()).hexdigest(),
                "role": "member",
                "permissions": {"service": ["read"], "volume": ["read"], "deployment": ["read"]},
            },
        ],
    }


def ensure_dokploy(client: docker.APIClient, spec: SandboxSpec, keys: dict[str, str], *, recreate: bool) -> None:
    """Dokploy and its Supabase service, deployed (idempotent; ``recreate``: from scratch)."""
    from .stack import _runtime_binds, wait_running

    existing = {c["Names"][0].lstrip("/"): c for c in client.containers(all=True)}
    fresh = recreate or DOKPLOY_CONTAINER not in existing or not db_path(spec).exists()
    if fresh:
        for name in (DOKPLOY_CONTAINER, spec.kong_container, spec.realtime_container):
            if name in existing:
                client.remove_container(name, force=True)
        shutil.rmtree(compose_dir(spec), ignore_errors=True)
        shutil.rmtree(DOKPLOY_ROOT / "logs" / app_name(spec), ignore_errors=True)
        db_path(spec).parent.mkdir(parents=True, exist_ok=True)
        db_path(spec).write_text(json.dumps(seed_rows(spec, keys), indent=1))
        db_path(spec).chmod(0o600)
        binds = _runtime_binds(spec)
        binds[str(DOKPLOY_ROOT)] = {"bind": str(DOKPLOY_ROOT), "mode": "rw"}
        binds[str(db_path(spec).parent)] = {"bind": "/var/lib/dokploy-standin", "mode": "rw"}
        binds[str(spec.docker_socket)] = {"bind": "/var/run/docker.sock", "mode": "rw"}
        client.create_container(
            DOKPLOY_IMAGE,
            name=DOKPLOY_CONTAINER,
            command=["/bin/sh", "-c", 'exec "$STANDIN_PYTHON" /standins/dokploy_standin.py'],
            environment={
                "DOKPLOY_DB": "/var/lib/dokploy-standin/db.json",
                "DOKPLOY_SEED_FILES": "1",
                "HOST": spec.vps_addr,
                "PORT": str(DOKPLOY_PORT),
                "STANDIN_PYTHON": sys.executable,
            },
            host_config=client.create_host_config(
                network_mode="host", binds=binds, restart_policy={"Name": "unless-stopped"}
            ),
            labels={"supakong.sandbox": spec.name},
        )
    client.start(DOKPLOY_CONTAINER)
    wait_running(client, DOKPLOY_CONTAINER, log_marker=b"listening on")
    if fresh:
        # The SSH user edits the files as root would on a real server (the --direct path).
        for path in (compose_dir(spec) / "files", files_path(spec).parent, files_path(spec)):
            shutil.chown(path, SSH_USER, SSH_USER)
        deploy_and_wait(spec)
    wait_running(client, spec.realtime_container, log_marker=b"Running RealtimeWeb.Endpoint")
    wait_running(client, spec.kong_container, healthy=False)


def call(spec: SandboxSpec, procedure: str, body: dict[str, Any] | None = None, key: str = KEY_ENV) -> Any:
    """One API call with the sandbox's key (the sandbox's setup and tests: a "user")."""
    url = f"{api_url(spec)}/api/{procedure}"
    data = None
    if body is not None and procedure.split(".")[-1] not in ("one", "all", "allByCompose"):
        data = json.dumps(body).encode()
    elif body:
        url += "?" + "&".join(f"{k}={v}" for k, v in body.items())
    request = urllib.request.Request(
        url, data=data, headers={"x-api-key": api_keys(spec)[key], "Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            raw = response.read()
    except urllib.error.HTTPError as exc:
        raise DeployError(f"sandbox: Dokploy {procedure}: {exc.code} {exc.read().decode(errors='replace')}") from None
    return json.loads(raw) if raw else None


def the_compose(spec: SandboxSpec) -> dict[str, Any]:
    """``compose.one`` of the sandbox's Supabase service."""
    compose_id = call(spec, "project.all")[0]["environments"][0]["compose"][0]["composeId"]
    return call(spec, "compose.one", {"composeId": compose_id})


def deploy_and_wait(spec: SandboxSpec, procedure: str = "compose.deploy", timeout: float = 60.0) -> dict[str, Any]:
    """Press Deploy (or Redeploy) and wait for the new deployment row to finish."""
    compose = the_compose(spec)
    before = {d["deploymentId"] for d in compose["deployments"]}
    call(spec, procedure, {"composeId": compose["composeId"]})
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = call(spec, "deployment.allByCompose", {"composeId": compose["composeId"]})
        new = [d for d in rows if d["deploymentId"] not in before and d["status"] in ("done", "error")]
        if new:
            if new[0]["status"] == "error":
                raise DeployError(f"sandbox: Dokploy deployment failed: {new[0].get('errorMessage')}")
            return new[0]
        time.sleep(0.2)
    raise DeployError(f"sandbox: Dokploy deployment of {compose['appName']} did not finish in {timeout:.0f}s")


def ui_save_mount(spec: SandboxSpec, file_path: str = KONG_MOUNT) -> dict[str, Any]:
    """What "save" in the mount's edit dialog sends: the content Dokploy shows (its stored
    copy) with ``{mountId, type, filePath, mountPath:"/", content}`` (``update-volume.tsx``)."""
    mount = next(m for m in the_compose(spec)["mounts"] if m["filePath"] == file_path)
    body = {
        "mountId": mount["mountId"],
        "type": "file",
        "filePath": file_path,
        "mountPath": "/",
        "content": mount["content"],
    }
    return call(spec, "mounts.update", body)


def remove_dokploy_files(spec: SandboxSpec) -> None:
    """Delete this sandbox's service under /etc/dokploy (purge), and /etc/dokploy itself when
    no other sandbox's is left (it is a Dokploy marker for every sandbox of this machine)."""
    shutil.rmtree(compose_dir(spec), ignore_errors=True)
    shutil.rmtree(DOKPLOY_ROOT / "logs" / app_name(spec), ignore_errors=True)
    for directory in (DOKPLOY_ROOT / "compose", DOKPLOY_ROOT / "logs", DOKPLOY_ROOT):
        try:
            directory.rmdir()  # only when empty
        except OSError:
            pass
