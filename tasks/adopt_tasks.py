"""Adopting a server supakong did not build: init."""

from __future__ import annotations

from pathlib import Path

from fabric import task
from invoke import Context

from supakong.report import Output, recap_lines
from supakong.runner import Task, exits_cleanly, fail

USAGE = "supakong init NAME --ssh [user@]host[:port] [--ssh-config FILE] [--dir DIR] [--fix] [--project NAME]"


@task(
    klass=Task,
    positional=["name"],
    help={
        "name": "The host's name in the inventory (e.g. edge-1)",
        "ssh": "Where to SSH: [user@]host[:port] or an alias of your ssh config",
        "ssh-config": "An ssh config to use instead of ~/.ssh/config (recorded in the inventory)",
        "dir": "The project directory to write inventory/ and templates/ in (default: here)",
        "fix": "Apply the known remedies to the realtime route (each printed with its reason)",
        "project": "The compose project to adopt when the host runs several Supabase stacks",
        "accept-new": "Trust an unknown SSH host key on first use (OpenSSH accept-new)",
    },
)
@exits_cleanly
def init(
    c: Context,
    name: str,
    ssh: str = "",
    ssh_config: str | None = None,
    dir: str = ".",  # noqa: A002 - the flag is --dir
    fix: bool = False,
    project: str | None = None,
    accept_new: bool = False,
) -> None:
    """Adopt NAME: read the host over SSH (read-only), write its inventory entry and template locally."""
    from supakong.adopt import InitRequest, init_host  # lazy: ruamel.yaml only for init

    if not ssh or name.startswith("-"):
        fail(f"usage: {USAGE} (details: supakong --help init)")

    request = InitRequest(
        name=name,
        ssh=ssh,
        directory=Path(dir),
        ssh_config=Path(ssh_config) if ssh_config else None,
        fix=fix,
        project=project,
        accept_new=accept_new,
    )
    out = Output()
    out.line(f"init {name} (ssh {ssh})", name)
    result = init_host(request, out)
    out.lines(recap_lines({name: result}))
