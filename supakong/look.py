"""Look at a host in one round trip: one command for the config file (sha256 + stat, its
resolved path) and the host lock (optionally taking it), while both containers are inspected
through the Docker Engine API at the same time, on other channels of the same connection.

A no-op converge is this look plus the audit line, sent to the look's command, which waits
for it (:func:`look_held`): two round trips after the handshake, one SSH session.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from .audit_append import APPEND_LINE_SH
from .container import inspect_container
from .plan import HostState
from .remote_file import parse_stat
from .transport import HeldCommand, HostConnection

_SECTIONS_SCRIPT = r"""
path=$1 lock=$2 details=$3 hold=$4 log=$5
echo '### file'
if [ -e "$path" ]; then
  sha256sum "$path" && stat -c '%s %a %u %g %Y' "$path"
else
  echo absent
fi
echo '### realpath'
readlink -f "$path" 2>/dev/null || echo "$path"
echo '### lock'
if [ -z "$lock" ]; then
  echo none
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

#: With ``hold``: the look then waits for one line on stdin, the run's audit line (empty or
#: EOF: nothing), and appends it to ``log``. A no-op converge is then one SSH session.
_HOLD_SCRIPT = (
    """
[ "$hold" = 1 ] || exit 0
echo '### end'
IFS= read -r line || exit 0
[ -n "$line" ] || exit 0
"""
    + APPEND_LINE_SH
)
END_MARKER = b"### end"
_LOOK_SCRIPT = _SECTIONS_SCRIPT + _HOLD_SCRIPT


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
    """Read the host's state (and try the lock when ``details`` is given) in one round trip:
    the file/lock command and the two container inspections run concurrently."""
    state, status, _ = _look(conn, path, kong, realtime, lock, details, "")
    return state, status


def look_held(
    conn: HostConnection, path: str, kong: str, realtime: str, *, lock: str, audit_log: str
) -> tuple[HostState, LockStatus, HeldCommand | None]:
    """:func:`look`, whose command then stays open for the run's audit line: finish it with
    the line (a no-op: one SSH session in all), or release it and audit with its own command."""
    return _look(conn, path, kong, realtime, lock, "", audit_log)


def _look(
    conn: HostConnection, path: str, kong: str, realtime: str, lock: str, details: str, audit_log: str
) -> tuple[HostState, LockStatus, HeldCommand | None]:
    argv = look_argv(path, lock, details, audit_log)
    with ThreadPoolExecutor(max_workers=3) as pool:
        if audit_log:
            command = pool.submit(conn.start, argv, until=END_MARKER)
        else:
            command = pool.submit(lambda: (conn.run(argv).stdout, None))
        api = conn.engine()
        containers = pool.map(lambda name: inspect_container(api, name), (kong, realtime))
        kong_state, realtime_state = list(containers)
        output, held = command.result()
    sections = split_sections(output.decode("utf-8", "replace"))
    state = HostState(
        file=parse_stat(path, sections.get("file", "absent")),
        kong=kong_state,
        realtime=realtime_state,
        realpath=sections.get("realpath", "").strip() or path,
    )
    return state, parse_lock(sections.get("lock", "none")), held
