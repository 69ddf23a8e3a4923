"""The Dokploy stand-in (sandbox-dokploy, see supakong/sandbox/dokploy.py) behaves like
Dokploy where a deploy tool sees it: its API and auth answers, its layout under
/etc/dokploy, compose's labels on the containers it deploys, and its effects: a mount update
rewrites the file in place, a deploy rewrites code/ and leaves an unchanged Kong running, a
saved mount writes Dokploy's stored copy back. Each hazard of writing behind Dokploy's back
is shown happening here."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from typing import Any

import pytest

from supakong.sandbox import SandboxSpec
from supakong.sandbox import dokploy as dk
from supakong.sandbox.stack import docker_client

pytestmark = pytest.mark.sandbox



def raw_call(
    spec: SandboxSpec, method: str, procedure: str, body: dict[str, Any] | None, key: str | None
) -> tuple[int, Any]:
    data = json.dumps(body).encode() if method == "POST" else None
    headers = {"Content-Type": "application/json", **({"x-api-key": key} if key is not None else {})}
    request = urllib.request.Request(f"{dk.api_url(spec)}/api/{procedure}", data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def kong_mount(spec: SandboxSpec) -> dict[str, Any]:
    return next(m for m in dk.the_compose(spec)["mounts"] if m["filePath"] == dk.KONG_MOUNT)


def inspect(spec: SandboxSpec, name: str) -> dict[str, Any]:
    client = docker_client(spec)
    try:
        return client.inspect_container(name)
    finally:
        client.close()


def test_the_layout_labels_and_names_are_dokploys(dokploy: SandboxSpec) -> None:
    app = dk.app_name(dokploy)
    assert dokploy.kong_container == f"{app}-kong-1"
    info = inspect(dokploy, dokploy.kong_container)
    labels = info["Config"]["Labels"]
    assert labels["com.docker.compose.project"] == app
    assert labels["com.docker.compose.service"] == "kong"
    assert labels["com.docker.compose.project.working_dir"] == f"/etc/dokploy/compose/{app}/code"
    assert labels["com.docker.compose.project.config_files"] == f"/etc/dokploy/compose/{app}/code/docker-compose.yml"
    assert labels["traefik.docker.network"] == "dokploy-network"
    mounts = {m["Destination"]: m["Source"] for m in info["Mounts"]}
    assert mounts["/home/kong/temp.yml"] == f"/etc/dokploy/compose/{app}/files/volumes/api/kong.yml"
    env = (dk.compose_dir(dokploy) / "code" / ".env").read_text()
    assert env.startswith(f"APP_NAME={app}\nCOMPOSE_PROJECT_NAME={app}\n")


def test_a_missing_or_wrong_key_gets_401_unauthorized(dokploy: SandboxSpec) -> None:
    assert raw_call(dokploy, "GET", "project.all", None, None) == (401, {"message": "Unauthorized"})
    assert raw_call(dokploy, "GET", "project.all", None, "not-a-key") == (401, {"message": "Unauthorized"})
    status, projects = raw_call(dokploy, "GET", "project.all", None, dk.api_keys(dokploy)[dk.KEY_ENV])
    assert status == 200 and projects[0]["environments"][0]["compose"][0]["name"] == "supabase"
    assert set(projects[0]["environments"][0]["compose"][0]) == {"composeId", "name", "composeStatus"}


def test_a_key_without_volume_create_cannot_update_the_mount(dokploy: SandboxSpec) -> None:
    mount = kong_mount(dokploy)
    before = dk.files_path(dokploy).read_bytes()
    status, body = raw_call(
        dokploy,
        "POST",
        "mounts.update",
        {"mountId": mount["mountId"], "content": "x"},
        dk.api_keys(dokploy)[dk.READONLY_KEY_ENV],
    )
    assert status == 401 and body == {"message": 'unauthorized to access resource "volume"', "code": "UNAUTHORIZED"}
    assert dk.files_path(dokploy).read_bytes() == before
    assert (
        raw_call(
            dokploy, "POST", "mounts.update", {"mountId": "nope", "content": "x"}, dk.api_keys(dokploy)[dk.KEY_ENV]
        )[0]
        == 404
    )


def test_a_mount_update_rewrites_the_file_in_place_and_the_stored_copy(dokploy: SandboxSpec) -> None:
    path = dk.files_path(dokploy)
    inode, original = path.stat().st_ino, path.read_text()
    mount = kong_mount(dokploy)
    try:
        dk.call(dokploy, "mounts.update", {"mountId": mount["mountId"], "content": original + "# via the API\n"})
        assert path.stat().st_ino == inode
        assert path.read_text() == original + "# via the API\n" == kong_mount(dokploy)["content"]
    finally:
        dk.call(dokploy, "mounts.update", {"mountId": mount["mountId"], "content": original})


def test_a_deploy_rewrites_code_and_does_not_recreate_an_unchanged_kong(dokploy: SandboxSpec) -> None:
    before = inspect(dokploy, dokploy.kong_container)
    stray = dk.compose_dir(dokploy) / "code" / "hand-edit.yml"
    stray.write_text("lost on the next deploy\n")
    deployment = dk.deploy_and_wait(dokploy, "compose.redeploy")
    assert deployment["status"] == "done" and os.path.exists(deployment["logPath"])
    assert "docker compose -p" in open(deployment["logPath"]).read()
    assert not stray.exists()  # rm -rf code on every deploy
    after = inspect(dokploy, dokploy.kong_container)
    assert after["Id"] == before["Id"] and after["State"]["StartedAt"] == before["State"]["StartedAt"]
    rows = dk.call(dokploy, "deployment.allByCompose", {"composeId": dk.the_compose(dokploy)["composeId"]})
    assert rows[0]["deploymentId"] == deployment["deploymentId"]  # newest first


def test_hazard_a_direct_edit_is_not_applied_by_a_deploy_and_reverted_by_a_ui_save(dokploy: SandboxSpec) -> None:
    path = dk.files_path(dokploy)
    stored = kong_mount(dokploy)["content"]
    edited = stored + "# edited over SSH, behind Dokploy's back\n"
    path.write_text(edited)
    client = docker_client(dokploy)
    try:
        dk.deploy_and_wait(dokploy)  # "update the file, Redeploy": Kong is not recreated ...
        code, seen = client.exec_create(dokploy.kong_container, ["cat", "/usr/local/kong/kong.yml"]), None
        seen = client.exec_start(code["Id"]).decode()
        assert "behind Dokploy's back" not in seen  # ... so it still runs the old file
        assert path.read_text() == edited  # the deploy left files/ alone
        dk.ui_save_mount(dokploy)  # someone saves the mount in the UI
        assert path.read_text() == stored  # Dokploy's stale copy is back: the edit is gone
    finally:
        client.close()
        path.write_text(stored)


def test_restart_container_makes_kong_read_the_file(dokploy: SandboxSpec) -> None:
    before = inspect(dokploy, dokploy.kong_container)
    assert dk.call(dokploy, "docker.restartContainer", {"containerId": dokploy.kong_container}) is None
    after = inspect(dokploy, dokploy.kong_container)
    assert after["Id"] == before["Id"] and after["State"]["StartedAt"] != before["State"]["StartedAt"]
    status, _ = raw_call(
        dokploy, "POST", "docker.restartContainer", {"containerId": "a;b"}, dk.api_keys(dokploy)[dk.KEY_ENV]
    )
    assert status == 400
