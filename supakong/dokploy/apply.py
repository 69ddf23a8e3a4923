"""Put Kong's file in place on a Dokploy-managed stack, two ways, each with its undo:

- :class:`ApiMountWriter`: ``mounts.update`` through Dokploy's API (Dokploy stores the content
  and rewrites ``files/<filePath>`` in place, ``services/mount.ts`` ``updateFileMount``), then
  confirm over SSH that the file on the host has the new sha256. Undo: the content the host
  served before, through the API again, so Dokploy's copy and the host never disagree.
- :class:`DirectWriter` (``--direct``): the file rewritten in place over SSH (a rename would
  leave Kong's single-file bind mount on the old inode, moby/moby#22627), with a backup;
  Dokploy's stored copy is now stale, which the caller says. Undo: the backup, in place.

Neither restarts Kong: the deploy applies the file to Kong as it does on any host (Dokploy's
Redeploy runs ``docker compose up -d``, which does not recreate an unchanged Kong).
"""

from __future__ import annotations

import hashlib
import posixpath
import time
from typing import TYPE_CHECKING, Protocol

from ..errors import DeployError, TransportError
from ..remote_file import BACKUP_DIR, read_remote_file, read_remote_text
from .api import DokployApi, DokployApiError, MountRef
from .detect import FILES, DokployStack
from .policy import API, PLAIN, api_access, stale_copy_warning

if TYPE_CHECKING:
    from ..inventory import HostConfig
    from ..transport import HostConnection

#: Receives the new content on stdin; checks it arrived whole and that the file is still the
#: one planned against; backs it up; rewrites it in place (same inode: ``cat >``); prints the
#: new sha256. Exit 6: incomplete transfer, 3: the file changed since it was read.
_IN_PLACE_SCRIPT = r"""
set -eu
path=$1 backup=$2 expected=$3 new=$4 keep=$5
tmp="$(dirname "$backup")/.incoming.$$"
mkdir -p "$(dirname "$backup")"
trap 'rm -f "$tmp"' EXIT
(umask 077 && cat > "$tmp")
got=$(sha256sum "$tmp" | cut -d' ' -f1)
if [ "$got" != "$new" ]; then
  echo "the copy has sha256 $got, not the $new that was sent: the transfer was cut" >&2; exit 6
fi
current=$(sha256sum "$path" | cut -d' ' -f1)
if [ "$current" != "$expected" ]; then
  echo "the file changed since it was read (now $current, expected $expected)" >&2; exit 3
fi
cp -p "$path" "$backup"
cat "$tmp" > "$path"
sync "$path" 2>/dev/null || sync
ls -1t "$(dirname "$backup")" 2>/dev/null | grep -F "$(basename "$path")." | tail -n +$((keep + 1)) |
  while read -r old; do rm -f "$(dirname "$backup")/$old"; done
sha256sum "$path" | cut -d' ' -f1
"""
#: A copy of the file as it is, for ``fab backups`` / ``rollback-kong`` (pruned as the
#: deploy prunes its own backups).
_BACKUP_SCRIPT = r"""
set -eu
path=$1 backup=$2 keep=$3
mkdir -p "$(dirname "$backup")"
cp -p "$path" "$backup"
ls -1t "$(dirname "$backup")" 2>/dev/null | grep -F "$(basename "$path")." | tail -n +$((keep + 1)) |
  while read -r old; do rm -f "$(dirname "$backup")/$old"; done
"""
_RESTORE_IN_PLACE_SCRIPT = r"""
set -eu
[ -f "$2" ] || { echo "no such backup: $2" >&2; exit 4; }
cat "$2" > "$1"
sha256sum "$1" | cut -d' ' -f1
"""


