"""The Dokploy stand-in's file mounts on disk, in-process on a temporary base directory:
rewritten in place from v0.24.6 on (the same inode), removed and created before (Dokploy
v0.22.5's ``updateMount`` ran ``deleteFileMount`` then ``createFileMount``)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from supakong.sandbox.spec import STANDINS_DIR

sys.path.insert(0, str(STANDINS_DIR))
from dokploy_server import actions as dokploy_actions  # noqa: E402
from dokploy_server.api import Api, TRPCError  # noqa: E402
from dokploy_server.store import Store  # noqa: E402

MOUNT = {"mountId": "m1", "type": "file", "filePath": "/volumes/api/kong.yml", "content": "one\n", "composeId": "c1"}


def rows() -> dict[str, Any]:
    compose = {"composeId": "c1", "name": "supabase", "appName": "app-x", "composeStatus": "done"}
    return {
        "projects": [{"projectId": "p1", "environments": [{"environmentId": "e1", "composeIds": ["c1"]}]}],
        "compose": {"c1": compose},
        "mounts": {"m1": dict(MOUNT)},
        "apiKeys": [],
    }


@pytest.fixture()
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Store:
    monkeypatch.setattr(dokploy_actions, "BASE_PATH", str(tmp_path))
    (tmp_path / "db.json").write_text(json.dumps(rows()))
    return Store(str(tmp_path / "db.json"))


@pytest.mark.parametrize(("version", "same_inode"), [("v0.25.0", True), ("v0.24.6", True), ("v0.22.5", False)])
def test_a_mount_update_rewrites_in_place_from_v0_24_6(
    store: Store, tmp_path: Path, version: str, same_inode: bool
) -> None:
    api = Api(store, dokploy_actions.Actions(store, None, version))
    owner = {"role": "owner"}
    path = tmp_path / "compose" / "app-x" / "files" / "volumes" / "api" / "kong.yml"
    api.actions.write_file_mount(store.mount("m1"))
    inode = path.stat().st_ino
    keep = path.open()  # a bind mount holds the old inode as an open file does
    try:
        api.mounts_update(owner, {"mountId": "m1", "content": "two\n"})
        assert path.read_text() == "two\n" and store.compose_one("c1")["mounts"][0]["content"] == "two\n"
        assert (path.stat().st_ino == inode) is same_inode
    finally:
        keep.close()


def test_mount_path_must_not_be_empty_and_a_member_needs_volume_create(store: Store) -> None:
    api = Api(store, dokploy_actions.Actions(store, None, "v0.25.0"))
    with pytest.raises(TRPCError, match="Input validation failed"):
        api.mounts_update({"role": "owner"}, {"mountId": "m1", "mountPath": ""})
    member = {"role": "member", "permissions": {"volume": ["read"]}}
    with pytest.raises(TRPCError, match='unauthorized to access resource "volume"'):
        api.mounts_update(member, {"mountId": "m1", "content": "x"})
