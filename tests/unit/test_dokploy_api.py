"""The Dokploy API client's answers to Dokploy's error bodies, and the fence on its socket
(a real HTTP server on loopback plays the panel)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from supakong.dokploy.api import DokployApi, DokployApiError
from supakong.dokploy.policy import ApiAccess
from supakong.errors import FenceError

OLD_PANEL: dict[str, tuple[int, Any]] = {  # before v0.25: compose[] directly on the project
    "/api/project.all": (200, [{"projectId": "p1", "compose": [{"composeId": "c1", "name": "supabase"}]}]),
    "/api/compose.one": (
        200,
        {
            "composeId": "c1",
            "name": "supabase",
            "appName": "myproj-supabase-ab12cd",
            "composeType": "docker-compose",
            "serverId": None,
            "mounts": [
                {"mountId": "m0", "type": "volume", "filePath": None},
                {"mountId": "m1", "type": "file", "filePath": "/volumes/api/kong.yml", "content": "old"},
            ],
        },
    ),
}
ANSWERS: dict[str, tuple[int, Any]] = {
    "/api/project.all": (401, {"message": "Unauthorized"}),
    "/api/mounts.update": (401, {"message": 'unauthorized to access resource "volume"', "code": "UNAUTHORIZED"}),
    "/api/compose.one": (404, {"message": "Compose not found", "code": "NOT_FOUND"}),
}


class Panel(BaseHTTPRequestHandler):
    seen_keys: list[str] = []
    old = False

    def log_message(self, *args: Any) -> None:
        pass

    def _answer(self) -> None:
        Panel.seen_keys.append(self.headers.get("x-api-key", ""))
        status, body = (OLD_PANEL if Panel.old else ANSWERS)[self.path.split("?")[0]]
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def do_GET(self) -> None:  # noqa: N802
        self._answer()

    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._answer()


@pytest.fixture()
def panel() -> Iterator[DokployApi]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Panel)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    access = ApiAccess(f"http://127.0.0.1:{server.server_address[1]}", "DOKPLOY_API_KEY", "k-secret")
    yield DokployApi(access, "edge-1")
    server.shutdown()


def test_a_wrong_key_is_one_line_naming_the_call_and_the_variable(panel: DokployApi) -> None:
    with pytest.raises(DokployApiError) as failed:
        panel.get("project.all")
    message = str(failed.value)
    assert message.startswith(f"edge-1: Dokploy API GET {panel.access.url}/api/project.all: 401 Unauthorized")
    assert "DOKPLOY_API_KEY is missing, wrong or revoked" in message and "k-secret" not in message
    assert Panel.seen_keys[-1] == "k-secret"


def test_a_key_without_the_permission_says_which(panel: DokployApi) -> None:
    with pytest.raises(
        DokployApiError, match=r"mounts.update: 401 unauthorized to access resource \"volume\": the key"
    ):
        panel.update_mount("m1", "x")


def test_a_missing_compose_is_its_404(panel: DokployApi) -> None:
    with pytest.raises(DokployApiError, match="compose.one: 404 Compose not found"):
        panel.get("compose.one", composeId="nope")


def test_the_fence_refuses_a_panel_it_does_not_allow(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUPAKONG_HOST_ALLOWLIST", "sandbox*")
    api = DokployApi(ApiAccess("http://192.0.2.10:3000", "DOKPLOY_API_KEY", "k"), "sandbox-x")
    with pytest.raises(FenceError):
        api.get("project.all")


def test_a_panel_before_environments_is_read_too(panel: DokployApi, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Panel, "old", True)
    ref = panel.find_mount("myproj-supabase-ab12cd", "/volumes/api/kong.yml")
    assert (ref.compose_id, ref.mount_id, ref.content) == ("c1", "m1", "old")
    with pytest.raises(DokployApiError, match=r"has no file mount /volumes/api/other.yml \(its file mounts: /volumes"):
        panel.find_mount("myproj-supabase-ab12cd", "/volumes/api/other.yml")
    with pytest.raises(DokployApiError, match="no compose service with appName other-app .the key sees: myproj"):
        panel.find_mount("other-app", "/volumes/api/kong.yml")
