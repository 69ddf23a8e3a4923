"""Tasks for the local sandbox VPS (needs root; never touches a real server).

The sandbox package (docker, PyJWT) is imported inside the tasks: other tasks start faster."""

from __future__ import annotations

from fabric import task
from invoke import Context

from supakong.runner import exits_cleanly

PROFILE_HELP = {"profile": "'' (the sandbox host) or 'dokploy' (sandbox-dokploy: Supabase as a Dokploy service)"}


def _spec(profile: str):  # type: ignore[no-untyped-def]
    """The sandbox of a profile, as the repository inventory names it."""
    from supakong.errors import InventoryError
    from supakong.sandbox import SandboxSpec
    from supakong.sandbox.inventory import spec_for

    if profile == "dokploy":
        return spec_for("sandbox-dokploy", 26)
    if profile:
        raise InventoryError(f"--profile {profile!r}: expected '' or 'dokploy'")
    return SandboxSpec()


@task(help=PROFILE_HELP)
@exits_cleanly
def sandbox_up(c: Context, profile: str = "") -> None:
    """Create the local VPS: netns + sshd + dockerd + Kong and Realtime stand-ins."""
    from supakong.sandbox import sandbox_up as up

    spec = up(_spec(profile))
    print(f"sandbox is up: ssh -F {spec.ssh_config_path} {spec.ssh_alias}; Kong at {spec.public_url}")


@task(help={"purge": "Also delete keys, secrets, images and the sandbox's files", **PROFILE_HELP})
@exits_cleanly
def sandbox_down(c: Context, purge: bool = False, profile: str = "") -> None:
    """Stop the local VPS (dockerd, sshd) and remove its network namespace."""
    from supakong.sandbox import sandbox_down as down

    down(_spec(profile), purge=purge)
    print("sandbox is down" + (" and purged" if purge else ""))


@task(help=PROFILE_HELP)
@exits_cleanly
def sandbox_reset(c: Context, profile: str = "") -> None:
    """Put the sandbox back to its before state (the seed config, fresh containers)."""
    from supakong.sandbox import sandbox_reset as reset

    spec = reset(_spec(profile))
    print(f"sandbox reset: {spec.kong_config_path} holds the seed config again")