def _backup_path(path: str, stamp: str) -> str:
    """Where a copy of ``path`` goes (beside the deploy's own backups, same names)."""
    return posixpath.join(posixpath.dirname(path), BACKUP_DIR, f"{posixpath.basename(path)}.{stamp}")


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class ApiMountWriter:
    """Kong's file through Dokploy's ``mounts.update`` (see the module doc)."""

    def __init__(self, conn: HostConnection, host: HostConfig, stack: DokployStack, api: DokployApi) -> None:
        self.conn, self.host, self.stack, self.api = conn, host, stack, api
        self.ref: MountRef | None = None
        self.previous: str | None = None
        self.backup: str | None = None
        self.notes: list[str] = []

    def write(self, content: str, expected_sha: str, stamp: str) -> str:
        """Update the mount; return the line to print. Raises when the host does not get it."""
        assert self.stack.file_path is not None
        self.ref = self.api.find_mount(self.stack.app_name, self.stack.file_path)
        previous = read_remote_text(self.conn, self.host.kong_config_path)
        if _sha(previous) != expected_sha:
            raise TransportError(
                f"{self.host.name}: {self.host.kong_config_path} changed since it was read"
                f" (now {_sha(previous)[:12]}, expected {expected_sha[:12]}); nothing was sent to Dokploy"
            )
        self.previous = previous
        self.backup = _backup_path(self.host.kong_config_path, stamp)
        self.conn.run(
            ["sh", "-c", _BACKUP_SCRIPT, "sh", self.host.kong_config_path, self.backup, str(self.host.backups_keep)]
        )
        if self.ref.content != previous:
            self.notes.append(
                f"Dokploy's stored copy of {self.stack.file_path} differed from the file on the host (written behind"
                " its back earlier); it now holds the deployed file"
            )
        self.api.update_mount(self.ref.mount_id, content)
        seen = self.confirm(_sha(content))
        return (
            f"updated Dokploy's file mount {self.stack.file_path} of {self.stack.app_name} ({self.ref.compose_name})"
            f" through {self.api.access.url} (mounts.update); {self.host.kong_config_path} has sha256 {seen[:12]}"
        )

    def confirm(self, wanted: str, timeout: float = 15.0) -> str:
        """Wait until the host's file has sha256 ``wanted`` (Dokploy writes it over its own
        SSH on a remote server); raise with what the host has."""
        deadline, delay, seen = time.monotonic() + timeout, 0.1, ""
        while True:
            seen = read_remote_file(self.conn, self.host.kong_config_path).sha256
            if seen == wanted:
                return seen
            if time.monotonic() > deadline:
                raise DokployApiError(
                    f"{self.host.name}: Dokploy accepted mounts.update but {self.host.kong_config_path} has sha256"
                    f" {seen[:12]}, not {wanted[:12]}, after {timeout:.0f}s: is this the server Dokploy deploys to?"
                )
            time.sleep(delay)
            delay = min(delay * 2, 1.0)

    def restore(self) -> str:
        """Put the previous content back through the API; return the line to print."""
        assert self.ref is not None and self.previous is not None
        self.api.update_mount(self.ref.mount_id, self.previous)
        self.confirm(_sha(self.previous))
        return f"restored the previous content of file mount {self.stack.file_path} through Dokploy (mounts.update)"


class DirectWriter:
    """Kong's file rewritten in place over SSH, behind Dokploy's back (``--direct``)."""

    def __init__(self, conn: HostConnection, host: HostConfig, stack: DokployStack) -> None:
        self.conn, self.host, self.stack = conn, host, stack
        self.backup: str | None = None
        self.notes: list[str] = []

    def write(self, content: str, expected_sha: str, stamp: str) -> str:
        path = self.host.kong_config_path
        backup = _backup_path(path, stamp)
        data = content.encode("utf-8")
        argv = [
            "sh",
            "-c",
            _IN_PLACE_SCRIPT,
            "sh",
            path,
            backup,
            expected_sha,
            _sha(content),
            str(self.host.backups_keep),
        ]
        result = self.conn.run(argv, stdin=data, check=False)
        if result.exit_code != 0:
            raise TransportError(f"{self.host.name}: cannot write {path} in place: {result.stderr_tail(2)}")
        self.backup = backup
        self.notes.append(stale_copy_warning(self.stack))
        return f"! --direct: wrote {path} in place behind Dokploy's back (backup: {backup})"

    def restore(self) -> str:
        assert self.backup is not None
        self.conn.run(["sh", "-c", _RESTORE_IN_PLACE_SCRIPT, "sh", self.host.kong_config_path, self.backup])
        return f"restored {self.host.kong_config_path} in place from {self.backup}"


class FileWriter(Protocol):
    """What the deploy asks of a writer: put the file in place, undo it, and what to say."""

    notes: list[str]

    def write(self, content: str, expected_sha: str, stamp: str) -> str: ...

    def restore(self) -> str: ...


def make_writer(
    kind: str, conn: HostConnection, host: HostConfig, stack: DokployStack | None
) -> ApiMountWriter | DirectWriter | None:
    """The writer :func:`~supakong.dokploy.policy.choose_writer` chose (None: the plain,
    atomic replace of any host)."""
    if stack is None or kind == PLAIN:
        return None
    if kind == API:
        access = api_access(host)
        assert access is not None  # choose_writer checked it
        return ApiMountWriter(conn, host, stack, DokployApi(access, host.name))
    return DirectWriter(conn, host, stack)


def stored_copy_drift(host: HostConfig, stack: DokployStack | None, file_sha: str) -> str | None:
    """On a run with nothing to change: a warning when Dokploy's stored copy of the file mount
    is not the file on the host (written behind its back earlier, e.g. ``--direct``), so that
    the next save of the mount would revert it; None when they agree or there is no API."""
    access = api_access(host)
    if stack is None or stack.location != FILES or stack.file_path is None or access is None:
        return None
    try:
        ref = DokployApi(access, host.name).find_mount(stack.app_name, stack.file_path)
    except DeployError as exc:
        return f"could not compare the file with Dokploy's stored copy: {exc}"
    if _sha(ref.content) == file_sha:
        return None
    return (
        f"Dokploy's stored copy of file mount {stack.file_path} is not the file on the host (sha256"
        f" {_sha(ref.content)[:12]} vs {file_sha[:12]}): the next save of that mount in Dokploy reverts the host;"
        f" paste the host's file into it, or change the template and deploy again (the API then updates both)"
    )
