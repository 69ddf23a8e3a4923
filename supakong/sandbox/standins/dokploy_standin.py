"""The entry script of the stand-in for Dokploy (v0.25-era API, v0.24.6+ file mounts), for
the sandbox and tests. Its modules are in ``dokploy_server/`` beside it.

Real Dokploy is a Next.js app with Postgres, Redis and a BullMQ queue, deployed as a swarm
service; the sandbox has none of those. This stand-in acts like it where a deploy tool can
see it: the REST API (``dokploy_server/api.py``), the files under ``/etc/dokploy`` and the
containers a compose deploy makes (``dokploy_server/actions.py``, ``compose.py``).

Environment: ``DOKPLOY_DB`` (the JSON rows, required), ``PORT`` (3000), ``HOST``
(0.0.0.0), ``DOKPLOY_VERSION`` (v0.25.0), ``DOCKER_HOST`` (unix:///var/run/docker.sock).
At start, with ``DOKPLOY_SEED_FILES=1``, every file mount is written once (what
``compose.deployTemplate`` does when it creates them). SIGTERM exits 0.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import docker  # noqa: E402
from dokploy_server.actions import Actions, log, wait_forever  # noqa: E402
from dokploy_server.api import Api, serve  # noqa: E402
from dokploy_server.store import Store  # noqa: E402


def main() -> int:
    """Serve the API until SIGTERM."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    store = Store(os.environ["DOKPLOY_DB"])
    client = docker.APIClient(base_url=os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock"), version="auto")
    actions = Actions(store, client, os.environ.get("DOKPLOY_VERSION", "v0.25.0"))
    if os.environ.get("DOKPLOY_SEED_FILES") == "1":
        for mount in store.data["mounts"].values():
            if mount["type"] == "file" and not os.path.exists(actions.file_mount_path(mount)):
                actions.write_file_mount(mount)
    host, port = os.environ.get("HOST", "0.0.0.0"), int(os.environ.get("PORT", "3000"))
    serve(Api(store, actions), host, port)
    log(f"Dokploy stand-in {actions.version} listening on http://{host}:{port}")
    wait_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
