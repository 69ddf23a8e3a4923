"""Tasks for the local sandbox VPS (needs root; never touches a real server).

The sandbox package (docker, PyJWT) is imported inside the tasks: other tasks start faster."""

from __future__ import annotations

from fabric import task
from invoke import Context

from supakong.runner import exits_cleanly


@task
@exits_cleanly
def sandbox_up(c: Context) -> None:
    """Create the local VPS: netns + sshd + dockerd + Kong and Realtime stand-ins."""
    from supakong.sandbox import SandboxSpec
    from supakong.sandbox import sandbox_up as up

    spec = up(SandboxSpec())
    print(f"sandbox is up: ssh -F {spec.ssh_config_path} {spec.ssh_alias}; Kong at {spec.public_url}")


@task(help={"purge": "Also delete keys, secrets, images and the sandbox's files"})
@exits_cleanly
def sandbox_down(c: Context, purge: bool = False) -> None:
    """Stop the local VPS (dockerd, sshd) and remove its network namespace."""
    from supakong.sandbox import SandboxSpec
    from supakong.sandbox import sandbox_down as down

    down(SandboxSpec(), purge=purge)
    print("sandbox is down" + (" and purged" if purge else ""))


@task
@exits_cleanly
def sandbox_reset(c: Context) -> None:
    """Put the sandbox back to its before state (the seed config, fresh containers)."""
    from supakong.sandbox import SandboxSpec
    from supakong.sandbox import sandbox_reset as reset

    spec = reset(SandboxSpec())
    print(f"sandbox reset: {spec.kong_config_path} holds the seed config again")
