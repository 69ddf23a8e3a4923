"""Dokploy's database, for the stand-in: a JSON file holding the rows the API reads and
writes (projects → environments → compose services, their mounts and deployments) and the
API keys (their sha256 only, with the owner's role and a member's permissions)."""

from __future__ import annotations

import copy
import hashlib
import json
import os
import secrets
import threading
from datetime import UTC, datetime
from typing import Any

#: What a member role may do without its own statements (Dokploy's owner/admin may do all).
OWNER_ROLES = ("owner", "admin")


def now_iso() -> str:
    """Timestamps as Dokploy's rows carry them (ISO 8601, UTC, milliseconds)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_id() -> str:
    """A nanoid-like row id (Dokploy's ids are 21-character nanoids)."""
    return secrets.token_urlsafe(16)[:21].replace("-", "a").replace("_", "b")


class Store:
    """The rows, persisted after every change (atomically: a temp file renamed)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.lock = threading.RLock()
        with open(path, encoding="utf-8") as handle:
            self.data: dict[str, Any] = json.load(handle)
        self.data.setdefault("deployments", [])

    def save(self) -> None:
        with self.lock:
            tmp = f"{self.path}.tmp"
            with open(tmp, "w", encoding="utf-8") as handle:
                json.dump(self.data, handle, indent=1)
            os.replace(tmp, self.path)

    # --- keys -----------------------------------------------------------------------------
    def key(self, presented: str | None) -> dict[str, Any] | None:
        """The API key row whose sha256 is the presented key's, else None."""
        if not presented:
            return None
        digest = hashlib.sha256(presented.encode()).hexdigest()
        return next((k for k in self.data["apiKeys"] if secrets.compare_digest(k["hash"], digest)), None)

    @staticmethod
    def denied(key: dict[str, Any], resource: str, action: str) -> str | None:
        """better-auth's access-control message when the key's role may not (None: allowed)."""
        if key["role"] in OWNER_ROLES or action in key.get("permissions", {}).get(resource, []):
            return None
        return f'unauthorized to access resource "{resource}"'

    # --- rows -----------------------------------------------------------------------------
    def compose(self, compose_id: str) -> dict[str, Any] | None:
        return self.data["compose"].get(compose_id)

    def mount(self, mount_id: str) -> dict[str, Any] | None:
        return self.data["mounts"].get(mount_id)

    def compose_one(self, compose_id: str) -> dict[str, Any] | None:
        """``compose.one``: the row with its mounts and deployments (newest first)."""
        with self.lock:
            row = self.compose(compose_id)
            if row is None:
                return None
            full = copy.deepcopy(row)
            full["mounts"] = [
                copy.deepcopy(m) for m in self.data["mounts"].values() if m.get("composeId") == compose_id
            ]
            full["deployments"] = self.deployments(compose_id)
            full["hasGitProviderAccess"], full["unauthorizedProvider"] = True, None
            return full

    def deployments(self, compose_id: str) -> list[dict[str, Any]]:
        rows = [copy.deepcopy(d) for d in self.data["deployments"] if d["composeId"] == compose_id]
        return sorted(rows, key=lambda d: d["createdAt"], reverse=True)

    def project_all(self) -> list[dict[str, Any]]:
        """``project.all`` (≥ v0.25): projects → environments → compose {composeId, name, composeStatus}."""
        with self.lock:
            projects = copy.deepcopy(self.data["projects"])
            for project in projects:
                for env in project["environments"]:
                    env["compose"] = [
                        {k: self.data["compose"][cid][k] for k in ("composeId", "name", "composeStatus")}
                        for cid in env.pop("composeIds", [])
                    ]
            return projects
