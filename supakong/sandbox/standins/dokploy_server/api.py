"""Dokploy's REST API as ``@dokploy/trpc-openapi`` serves it (``/api/<router>.<procedure>``):
queries are GET with query-string input, mutations POST with a JSON body; the ``x-api-key``
header authenticates (``apps/dokploy/pages/api/[...trpc].ts`` answers a missing or bad key
``401 {"message":"Unauthorized"}`` before any router runs); a TRPCError becomes its HTTP
status with ``{"message","code"}``; a role without a permission gets better-auth's
``401 unauthorized to access resource "<resource>"`` (``services/permission.ts``).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .store import Store

_STATUS = {"BAD_REQUEST": 400, "UNAUTHORIZED": 401, "FORBIDDEN": 403, "NOT_FOUND": 404, "INTERNAL_SERVER_ERROR": 500}
_CONTAINER_ID = re.compile(r"^[a-zA-Z0-9.\-_]+$")


class TRPCError(Exception):
    """A procedure's failure: its tRPC code and message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


class Api:
    """The procedures the stand-in serves; ``actions`` does what touches disk and Docker."""

    def __init__(self, store: Store, actions: Any) -> None:
        self.store, self.actions = store, actions
        self.queries: dict[str, Callable[[dict[str, Any], dict[str, Any]], Any]] = {
            "project.all": self.project_all,
            "compose.one": self.compose_one,
            "deployment.allByCompose": self.deployment_all_by_compose,
            "settings.getDokployVersion": lambda key, _input: self.actions.version,
        }
        self.mutations: dict[str, Callable[[dict[str, Any], dict[str, Any]], Any]] = {
            "mounts.update": self.mounts_update,
            "compose.deploy": lambda key, body: self.queue(key, body, "deploy"),
            "compose.redeploy": lambda key, body: self.queue(key, body, "redeploy"),
            "docker.restartContainer": self.restart_container,
        }

    def _allow(self, key: dict[str, Any], resource: str, action: str) -> None:
        denied = self.store.denied(key, resource, action)
        if denied:
            raise TRPCError("UNAUTHORIZED", denied)

    def _compose(self, key: dict[str, Any], compose_id: Any, resource: str, action: str) -> dict[str, Any]:
        if not compose_id:
            raise TRPCError("BAD_REQUEST", "Input validation failed")
        self._allow(key, resource, action)
        row = self.store.compose(str(compose_id))
        if row is None:
            raise TRPCError("NOT_FOUND", "Compose not found")
        return row

    def project_all(self, key: dict[str, Any], _input: dict[str, Any]) -> Any:
        return self.store.project_all()

    def compose_one(self, key: dict[str, Any], params: dict[str, Any]) -> Any:
        self._compose(key, params.get("composeId"), "service", "read")
        return self.store.compose_one(str(params["composeId"]))

    def deployment_all_by_compose(self, key: dict[str, Any], params: dict[str, Any]) -> Any:
        self._compose(key, params.get("composeId"), "deployment", "read")
        return self.store.deployments(str(params["composeId"]))

    def mounts_update(self, key: dict[str, Any], body: dict[str, Any]) -> Any:
        """``apiUpdateMount``: every field but ``mountId`` optional; ``updateMount`` SETs what
        is passed, then rewrites a file mount in place (``updateFileMount``, ≥ v0.24.6)."""
        mount_id = body.get("mountId")
        if not isinstance(mount_id, str) or not mount_id:
            raise TRPCError("BAD_REQUEST", "Input validation failed")
        if "mountPath" in body and not body["mountPath"]:
            raise TRPCError("BAD_REQUEST", "Input validation failed")
        mount = self.store.mount(mount_id)
        if mount is None:
            raise TRPCError("NOT_FOUND", "Mount not found")
        self._allow(key, "volume", "create")
        allowed = {"type", "filePath", "content", "mountPath", "hostPath", "volumeName", "serviceType", "composeId"}
        with self.store.lock:
            mount.update({k: v for k, v in body.items() if k in allowed})
            self.store.save()
            if mount["type"] == "file":
                self.actions.write_file_mount(mount)
        return mount

    def queue(self, key: dict[str, Any], body: dict[str, Any], kind: str) -> Any:
        row = self._compose(key, body.get("composeId"), "deployment", "create")
        self.actions.enqueue(row["composeId"], kind, body.get("title") or "Manual deployment")
        return {"success": True, "message": "Deployment queued", "composeId": row["composeId"]}

    def restart_container(self, key: dict[str, Any], body: dict[str, Any]) -> Any:
        container = body.get("containerId")
        if not isinstance(container, str) or not _CONTAINER_ID.match(container):
            raise TRPCError("BAD_REQUEST", "Input validation failed")
        self._allow(key, "docker", "read")
        self.actions.restart(container)
        return None


def make_handler(api: Api) -> type[BaseHTTPRequestHandler]:
    """The HTTP handler class for ``api``."""

    class Handler(BaseHTTPRequestHandler):
        server_version = "Next.js"
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
            api.actions.log(f"{self.command} {self.path.split('?')[0]} {args[1] if len(args) > 1 else ''}")

        def _send(self, status: int, payload: Any) -> None:
            body = b"" if payload is None and status == 200 else json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _dispatch(self, table: dict[str, Callable[..., Any]], payload: dict[str, Any]) -> None:
            parts = urlsplit(self.path)
            if not parts.path.startswith("/api/"):
                self._send(404, {"message": "Not found"})
                return
            key = api.store.key(self.headers.get("x-api-key"))
            if key is None:
                self._send(401, {"message": "Unauthorized"})
                return
            procedure = table.get(parts.path[len("/api/") :])
            if procedure is None:
                self._send(404, {"message": "Not found", "code": "NOT_FOUND"})
                return
            try:
                self._send(200, procedure(key, payload))
            except TRPCError as exc:
                self._send(_STATUS.get(exc.code, 500), {"message": exc.message, "code": exc.code})

        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            query = {k: v[-1] for k, v in parse_qs(urlsplit(self.path).query).items()}
            self._dispatch(api.queries, query)

        def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
            length = int(self.headers.get("Content-Length") or 0)
            try:
                body = json.loads(self.rfile.read(length) or b"{}")
            except ValueError:
                self._send(400, {"message": "Input validation failed", "code": "BAD_REQUEST"})
                return
            self._dispatch(api.mutations, body if isinstance(body, dict) else {})

    return Handler


def serve(api: Api, host: str, port: int) -> ThreadingHTTPServer:
    """Start serving in a thread; returns the server."""
    server = ThreadingHTTPServer((host, port), make_handler(api))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
