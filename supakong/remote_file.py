"""The config file on the host: look at it, replace it atomically with a backup, restore it.

Every remote step is a fixed shell script run as ``sh -c SCRIPT sh ARG…`` with the
arguments quoted by :func:`shlex.join`; no value is ever interpolated into a script. The
replacement is: upload to a temp file in the target directory (SFTP), then one remote
``commit`` that checks the file did not change under us, keeps a timestamped backup, sets
mode and owner, fsyncs and renames. Kong never sees a partial file: ``rename(2)`` is atomic
and the temp file is removed on every failure path.
"""

from __future__ import annotations

import posixpath
import secrets
from dataclasses import dataclass

from .errors import TransportError
from .faults import checkpoint
from .transport import HostConnection

BACKUP_DIR = ".supakong/backups"
ABSENT = "absent"

_STAT_SCRIPT = r"""
p=$1
if [ -e "$p" ]; then
  set -- $(sha256sum "$p")
  printf '%s\n' "$1"
  stat -c '%s %a %u %g %Y' "$p"
else
  echo absent
fi
"""

_COMMIT_SCRIPT = r"""
set -eu
path=$1 tmp=$2 backup=$3 expected=$4 mode=$5 keep=$6
trap 'rm -f "$tmp"' EXIT
if [ -e "$path" ]; then current=$(sha256sum "$path" | cut -d' ' -f1); else current=absent; fi
if [ "$current" != "$expected" ]; then
  echo "the file changed since it was read (now $current, expected $expected)" >&2; exit 3
fi
chmod "$mode" "$tmp"
if [ -e "$path" ]; then
  mkdir -p "$(dirname "$backup")"
  cp -p "$path" "$backup"
  chown --reference="$path" "$tmp" 2>/dev/null || true
fi
sync "$tmp" 2>/dev/null || sync
mv -f "$tmp" "$path"
sync "$(dirname "$path")" 2>/dev/null || true
# Under the host lock any other temp file is left over from a killed run: remove it.
for old in "$(dirname "$path")"/."$(basename "$path")".supakong-*.tmp; do
  [ -e "$old" ] && [ "$old" != "$tmp" ] && rm -f "$old"
done
ls -1t "$(dirname "$backup")" 2>/dev/null | grep -F "$(basename "$path")." | tail -n +$((keep + 1)) |
  while read -r old; do rm -f "$(dirname "$backup")/$old"; done
sha256sum "$path" | cut -d' ' -f1
"""

_RESTORE_SCRIPT = r"""
set -eu
path=$1 backup=$2 tmp=$3
trap 'rm -f "$tmp"' EXIT
[ -f "$backup" ] || { echo "no such backup: $backup" >&2; exit 4; }
cp -p "$backup" "$tmp"
sync "$tmp" 2>/dev/null || sync
mv -f "$tmp" "$path"
sha256sum "$path" | cut -d' ' -f1
"""


@dataclass(frozen=True)
class RemoteFile:
    """What the host's copy of the config looks like."""

    path: str
    exists: bool
    sha256: str = ABSENT
    size: int = 0
    mode: int = 0
    uid: int = -1
    gid: int = -1
    mtime: int = 0


def stat_argv(path: str) -> list[str]:
    """The command that prints a file's sha256 and stat fields (or ``absent``)."""
    return ["sh", "-c", _STAT_SCRIPT, "sh", path]


def parse_stat(path: str, text: str) -> RemoteFile:
    """Parse :func:`stat_argv`'s output."""
    lines = text.strip().splitlines()
    if not lines or lines[0] == ABSENT:
        return RemoteFile(path=path, exists=False)
    size, mode, uid, gid, mtime = lines[1].split()
    # The hash alone, or sha256sum's "HASH  PATH" ("\\HASH  PATH" for a name with a newline).
    digest = lines[0].split()[0].lstrip("\\")
    return RemoteFile(path, True, digest, int(size), int(mode, 8), int(uid), int(gid), int(mtime))


def backup_path(path: str, stamp: str) -> str:
    """Where the backup of ``path`` taken at ``stamp`` goes (beside it, in a hidden dir)."""
    directory, name = posixpath.split(path)
    return posixpath.join(directory, BACKUP_DIR, f"{name}.{stamp}")


