"""The local sandbox VPS: a real sshd and a real dockerd in a network namespace, running
stand-ins for Kong and Supabase Realtime as containers. Used by ``fab sandbox-up``,
``make demo`` and the integration tests; nothing here is needed on a real server."""

from __future__ import annotations

import shutil

from .db import ensure_db
from .dokploy import ensure_dokploy, remove_dokploy_files
from .spec import SandboxSpec
from .stack import (
    docker_client,
    ensure_containers,
    ensure_images,
    ensure_secrets,
    seed_config,
    wait_running,
)
from .variants import remove_become_users
from .vps import (
    check_prerequisites,
    ensure_keys,
    ensure_network,
    ensure_user,
    remove_network,
    start_dockerd,
    start_sshd,
    stop_daemons,
    write_client_config,
)

__all__ = ["SandboxSpec", "sandbox_up", "sandbox_down", "sandbox_reset"]


def sandbox_up(spec: SandboxSpec | None = None, *, recreate: bool = False) -> SandboxSpec:
    """Bring the sandbox VPS up (idempotent): network, sshd, dockerd, images, containers."""
    spec = spec or SandboxSpec()
    check_prerequisites()
    ensure_network(spec)
    ensure_user()
    ensure_keys(spec)
    write_client_config(spec)
    start_sshd(spec)
    start_dockerd(spec)
    keys = ensure_secrets(spec)
    if not spec.dokploy:  # Dokploy writes its own file mounts
        seed_config(spec, force=recreate)
    client = docker_client(spec)
    try:
        ensure_images(client, spec)
        ensure_db(client, spec, keys, reset=recreate)
        if spec.dokploy:
            ensure_dokploy(client, spec, keys, recreate=recreate)
        else:
            ensure_containers(client, spec, keys, recreate=recreate)
        wait_running(client, spec.realtime_container, log_marker=b"Running RealtimeWeb.Endpoint")
        if spec.seed_loads:  # else Kong refuses its seed and restarts, as Kong OSS would
            wait_running(client, spec.kong_container, healthy=True)
    finally:
        client.close()
    return spec


def sandbox_reset(spec: SandboxSpec | None = None) -> SandboxSpec:
    """Put the sandbox back in its "before" state: seed config, fresh Kong and Realtime
    containers, the db's baseline restored by SQL."""
    return sandbox_up(spec, recreate=True)


def sandbox_down(spec: SandboxSpec | None = None, *, purge: bool = False) -> None:
    """Stop the daemons and remove the namespace; ``purge`` also deletes all sandbox data."""
    spec = spec or SandboxSpec()
    stop_daemons(spec)
    remove_network(spec)
    if purge:
        remove_become_users(spec)
        if spec.dokploy:
            remove_dokploy_files(spec)
        for path in (spec.state_dir, spec.run_dir, spec.docker_data_root.parent, spec.srv_dir):
            shutil.rmtree(path, ignore_errors=True)
