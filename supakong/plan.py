"""Look, then plan: pure decisions from the host's state, no connection needed."""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from .container import ContainerState
from .remote_file import RemoteFile
from .secrets import mask


@dataclass(frozen=True)
class HostState:
    """What we saw on the host before acting."""

    file: RemoteFile
    kong: ContainerState
    #: None when not looked at (a deploy's first look only needs Kong)
    realtime: ContainerState | None
    #: the config path with symlinks resolved (Docker reports bind mounts resolved)
    realpath: str = ""
    #: the reload marker (``.supakong/loaded``): "<sha256> <Kong's started_at>" of the file
    #: last loaded into the running Kong through its Admin API (see :func:`loaded_marker`)
    loaded: str = ""

    @property
    def file_is_loaded(self) -> bool:
        """True when this file was reloaded into this very incarnation of Kong."""
        return self.loaded == loaded_marker(self.file.sha256, self.kong.started_at)


def loaded_marker(sha256: str, started_at: float) -> str:
    """What a reload writes beside the config: the file it loaded and the Kong it loaded it into."""
    return f"{sha256} {started_at:.6f}"


@dataclass(frozen=True)
class Plan:
    """What a deploy will do, and why."""

    replace: bool
    restart: bool
    reasons: tuple[str, ...]

    @property
    def changes(self) -> bool:
        """True if anything is to be done."""
        return self.replace or self.restart

    def describe(self) -> str:
        """One line: ``no change`` or the actions and their reasons."""
        if not self.changes:
            return "no change"
        # A new file is loaded the way the apply step chooses (reload or restart, said there);
        # without one, Kong must be (re)started: it is down, unhealthy, or a restart is pending.
        load = "load into Kong" if self.replace else "restart Kong"
        actions = [a for a, on in (("replace file", self.replace), (load, self.restart)) if on]
        return f"{' + '.join(actions)} ({'; '.join(self.reasons)})"


def plan_deploy(desired_sha: str, state: HostState) -> Plan:
    """Decide what to do. A restart is needed when the file changes, when Kong is not
    running, and when an earlier run replaced the file but never restarted Kong (the file is
    newer than the container's start: a restart that cannot be lost), unless that run
    reloaded this file into this Kong through its Admin API (the reload marker says so)."""
    reasons = []
    replace = state.file.sha256 != desired_sha
    if replace:
        reasons.append("file is absent" if not state.file.exists else "file differs")
    restart = replace
    if not state.kong.exists:
        reasons.append(f"container {state.kong.name} does not exist")
    elif not state.kong.running or state.kong.restarting:
        reasons.append(f"Kong is {state.kong.status}")
        restart = True
    elif state.kong.health == "unhealthy":
        reasons.append("Kong is running but unhealthy")
        restart = True
    elif not replace and state.file.mtime > state.kong.started_at and not state.file_is_loaded:
        reasons.append("file is newer than the running Kong (restart pending from an earlier run)")
        restart = True
    return Plan(replace=replace, restart=restart, reasons=tuple(reasons))


def unified_diff(old: str, new: str, path: str) -> str:
    """A unified diff of the host's file and the desired one, with secrets masked. Diffed
    before masking: a changed password still shows as a changed ``password: ***`` line."""
    lines = difflib.unified_diff(
        old.splitlines(keepends=True),
        new.splitlines(keepends=True),
        fromfile=f"{path} (on host)",
        tofile=f"{path} (desired)",
    )
    return mask("".join(lines))