def temp_path(path: str) -> str:
    """A fresh temp file name in the target's directory (so the rename is atomic)."""
    directory, name = posixpath.split(path)
    return posixpath.join(directory, f".{name}.supakong-{secrets.token_hex(6)}.tmp")


def commit_argv(path: str, tmp: str, backup: str, expected_sha: str, mode: int, keep: int) -> list[str]:
    """The command that backs up ``path`` and renames ``tmp`` over it."""
    return ["sh", "-c", _COMMIT_SCRIPT, "sh", path, tmp, backup, expected_sha, f"{mode:o}", str(keep)]


def restore_argv(path: str, backup: str) -> list[str]:
    """The command that atomically puts ``backup`` back in place of ``path``."""
    return ["sh", "-c", _RESTORE_SCRIPT, "sh", path, backup, temp_path(path)]


def list_backups_argv(path: str) -> list[str]:
    """The command that lists the backups of ``path``, newest first."""
    directory, name = posixpath.split(path)
    script = 'cd "$1" 2>/dev/null && ls -1t | grep -F "$2." || true'
    return ["sh", "-c", script, "sh", posixpath.join(directory, BACKUP_DIR), name]


def read_remote_file(conn: HostConnection, path: str) -> RemoteFile:
    """Stat and hash the host's file in one command."""
    return parse_stat(path, conn.run(stat_argv(path)).text)


def read_remote_text(conn: HostConnection, path: str) -> str:
    """The host file's content (for the diff)."""
    return conn.run(["cat", path]).text


def upload_temp(conn: HostConnection, path: str, content: bytes) -> str:
    """Write ``content`` to a new temp file beside ``path`` over SFTP; return its name."""
    tmp = temp_path(path)
    sftp = conn.sftp()
    try:
        with sftp.open(tmp, "wbx") as fh:  # x: never overwrite an existing file
            fh.chmod(0o600)
            fh.set_pipelined(True)
            fh.write(content)
        if sftp.stat(tmp).st_size != len(content):
            raise OSError(f"short write to {tmp}")
    except OSError as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        # SFTP reports ENOSPC as a bare "Failure" (or a short write): ask the filesystem.
        free = free_bytes(conn, posixpath.dirname(path))
        if free is not None and free < len(content):
            reason = f"No space left on device ({free} bytes free, {len(content)} needed)"
        _remove_quietly(conn, tmp)
        raise TransportError(f"{conn.host.name}: cannot upload to {tmp}: {reason}") from None
    return tmp


def free_bytes(conn: HostConnection, directory: str) -> int | None:
    """Bytes available to the SSH user in ``directory``'s filesystem (None if unknown)."""
    try:
        fields = conn.run(["stat", "-f", "-c", "%a %S", directory], check=False).text.split()
        return int(fields[0]) * int(fields[1])
    except (TransportError, ValueError, IndexError):
        return None


def replace_file_atomically(
    conn: HostConnection, path: str, content: bytes, *, expected_sha: str, mode: int, keep: int, stamp: str
) -> str | None:
    """Upload, back up and rename ``content`` into ``path``; return the backup path (if any).

    ``expected_sha`` is the sha256 the file had when we looked (or ``absent``): if someone
    changed it since, nothing is replaced.
    """
    tmp = upload_temp(conn, path, content)
    checkpoint("uploaded")
    backup = backup_path(path, stamp)
    try:
        conn.run(commit_argv(path, tmp, backup, expected_sha, mode, keep))
    except TransportError:
        _remove_quietly(conn, tmp)
        raise
    return backup if expected_sha != ABSENT else None


def restore_backup(conn: HostConnection, path: str, backup: str) -> str:
    """Atomically restore ``backup`` over ``path``; return the restored sha256."""
    return conn.run(restore_argv(path, backup)).text.strip()


def list_backups(conn: HostConnection, path: str) -> list[str]:
    """Full paths of the backups of ``path``, newest first."""
    directory = posixpath.join(posixpath.dirname(path), BACKUP_DIR)
    names = conn.run(list_backups_argv(path)).text.split()
    return [posixpath.join(directory, n) for n in names]


def _remove_quietly(conn: HostConnection, tmp: str) -> None:
    try:
        conn.run(["rm", "-f", tmp], check=False)
    except TransportError:
        pass  # the connection is gone; the next run's temp name differs anyway
