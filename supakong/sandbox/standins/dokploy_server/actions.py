"""What Dokploy's server does on disk and in Docker for the API (paths from
``packages/server/src/constants/index.ts``: ``/etc/dokploy/compose/<appName>/{code,files}``,
``/etc/dokploy/logs/<appName>``):

- a file mount is written to ``files/<filePath>`` with ``echo <b64> | base64 -d > path``
  (``services/mount.ts`` ``updateFileMount``): truncated and rewritten in place, same inode;
- a deploy (``compose.deploy``/``compose.redeploy``, queued, one at a time) recreates
  ``code/`` from the stored compose text (``rm -rf code; mkdir -p code``, ``providers/raw.ts``),
  adds the domain's Traefik labels to the service that owns it (``utils/docker/domain.ts``),
  writes ``.env`` (``APP_NAME``, ``COMPOSE_PROJECT_NAME`` then the service's env), and runs
  ``docker compose -p <appName> -f docker-compose.yml up -d --build --remove-orphans`` in
  ``code/``; the deployment row appears when the job starts, with its log file;
- ``docker.restartContainer`` runs ``docker container restart <id>``.
"""

from __future__ import annotations

import os
import queue
import shutil
import threading
import time
from datetime import UTC, datetime
from typing import Any

import yaml

from .compose import Project, parse_env
from .store import Store, new_id, now_iso

BASE_PATH = "/etc/dokploy"


def _version(text: str) -> tuple[int, ...]:
    """``v0.25.0`` → (0, 25, 0)."""
    return tuple(int(part) for part in text.lstrip("v").split("-")[0].split(".") if part.isdigit())


def log(line: str) -> None:
    """The stand-in's own log (stdout, as Dokploy's container logs)."""
    print(f"{datetime.now(UTC).isoformat(timespec='seconds')} {line}", flush=True)


class Actions:
    """Dokploy's effects, for :class:`~dokploy_server.api.Api`."""

    def __init__(self, store: Store, client: Any, version: str) -> None:
        self.store, self.client, self.version = store, client, version
        self.jobs: queue.Queue[tuple[str, str, str]] = queue.Queue()
        self.log = log
        threading.Thread(target=self._worker, daemon=True).start()

    @staticmethod
    def compose_dir(app_name: str) -> str:
        return os.path.join(BASE_PATH, "compose", app_name)

    def file_mount_path(self, mount: dict[str, Any]) -> str:
        app = self.store.data["compose"][mount["composeId"]]["appName"]
        return os.path.join(self.compose_dir(app), "files", mount["filePath"].lstrip("/"))

    def write_file_mount(self, mount: dict[str, Any]) -> None:
        """``createFileMount``/``updateFileMount``: mkdir, then ``> path`` (in place); before
        v0.24.6 ``updateMount`` removed the file first (a new inode, v0.22.5 ``mount.ts``)."""
        path = self.file_mount_path(mount)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if _version(self.version) < (0, 24, 6) and os.path.exists(path):
            os.unlink(path)
        with open(path, "wb") as handle:  # O_TRUNC on the existing inode, as the shell's `>`
            handle.write(mount.get("content", "").encode())
        log(f"mount {mount['mountId']} written to {path}")

    def restart(self, container: str) -> None:
        self.client.restart(container, timeout=10)
        log(f"restarted container {container}")

    def enqueue(self, compose_id: str, kind: str, title: str) -> None:
        self.jobs.put((compose_id, kind, title))

    def _worker(self) -> None:
        while True:
            compose_id, kind, title = self.jobs.get()
            try:
                self._deploy(compose_id, kind, title)
            except Exception as exc:  # noqa: BLE001 - a job's failure is the deployment's status
                log(f"deployment of {compose_id} failed: {exc}")

    def _deploy(self, compose_id: str, kind: str, title: str) -> None:
        store = self.store
        with store.lock:
            row = store.data["compose"][compose_id]
            app = row["appName"]
            logs = os.path.join(BASE_PATH, "logs", app)
            os.makedirs(logs, exist_ok=True)
            stamp = datetime.now(UTC).strftime("%Y-%m-%d:%H:%M:%S")
            deployment = {
                "deploymentId": new_id(),
                "composeId": compose_id,
                "title": title,
                "description": "",
                "status": "running",
                "logPath": os.path.join(logs, f"{app}-{stamp}.log"),
                "createdAt": now_iso(),
                "startedAt": now_iso(),
                "finishedAt": None,
                "errorMessage": None,
            }
            store.data["deployments"].append(deployment)
            row["composeStatus"] = "running"
            store.save()
        log_path = str(deployment["logPath"])

        def note(line: str) -> None:
            with open(log_path, "a", encoding="utf-8") as handle:
                handle.write(line + "\n")

        status = "done"
        try:
            note(f"Initializing deployment ({kind})")
            config_file = self._write_code(row)
            mounts = [m for m in store.data["mounts"].values() if m.get("composeId") == compose_id]
            note(f"Detected: {len(mounts)} mounts")
            env = parse_env(open(os.path.join(os.path.dirname(config_file), ".env"), encoding="utf-8").read())
            note(f"Running command: docker compose -p {app} -f docker-compose.yml up -d --build --remove-orphans")
            Project(self.client, app, config_file, note).up(env)
            note("Docker Compose Deployed: ✅")
        except Exception as exc:  # noqa: BLE001 - recorded as Dokploy records it
            status = "error"
            deployment["errorMessage"] = str(exc)
            note(f"Error: {exc}")
        with store.lock:
            deployment["status"], deployment["finishedAt"] = status, now_iso()
            row["composeStatus"] = status
            store.save()
        log(f"deployment {deployment['deploymentId']} of {app}: {status}")

    def _write_code(self, row: dict[str, Any]) -> str:
        """``rm -rf code; mkdir -p code``, the compose text with the domain labels, ``.env``."""
        code = os.path.join(self.compose_dir(row["appName"]), "code")
        shutil.rmtree(code, ignore_errors=True)
        os.makedirs(code)
        doc = yaml.safe_load(row["composeFile"]) or {}
        for domain in row.get("domains", []):
            service = doc.get("services", {}).get(domain["serviceName"])
            if service is None:
                continue
            router = f"{row['appName']}-{domain['uniqueConfigKey']}-web"
            labels = service.setdefault("labels", [])
            labels += [
                "traefik.enable=true",
                "traefik.docker.network=dokploy-network",
                f"traefik.http.routers.{router}.rule=Host(`{domain['host']}`)",
                f"traefik.http.routers.{router}.entrypoints=web",
                f"traefik.http.services.{router}.loadbalancer.server.port={domain['port']}",
            ]
        path = os.path.join(code, "docker-compose.yml")
        with open(path, "w", encoding="utf-8") as handle:
            yaml.safe_dump(doc, handle, sort_keys=False, width=1000)
        with open(os.path.join(code, ".env"), "w", encoding="utf-8") as handle:
            handle.write(f"APP_NAME={row['appName']}\nCOMPOSE_PROJECT_NAME={row['appName']}\n{row.get('env', '')}\n")
        return path


def wait_forever() -> None:
    """Keep the main thread alive (SIGTERM ends the process)."""
    while True:
        time.sleep(3600)


__all__ = ["Actions", "log", "wait_forever"]
