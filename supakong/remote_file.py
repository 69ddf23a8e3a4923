"""The config file on the host: look at it, replace it atomically with a backup, restore it.

Every remote step is a fixed shell script run as ``sh -c SCRIPT sh ARG…`` with the
arguments quoted by :func:`shlex.join`; no value is ever interpolated into a script. The
replacement is one command fed the new content on stdin: it writes a temp file in the target
directory, checks the copy's sha256 (a cut transfer is never used) and that the file did not
change under us, keeps a timestamped backup, sets mode and owner, fsyncs and renames. Kong
never sees a partial file: ``rename(2)`` is atomic and the temp file is removed on every
failure path (a temp file left by a killed command is removed by the next replacement).
"""

from __future__ import annotations

import hashlib
import posixpath
import re
import secrets
from dataclasses import dataclass

from .become import not_writable_hint
from .errors import TransportError
from .faults import checkpoint
from .transport import HostConnection

BACKUP_DIR = ".supakong/backups"
#: A backup is ``NAME.STAMP``, STAMP the UTC time it was taken (fixed width: sorting the names
#: sorts the backups by time). Only names of exactly this shape are listed or pruned.
STAMP_FORMAT = "%Y%m%dT%H%M%S%fZ"
STAMP_GLOB = "[0-9]" * 8 + "T" + "[0-9]" * 12 + "Z"
_STAMP_RE = r"[0-9]{8}T[0-9]{12}Z"
ABSENT = "absent"

#: Prints what :func:`parse_stat` reads for the file ``$p`` (set by the caller): its sha256
#: and ``size mode uid gid mtime``, or ``absent``. The mtime has its nanoseconds (GNU stat):
#: a file renamed into place in the second Kong started, after it, is a pending restart.
#: Shared by :func:`stat_argv` and the look (:mod:`supakong.look`).
STAT_SH = r"""
if [ -e "$p" ]; then
  sha256sum "$p" && { stat -c '%s %a %u %g %.9Y' "$p" 2>/dev/null || stat -c '%s %a %u %g %Y' "$p"; }
else
  echo absent
fi
"""
_STAT_SCRIPT = "p=$1\n" + STAT_SH

#: Receives the new content on stdin and puts it in place, in one command (two round trips
#: with the session's opening; an SFTP upload and then a command took nine): the temp file is
#: created beside the target, readable by us only and never over an existing file; its sha256
#: must be the one we sent (a cut connection ends stdin early: nothing is replaced); the
#: target must still have the sha256 we planned against (compare-and-swap); then backup,
#: rename, pruning. Exit 5: cannot write the temp file (stdout: free bytes), 6: incomplete,
#: 3: the target changed since it was read, 7: a symbolic link where the backup goes.
_REPLACE_SCRIPT = r"""
set -eu
path=$1 tmp=$2 backup=$3 expected=$4 mode=$5 keep=$6 new=$7
trap 'rm -f "$tmp"' EXIT
if ! (umask 077 && set -C && cat > "$tmp"); then
  stat -f -c '%a %S' "$(dirname "$tmp")" 2>/dev/null || true
  exit 5
fi
got=$(sha256sum "$tmp" | cut -d' ' -f1)
if [ "$got" != "$new" ]; then
  echo "the copy has sha256 $got, not the $new that was sent: the transfer was cut" >&2; exit 6
fi
if [ -e "$path" ]; then current=$(sha256sum "$path" | cut -d' ' -f1); else current=absent; fi
if [ "$current" != "$expected" ]; then
  echo "the file changed since it was read (now $current, expected $expected)" >&2; exit 3
fi
chmod "$mode" "$tmp"
if [ -e "$path" ]; then
  # Never through a symbolic link: .supakong, its backups dir or a backup pointing elsewhere.
  for link in "$(dirname "$(dirname "$backup")")" "$(dirname "$backup")" "$backup"; do
    if [ -L "$link" ]; then echo "$link is a symbolic link: refusing to follow it (remove it)" >&2; exit 7; fi
  done
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
# Prune by the UTC stamp in the name, never by mtime (`cp -p` keeps the file's, so after a
# restore of the oldest backup the new one would sort last); only this file's own names
# (NAME.STAMP exactly, the glob below), never the one just taken. A glob lists oldest first.
bdir=$(dirname "$backup") name=$(basename "$path") count=0
for old in "$bdir/$name".$STAMP_GLOB; do [ -f "$old" ] && count=$((count + 1)); done
excess=$((count - keep))
for old in "$bdir/$name".$STAMP_GLOB; do
  [ "$excess" -gt 0 ] || break
  if [ -f "$old" ] && [ "$old" != "$backup" ]; then rm -f "$old"; excess=$((excess - 1)); fi
done
sha256sum "$path" | cut -d' ' -f1
""".replace("$STAMP_GLOB", STAMP_GLOB)

