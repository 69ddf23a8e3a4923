"""Look at a host in one exchange: one command for the config file (sha256 + stat, its
resolved path) and the host lock (optionally taking it), while the containers are inspected
through the Docker Engine API at the same time, on other channels of the same connection.

A no-op converge is this look plus the audit line, sent to the look's command, which waits
for it (:func:`look_held`): two round trips after the handshake (the session and the engine
channel open with the authentication, see :mod:`supakong.transport`), one SSH session. Its
look inspects Kong only: Realtime's state
matters only to validate a file that is going to be written (see
:func:`supakong.deploy.deploy_host`).

Every look of a run shares one pool of worker threads for the inspections (a pool per host
cost ~1 ms of CPU per host in thread start-ups), and the command prints its sections in
one write: one SSH data packet to decrypt instead of one per line.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass

from .audit_append import APPEND_LINE_SH
from .container import inspect_container
from .plan import HostState
from .remote_file import STAT_SH, parse_stat
from .transport import HeldCommand, HostConnection

_SECTIONS_SCRIPT = (
    "echo '### file'\np=$path\n"
    + STAT_SH
    + r"""
echo '### realpath'
if [ -L "$path" ]; then
  readlink -f "$path" 2>/dev/null || echo "$path"
elif cd -P -- "${path%/*}/" 2>/dev/null; then
  # Builtins only (no readlink process): the directory's physical path, then the name.
  printf '%s/%s\n' "${PWD%/}" "${path##*/}"; cd "$OLDPWD"
else
  echo "$path"
fi
echo '### loaded'
cat "${path%/*}/.supakong/loaded" 2>/dev/null
echo '### lock'
if [ -z "$lock" ]; then
  echo none
elif [ -n "$details" ] && [ -L "${lock%/*}" ]; then
  echo "error ${lock%/*} is a symbolic link: refusing to follow it (remove it)"
elif [ -n "$details" ] && err=$(mkdir -p "$(dirname "$lock")" 2>&1) && mkdir "$lock" 2>/dev/null; then
  # A lock without its details could never be released or judged stale: undo it.
  if err=$(printf '%s\n' "$details" 2>&1 > "$lock/details"); then
    echo acquired
  else
    rm -rf "$lock"; echo "error $err"
  fi
elif [ -d "$lock" ]; then
  now=$(date +%s); since=$(stat -c %Y "$lock" 2>/dev/null || echo "$now")
  echo "held $((now - since))"; cat "$lock/details" 2>/dev/null || echo '{}'
elif [ -n "$details" ]; then
  echo "error ${err:-$(mkdir "$lock" 2>&1)}"
else
  echo free
fi
"""
)

#: With ``hold``: the look then waits for one line on stdin, the run's audit line (empty or
#: EOF: nothing), and appends it to ``log``. A no-op converge is then one SSH session.
_HOLD_SCRIPT = (
    """
IFS= read -r line || exit 0
[ -n "$line" ] || exit 0
"""
    + APPEND_LINE_SH
)
END_MARKER = b"### end"
_LOOK_SCRIPT = (
    "path=$1 lock=$2 details=$3 hold=$4 log=$5\n"
    + f"sections=$({_SECTIONS_SCRIPT})\n"
    + 'if [ "$hold" != 1 ]; then printf \'%s\\n\' "$sections"; exit 0; fi\n'
    + f"printf '%s\\n{END_MARKER.decode()}\\n' \"$sections\"\n"
    + _HOLD_SCRIPT
)
#: The inspections of every look of the run (threads start on demand, then are reused).
_INSPECTIONS = ThreadPoolExecutor(max_workers=64, thread_name_prefix="supakong-inspect")


@dataclass(frozen=True)
class LockStatus:
    """What the look saw of the host lock: ``acquired``, ``held`` (by someone else), ``none``."""

    status: str
    age: int = 0
    details: str = ""


def look_argv(path: str, lock: str = "", details: str = "", audit_log: str = "") -> list[str]:
    """The command that prints the file, realpath and lock sections; with ``audit_log`` it
    then holds (see :data:`END_MARKER`) for the audit line to append there."""
    hold = ["1", audit_log] if audit_log else []
    return ["sh", "-c", _LOOK_SCRIPT, "sh", path, lock, details, *hold]


def split_sections(text: str) -> dict[str, str]:
    """``### name`` sections of the look output."""
    sections: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        if line.startswith("### "):
            current = line[4:].strip()
            sections[current] = []
        elif current is not None:
            sections[current].append(line)
    return {k: "\n".join(v) for k, v in sections.items()}


def parse_lock(text: str) -> LockStatus:
    """Parse the lock section."""
    lines = text.splitlines() or ["none"]
    head = lines[0].split()
    if head[0] == "held":
        return LockStatus("held", int(head[1]), "\n".join(lines[1:]).strip())
    if head[0] == "error":  # the lock could not be created: details holds the reason
        return LockStatus("error", details=" ".join(text.split()[1:]))
    return LockStatus(head[0])


def look(
    conn: HostConnection, path: str, kong: str, realtime: str, *, lock: str = "", details: str = ""
) -> tuple[HostState, LockStatus]:
    """Read the host's state (and try the lock when ``details`` is given) in one exchange:
    the file/lock command and the two container inspections run concurrently."""
    state, status, _ = _look(conn, path, kong, realtime, lock, details, "")
    return state, status


def look_held(
    conn: HostConnection, path: str, kong: str, *, lock: str, audit_log: str
) -> tuple[HostState, LockStatus, HeldCommand | None]:
    """:func:`look` at the file, the lock and Kong (not Realtime: ``state.realtime`` is
    None), whose command then stays open for the run's audit line: finish it with the line
    (a no-op: one SSH session in all), or release it and audit with its own command."""
    return _look(conn, path, kong, "", lock, "", audit_log)


def _look(
    conn: HostConnection, path: str, kong: str, realtime: str, lock: str, details: str, audit_log: str
) -> tuple[HostState, LockStatus, HeldCommand | None]:
    argv = look_argv(path, lock, details, audit_log)
    names = (kong, realtime) if realtime else (kong,)
    # The inspections go out while this thread runs the command: the same round trips.
    inspections = [_INSPECTIONS.submit(lambda name: inspect_container(conn.engine(), name), n) for n in names]
    try:
        output, held = conn.start(argv, until=END_MARKER) if audit_log else (conn.run(argv).stdout, None)
    except BaseException:
        wait(inspections)  # their outcome no longer matters; the command's error does
        raise
    try:
        containers = [future.result() for future in inspections]
    except BaseException:
        if held is not None:
            held.release()
        raise
    kong_state, realtime_state = containers[0], (containers[1] if realtime else None)
    sections = split_sections(output.decode("utf-8", "replace"))
    state = HostState(
        file=parse_stat(path, sections.get("file", "absent")),
        kong=kong_state,
        realtime=realtime_state,
        realpath=sections.get("realpath", "").strip() or path,
        loaded=sections.get("loaded", "").strip(),
    )
    return state, parse_lock(sections.get("lock", "none")), held
