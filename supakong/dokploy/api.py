"""A small client for Dokploy's REST API (``@dokploy/trpc-openapi``: ``GET /api/<router>.
<procedure>?input`` for queries, ``POST`` with a JSON body for mutations, header
``x-api-key``; ``apps/dokploy/pages/api/[...trpc].ts``). The key is sent, never printed.

Every failure is one line naming the call and the status: ``401 {"message":"Unauthorized"}``
is a missing, wrong or revoked key; a 401 with another message is a role without the
permission the call needs (better-auth's ``unauthorized to access resource "volume"``,
``services/permission.ts``). Sockets are dialled through the host fence
(``SUPAKONG_HOST_ALLOWLIST``) like every other connection.
"""

from __future__ import annotations

import http.client
import json
import ssl
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

from .. import fence
from ..errors import DeployError, TransportError
from .policy import ApiAccess

#: What each call needs of the key's role (Dokploy's routers: compose.ts, mount.ts, docker.ts).
PERMISSIONS = {
    "project.all": "project read",
    "compose.one": "service read",
    "mounts.update": "volume create",
    "docker.restartContainer": "docker read",
    "compose.deploy": "deployment create",
    "deployment.allByCompose": "deployment read",
}


class DokployApiError(DeployError):
    """A Dokploy API call failed (one line: the call, the status, what it means)."""


@dataclass(frozen=True)
class MountRef:
    """The compose service and the file mount deploy-kong writes through the API."""

    compose_id: str
    compose_name: str
    mount_id: str
    content: str  # Dokploy's stored copy
    server_id: str | None
    compose_type: str


class DokployApi:
    """Calls to one Dokploy panel for one host (``host`` names it in messages)."""

    def __init__(self, access: ApiAccess, host: str, timeout: float = 30.0) -> None:
        self.access, self.host, self.timeout = access, host, timeout
        parts = urlsplit(access.url)
        self.scheme, self.hostname = parts.scheme, parts.hostname or ""
        self.port = parts.port or (443 if parts.scheme == "https" else 80)

    def get(self, procedure: str, **params: str) -> Any:
        query = f"?{urlencode(params)}" if params else ""
        return self._call("GET", procedure, f"/api/{procedure}{query}", None)

    def post(self, procedure: str, body: dict[str, Any]) -> Any:
        return self._call("POST", procedure, f"/api/{procedure}", json.dumps(body).encode())

    def _connection(self) -> http.client.HTTPConnection:
        what = f"{self.host}: Dokploy API {self.access.url}"
        sock = fence.connect(what, self.hostname, self.port, self.timeout)
        if self.scheme == "https":
            sock = ssl.create_default_context().wrap_socket(sock, server_hostname=self.hostname)
            conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                self.hostname, self.port, timeout=self.timeout
            )
        else:
            conn = http.client.HTTPConnection(self.hostname, self.port, timeout=self.timeout)
        conn.sock = sock
        return conn

    def _call(self, method: str, procedure: str, path: str, body: bytes | None) -> Any:
        call = f"{self.host}: Dokploy API {method} {self.access.url}/api/{procedure}"
        headers = {"x-api-key": self.access.key, "Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        try:
            conn = self._connection()
            try:
                conn.request(method, path, body=body, headers=headers)
                response = conn.getresponse()
                status, raw = response.status, response.read()
            finally:
                conn.close()
        except DeployError:
            raise
        except (OSError, http.client.HTTPException) as exc:
            raise TransportError(f"{call}: {exc}") from None
        if status >= 400:
            raise DokployApiError(f"{call}: {status} {self._explain(procedure, status, raw)}")
        try:
            return json.loads(raw) if raw.strip() else None
        except ValueError:
            raise DokployApiError(f"{call}: {status} but the body is not JSON: {raw[:80]!r}") from None

    def _explain(self, procedure: str, status: int, raw: bytes) -> str:
        try:
            message = str(json.loads(raw).get("message", ""))
        except (ValueError, AttributeError):
            message = raw[:120].decode("utf-8", "replace")
        if status == 401 and message == "Unauthorized":
            return f"Unauthorized: the key in {self.access.key_env} is missing, wrong or revoked for {self.access.url}"
        if status == 401:
            needs = PERMISSIONS.get(procedure, "a permission")
            return f"{message}: the key in {self.access.key_env} lacks the permission this call needs ({needs})"
        if status == 404 and self.access.url and not message:
            return "Not Found: is dokploy_url Dokploy's panel (its API is under /api)?"
        return message or http.client.responses.get(status, "")

    # ------------------------------------------------------------------------ the calls we make
    def find_mount(self, app_name: str, file_path: str) -> MountRef:
        """The compose service whose appName is ``app_name`` (``project.all`` then
        ``compose.one`` for each compose) and its file mount at ``file_path``."""
        names: list[str] = []
        for project in self.get("project.all") or []:
            environments = project.get("environments") or [{"compose": project.get("compose") or []}]  # < v0.25
            for env in environments:
                for summary in env.get("compose") or []:
                    compose = self.get("compose.one", composeId=summary["composeId"])
                    names.append(str(compose.get("appName")))
                    if compose.get("appName") == app_name:
                        return self._mount_of(compose, file_path)
        seen = ", ".join(names) or "none"
        raise DokployApiError(
            f"{self.host}: Dokploy at {self.access.url} has no compose service with appName {app_name}"
            f" (the key sees: {seen}); is dokploy_url the panel that deployed this server?"
        )

    def _mount_of(self, compose: dict[str, Any], file_path: str) -> MountRef:
        for mount in compose.get("mounts") or []:
            if mount.get("type") == "file" and mount.get("filePath") == file_path:
                return MountRef(
                    compose_id=compose["composeId"],
                    compose_name=str(compose.get("name")),
                    mount_id=mount["mountId"],
                    content=mount.get("content") or "",
                    server_id=compose.get("serverId"),
                    compose_type=str(compose.get("composeType") or "docker-compose"),
                )
        files = ", ".join(str(m.get("filePath")) for m in compose.get("mounts") or [] if m.get("type") == "file")
        raise DokployApiError(
            f"{self.host}: compose {compose.get('appName')} in Dokploy has no file mount {file_path}"
            f" (its file mounts: {files or 'none'})"
        )

    def update_mount(self, mount_id: str, content: str) -> None:
        """``mounts.update {mountId, content}``: Dokploy stores it and rewrites the file."""
        self.post("mounts.update", {"mountId": mount_id, "content": content})

    def mount_content(self, compose_id: str, mount_id: str) -> str:
        """Dokploy's stored copy of a mount now."""
        compose = self.get("compose.one", composeId=compose_id)
        for mount in compose.get("mounts") or []:
            if mount.get("mountId") == mount_id:
                return str(mount.get("content") or "")
        raise DokployApiError(f"{self.host}: Dokploy's compose {compose_id} lost mount {mount_id}")
