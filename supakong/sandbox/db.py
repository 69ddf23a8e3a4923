"""The sandbox's Supabase database: a db container running Debian's PostgreSQL 15 with wal2json.

Made the way the other stand-ins are (a busybox image, the host's ``/usr`` bind-mounted
read-only), but it is no stand-in: it is the real PostgreSQL the Realtime stand-in polls with
a temporary wal2json slot, and the one ``doctor`` and ``verify-realtime --event`` read and
write through ``docker exec``. The container looks like supabase/docker's ``supabase-db``: the
image name ``supabase/postgres:15.8.1.085``, the compose service label ``db``, the same
environment (``POSTGRES_USER=supabase_admin``, ``PGPASSWORD`` …) and the same client
authentication rules, so ``docker exec <db> psql -U supabase_admin`` works without a password
leaving the host, as on a real server.

The data directory lives on the VPS's volume (``volumes/db/data``) and is made once; a
sandbox reset restores the "before" state with SQL (``db/baseline.sql``) instead of a new
initdb, and restarts Postgres only when a test left a setting that needs it (``wal_level``).
"""

from __future__ import annotations

import pwd
import time
from pathlib import Path

import docker

from ..errors import DeployError
from .spec import SandboxSpec, compose_labels

DB_IMAGE = "supabase/postgres:15.8.1.085"
DB_FILES = Path(__file__).resolve().parent / "db"
DB_MOUNT = "/supakong-db"
PGDATA = "/var/lib/postgresql/data"
PG_BIN = "/usr/lib/postgresql/15/bin"
ADMIN = "supabase_admin"
#: The image's own environment (supabase/postgres's Dockerfile sets POSTGRES_USER).
DB_IMAGE_ENV = [
    f"ENV PATH={PG_BIN}:/bin:/usr/sbin:/usr/bin",
    f"ENV POSTGRES_USER={ADMIN}",
    f"ENV PGDATA={PGDATA}",
]
SECOND = 1_000_000_000


def postgres_ids() -> tuple[int, int]:
    """The host's ``postgres`` user (made by Debian's postgresql-common); the data directory
    on the volume belongs to it, as it would to the image's postgres user."""
    try:
        entry = pwd.getpwnam("postgres")
    except KeyError:
        raise DeployError("sandbox: no postgres user on this machine; run `make deps` (postgresql-15)") from None
    return entry.pw_uid, entry.pw_gid


def db_environment(spec: SandboxSpec, password: str, jwt_secret: str) -> dict[str, str]:
    """The db service's environment in supabase/docker's compose file."""
    return {
        "POSTGRES_HOST": "/var/run/postgresql",
        "PGPORT": "5432",
        "POSTGRES_PORT": "5432",
        "PGPASSWORD": password,
        "POSTGRES_PASSWORD": password,
        "PGDATABASE": "postgres",
        "POSTGRES_DB": "postgres",
        "JWT_SECRET": jwt_secret,
        "JWT_EXP": "3600",
    }


def data_dir(spec: SandboxSpec) -> Path:
    """The db's data directory on the VPS's volume (compose: ``./volumes/db/data``)."""
    return spec.srv_dir / "volumes" / "db" / "data"


def create_db(client: docker.APIClient, spec: SandboxSpec, keys: dict[str, str]) -> None:
    """The db container, as Supabase's compose starts it (service ``db``)."""
    data = data_dir(spec)
    data.mkdir(parents=True, exist_ok=True)
    binds = {p: {"bind": p, "mode": "ro"} for p in ("/usr", "/lib", "/lib64")}
    binds[str(DB_FILES)] = {"bind": DB_MOUNT, "mode": "ro"}
    binds[str(data)] = {"bind": PGDATA, "mode": "rw"}
    host_config = client.create_host_config(
        network_mode="host", binds=binds, restart_policy={"Name": "unless-stopped"}, shm_size="128m"
    )
    client.create_container(
        DB_IMAGE,
        name=spec.db_container,
        entrypoint=["/bin/sh", f"{DB_MOUNT}/entrypoint.sh"],
        environment=db_environment(spec, keys["POSTGRES_PASSWORD"], keys["JWT_SECRET"]),
        stop_signal="SIGINT",  # Postgres's fast shutdown, as the postgres images set (SIGTERM waits for clients)
        healthcheck={
            "test": ["CMD", "pg_isready", "-U", "postgres", "-h", "localhost"],
            "interval": 5 * SECOND,
            "timeout": 5 * SECOND,
            "retries": 10,
        },
        host_config=host_config,
        labels=compose_labels(spec, "db"),
    )


