"""Look at a host in one command: the config file (sha256 + stat), both containers
(``docker inspect``, the same JSON as the Engine API) and, optionally, take the host lock.

One exec instead of an SFTP stat, a hash and several API calls: a no-op converge stays at
one round trip to read plus one to write the audit line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from .container import ContainerState, state_from_inspect
from .errors import TransportError
from .plan import HostState
from .remote_file import parse_stat
from .transport import HostConnection

_LOOK_SCRIPT = r"""
path=$1 lock=$2 details=$3 kong=$4 realtime=$5
echo '### file'
if [ -e "$path" ]; then
  set -- $(sha256sum "$path"); printf '%s\n' "$1"; stat -c '%s %a %u %g %Y' "$path"
else
  echo absent
fi
echo '### realpath'
readlink -f "$path" 2>/dev/null || echo "$path"
echo '### lock'
if [ -z "$lock" ]; then
  echo none
elif [ -n "$details" ] && mkdir -p "$(dirname "$lock")" && mkdir "$lock" 2>/dev/null; then
  printf '%s\n' "$details" > "$lock/details"; echo acquired
elif [ -d "$lock" ]; then
  now=$(date +%s); since=$(stat -c %Y "$lock" 2>/dev/null || echo "$now")
  echo "held $((now - since))"; cat "$lock/details" 2>/dev/null || echo '{}'
else
  echo free
fi
echo '### containers'
docker inspect "$kong" "$realtime" 2>&1 || true
"""


@dataclass(frozen=True)
class LockStatus:
    """What the look saw of the host lock: ``acquired``, ``held`` (by someone else), ``none``."""

    status: str
    age: int = 0
    details: str = ""


def look_argv(path: str, kong: str, realtime: str, lock: str = "", details: str = "") -> list[str]:
    """The command that prints the file, lock and container sections."""
    return ["sh", "-c", _LOOK_SCRIPT, "sh", path, lock, details, kong, realtime]


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


def parse_containers(text: str, names: tuple[str, ...], host: str) -> dict[str, ContainerState]:
    """Parse ``docker inspect`` output; names it did not find are missing containers."""
    start = text.find("[")
    try:
        items = json.loads(text[start : text.rindex("]") + 1]) if start >= 0 else []
    except ValueError:
        items = None
    if items is None or (not items and "No such object" not in text):
        raise TransportError(f"{host}: `docker inspect` failed: {text.strip()[-300:] or 'no output'}")
    by_name = {str(i.get("Name", "")).lstrip("/"): i for i in items}
    return {n: state_from_inspect(n, by_name[n]) if n in by_name else ContainerState(n, False) for n in names}


def parse_lock(text: str) -> LockStatus:
    """Parse the lock section."""
    lines = text.splitlines() or ["none"]
    head = lines[0].split()
    if head[0] == "held":
        return LockStatus("held", int(head[1]), "\n".join(lines[1:]).strip())
    return LockStatus(head[0])


def look(
    conn: HostConnection, path: str, kong: str, realtime: str, *, lock: str = "", details: str = ""
) -> tuple[HostState, LockStatus]:
    """Read the host's state (and try the lock when ``details`` is given) in one command."""
    sections = split_sections(conn.run(look_argv(path, kong, realtime, lock, details)).text)
    states = parse_containers(sections.get("containers", ""), (kong, realtime), conn.host.name)
    state = HostState(
        file=parse_stat(path, sections.get("file", "absent")),
        kong=states[kong],
        realtime=states[realtime],
        realpath=sections.get("realpath", "").strip() or path,
    )
    return state, parse_lock(sections.get("lock", "none"))
