"""Tasks for the local sandbox VPS (needs root; never touches a real server).

The sandbox package (docker, PyJWT) is imported inside the tasks: other tasks start faster."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fabric import task
from invoke import Context

from supakong.runner import exits_cleanly

if TYPE_CHECKING:
    from supakong.sandbox import SandboxSpec

NAME_HELP = (
    "Which sandbox: 'sandbox' (the default, Kong 2.8.1), 'sandbox-modern' (today's self-hosted"
    " Supabase with Kong 3.9.3, opaque keys and a JWKS), 'sandbox-dokploy' (Supabase as a Dokploy"
    " service, docs/dokploy.md), or NAME:INDEX for another one"
)
#: The sandboxes of the repository inventory (inventory/hosts.yml) and their indexes.
KNOWN = {"sandbox": 1, "sandbox-modern": 25, "sandbox-dokploy": 26}


def _spec(name: str) -> SandboxSpec:
    from supakong.errors import InventoryError
    from supakong.sandbox.inventory import spec_for

    base, _, index = name.partition(":")
    if not base.startswith("sandbox"):
        raise InventoryError(f"--name {name}: sandbox names start with 'sandbox' (the allowlist fence)")
    if index:
        if not index.isdecimal() or not 2 <= int(index) <= 250:
            raise InventoryError(f"--name {name}: the index must be a number in 2..250")
        return spec_for(base, int(index))
    if base not in KNOWN:
        raise InventoryError(f"--name {name}: not a sandbox of inventory/hosts.yml; give NAME:INDEX")
    return spec_for(base, KNOWN[base])


@task(help={"name": NAME_HELP})
@exits_cleanly
def sandbox_up(c: Context, name: str = "sandbox") -> None:
    """Create the local VPS: netns + sshd + dockerd + Kong and Realtime stand-ins."""
    from supakong.sandbox import sandbox_up as up

    spec = up(_spec(name))
    print(f"{spec.name} is up: ssh -F {spec.ssh_config_path} {spec.ssh_alias}; Kong at {spec.public_url}")


@task(help={"purge": "Also delete keys, secrets, images and the sandbox's files", "name": NAME_HELP})
@exits_cleanly
def sandbox_down(c: Context, purge: bool = False, name: str = "sandbox") -> None:
    """Stop the local VPS (dockerd, sshd) and remove its network namespace."""
    from supakong.sandbox import sandbox_down as down

    spec = _spec(name)
    down(spec, purge=purge)
    print(f"{spec.name} is down" + (" and purged" if purge else ""))


@task(help={"name": NAME_HELP})
@exits_cleanly
def sandbox_reset(c: Context, name: str = "sandbox") -> None:
    """Put the sandbox back to its before state (the seed config, fresh containers)."""
    from supakong.sandbox import sandbox_reset as reset

    spec = reset(_spec(name))
    print(f"{spec.name} reset: {spec.kong_config_path} holds the seed config again")