def db_is_current(client: docker.APIClient, spec: SandboxSpec) -> bool:
    """Whether the db container runs this checkout's entrypoint and the current image."""
    info = client.inspect_container(spec.db_container)
    sources = {m.get("Source") for m in info.get("Mounts") or []}
    config = info["Config"]
    return str(DB_FILES) in sources and config.get("Image") == DB_IMAGE and config.get("StopSignal") == "SIGINT"


def ensure_db(client: docker.APIClient, spec: SandboxSpec, keys: dict[str, str], *, reset: bool) -> None:
    """Create (if missing or made by another checkout) and start the db, wait until it
    answers; with ``reset``, restore the "before" state (``db/baseline.sql``)."""
    names = {c["Names"][0].lstrip("/") for c in client.containers(all=True)}
    if spec.db_container in names and not db_is_current(client, spec):
        client.remove_container(spec.db_container, force=True)
        names.discard(spec.db_container)
    if spec.db_container not in names:
        create_db(client, spec, keys)
    client.start(spec.db_container)
    wait_db_ready(client, spec)
    if reset:
        restore_baseline(client, spec)


def psql(client: docker.APIClient, spec: SandboxSpec, *statements: str, file: str = "", check: bool = True) -> str:
    """Run SQL in the db container as supabase_admin over loopback (trusted, so a reset works
    whatever password the data directory was made with): each statement its own transaction
    (psql's ``-c``), or a file of the container (``-f``). Returns the unaligned output."""
    argv = ["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-U", ADMIN, "-d", "postgres"]
    for statement in statements:
        argv += ["-c", statement]
    if file:
        argv += ["-f", file]
    exec_id = client.exec_create(spec.db_container, argv)["Id"]
    output = client.exec_start(exec_id).decode("utf-8", "replace")
    code = client.exec_inspect(exec_id).get("ExitCode")
    if check and code != 0:
        raise DeployError(f"sandbox: psql in {spec.db_container} exited {code}: {output.strip()[-400:]}")
    return output


def restore_baseline(client: docker.APIClient, spec: SandboxSpec) -> None:
    """The "before" state by SQL; restart Postgres if a setting it reset needs one."""
    psql(client, spec, file=f"{DB_MOUNT}/baseline.sql")
    pending = psql(client, spec, "select count(*) from pg_settings where pending_restart").strip()
    if pending != "0":
        client.restart(spec.db_container, timeout=10)
        wait_db_ready(client, spec)


def wait_db_ready(client: docker.APIClient, spec: SandboxSpec, timeout: float = 60.0) -> None:
    """Wait until Postgres accepts connections (``pg_isready`` in the container)."""
    deadline, delay, last = time.monotonic() + timeout, 0.1, ""
    while time.monotonic() < deadline:
        state = client.inspect_container(spec.db_container)["State"]
        if state.get("Running") and not state.get("Restarting"):
            try:
                argv = ["pg_isready", "-q", "-h", "127.0.0.1", "-U", "postgres"]
                exec_id = client.exec_create(spec.db_container, argv)["Id"]
                last = client.exec_start(exec_id).decode(errors="replace")
                if client.exec_inspect(exec_id).get("ExitCode") == 0:
                    return
            except docker.errors.APIError as exc:  # it restarted between the inspect and the exec
                last = str(exc.explanation or exc)
        time.sleep(delay)
        delay = min(delay * 1.5, 0.5)
    logs = client.logs(spec.db_container, tail=15).decode(errors="replace").strip()
    raise DeployError(f"sandbox: {spec.db_container} does not accept connections: {last.strip()}\n{logs}")