_RESTORE_SCRIPT = r"""
set -eu
path=$1 backup=$2 tmp=$3
trap 'rm -f "$tmp"' EXIT
[ -f "$backup" ] || { echo "no such backup: $backup" >&2; exit 4; }
cp -p "$backup" "$tmp"
touch "$tmp"  # restored is new to Kong: an old mtime would hide the pending restart
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
    mtime: float = 0.0  # seconds, with the nanoseconds where stat gives them


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
    return RemoteFile(path, True, digest, int(size), int(mode, 8), int(uid), int(gid), float(mtime))


def backup_path(path: str, stamp: str) -> str:
    """Where the backup of ``path`` taken at ``stamp`` goes (beside it, in a hidden dir)."""
    directory, name = posixpath.split(path)
    return posixpath.join(directory, BACKUP_DIR, f"{name}.{stamp}")


def temp_path(path: str) -> str:
    """A fresh temp file name in the target's directory (so the rename is atomic)."""
    directory, name = posixpath.split(path)
    return posixpath.join(directory, f".{name}.supakong-{secrets.token_hex(6)}.tmp")


def replace_argv(path: str, tmp: str, backup: str, expected_sha: str, mode: int, keep: int, new_sha: str) -> list[str]:
    """The command that writes its stdin (of sha256 ``new_sha``) to ``tmp``, backs up ``path``
    and renames ``tmp`` over it, if ``path`` still has ``expected_sha``."""
    return ["sh", "-c", _REPLACE_SCRIPT, "sh", path, tmp, backup, expected_sha, f"{mode:o}", str(keep), new_sha]


def restore_argv(path: str, backup: str) -> list[str]:
    """The command that atomically puts ``backup`` back in place of ``path``."""
    return ["sh", "-c", _RESTORE_SCRIPT, "sh", path, backup, temp_path(path)]


def list_backups_argv(path: str) -> list[str]:
    """The command that lists the backups of ``path`` (see :func:`backup_names`)."""
    directory, name = posixpath.split(path)
    script = 'cd "$1" 2>/dev/null && for f in "$2".$STAMP_GLOB; do [ -f "$f" ] && echo "$f"; done; true'
    return ["sh", "-c", script.replace("$STAMP_GLOB", STAMP_GLOB), "sh", posixpath.join(directory, BACKUP_DIR), name]


def backup_names(config_name: str, listed: list[str]) -> list[str]:
    """The backups of ``config_name`` among ``listed``, newest stamp first: ``NAME.STAMP``
    exactly (``kong.yml.bak.STAMP`` or ``old-kong.yml.STAMP`` belong to other files)."""
    shape = re.compile(re.escape(config_name) + r"\." + _STAMP_RE)
    return sorted((n for n in listed if shape.fullmatch(n)), reverse=True)


def read_remote_file(conn: HostConnection, path: str) -> RemoteFile:
    """Stat and hash the host's file in one command."""
    return parse_stat(path, conn.run(stat_argv(path)).text)


def read_remote_text(conn: HostConnection, path: str) -> str:
    """The host file's content (for the diff)."""
    return conn.run(["cat", path]).text


def free_bytes(conn: HostConnection, directory: str) -> int | None:
    """Bytes available to the SSH user in ``directory``'s filesystem (None if unknown)."""
    try:
        return _free_from_stat(conn.run(["stat", "-f", "-c", "%a %S", directory], check=False).text)
    except TransportError:
        return None


def replace_file_atomically(
    conn: HostConnection, path: str, content: bytes, *, expected_sha: str, mode: int, keep: int, stamp: str
) -> str | None:
    """Send ``content`` and put it in place of ``path`` atomically, with a backup, in one
    command (see :data:`_REPLACE_SCRIPT`); return the backup path (if any).

    ``expected_sha`` is the sha256 the file had when we looked (or ``absent``): if someone
    changed it since, nothing is replaced. Raises :class:`TransportError` saying why.
    """
    checkpoint("replacing")
    tmp, backup = temp_path(path), backup_path(path, stamp)
    new_sha = hashlib.sha256(content).hexdigest()
    result = conn.run(replace_argv(path, tmp, backup, expected_sha, mode, keep, new_sha), stdin=content, check=False)
    if result.exit_code == 0:
        return backup if expected_sha != ABSENT else None
    where = f"{conn.host.name}: cannot upload to {tmp}"
    reason = result.stderr_tail(2) or f"exit {result.exit_code}"
    if result.exit_code == 5:
        free = _free_from_stat(result.text)
        if free is not None and free < len(content) and "No space left" not in reason:
            reason += f": No space left on device ({free} bytes free, {len(content)} needed)"
        elif free is not None:
            reason += f" ({free} bytes free, {len(content)} needed)"
    elif result.exit_code != 6:
        where = f"{conn.host.name}: cannot replace {path}"
    if "Permission denied" in reason:
        reason += f" ({not_writable_hint(conn.user, posixpath.dirname(path), conn.become)})"
    raise TransportError(f"{where}: {reason}")


def _free_from_stat(text: str) -> int | None:
    fields = text.split()
    try:
        return int(fields[0]) * int(fields[1])
    except (ValueError, IndexError):
        return None


def restore_backup(conn: HostConnection, path: str, backup: str) -> str:
    """Atomically restore ``backup`` over ``path``; return the restored sha256."""
    return conn.run(restore_argv(path, backup)).text.strip()


def list_backups(conn: HostConnection, path: str) -> list[str]:
    """Full paths of the backups of ``path``, newest stamp first."""
    directory = posixpath.join(posixpath.dirname(path), BACKUP_DIR)
    names = backup_names(posixpath.basename(path), conn.run(list_backups_argv(path)).text.splitlines())
    return [posixpath.join(directory, n) for n in names]
