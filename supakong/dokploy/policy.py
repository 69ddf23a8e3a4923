"""How supakong writes Kong's file on a Dokploy-managed stack, decided once from what the
look saw (pure): through Dokploy's API, directly behind its back (``--direct``, warned), or
not at all, with the reason and the way out. The messages cite Dokploy's docs
(https://docs.dokploy.com/docs/core/docker-compose, "Volumes") and code paths by name.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import DeployError
from ..secrets import register_secret
from .detect import CODE, FILES, DokployStack

if TYPE_CHECKING:
    from ..inventory import HostConfig

API, DIRECT, PLAIN = "api", "direct", "plain"
DOCS = "https://docs.dokploy.com/docs/core/docker-compose"


class DokployRefusal(DeployError):
    """Writing this file would go behind Dokploy's back (or be wiped by it)."""


@dataclass(frozen=True)
class ApiAccess:
    """Dokploy's panel and the key for it (the key's value never prints: see ``__repr__``)."""

    url: str
    key_env: str
    key: str

    def __repr__(self) -> str:
        return f"ApiAccess(url={self.url!r}, key_env={self.key_env!r}, key=***)"


def api_access(host: HostConfig, environ: Mapping[str, str] | None = None) -> ApiAccess | None:
    """The inventory's ``dokploy_url`` with the key from the variable ``dokploy_api_key_env``
    names (None when either is missing or the variable is empty)."""
    env = os.environ if environ is None else environ
    if not host.dokploy_url or not host.dokploy_api_key_env:
        return None
    key = env.get(host.dokploy_api_key_env, "")
    if not key:
        return None
    register_secret(key)  # masked wherever it might appear (it is never printed on purpose)
    return ApiAccess(host.dokploy_url, host.dokploy_api_key_env, key)


def missing_access(host: HostConfig, environ: Mapping[str, str] | None = None) -> str:
    """What is missing for the API, in the inventory's words."""
    env = os.environ if environ is None else environ
    if not host.dokploy_url:
        return f"hosts/{host.name}/dokploy_url is not set"
    if not host.dokploy_api_key_env:
        return f"hosts/{host.name}/dokploy_api_key_env is not set"
    if not env.get(host.dokploy_api_key_env):
        return f"the environment variable {host.dokploy_api_key_env} (hosts/{host.name}/dokploy_api_key_env) is empty"
    return ""


def stale_copy_warning(stack: DokployStack) -> str:
    """What a direct write leaves behind, and what reverts it."""
    return (
        f"Dokploy's stored copy of file mount {stack.file_path} (compose {stack.app_name}) is now stale: the next"
        " save of that mount in Dokploy (Advanced → Volumes, or an API mounts.update) writes the old content back;"
        " paste the new file into that mount in Dokploy, or deploy with dokploy_url and an API key"
    )


def choose_writer(
    stack: DokployStack | None, host: HostConfig, *, direct: bool, environ: Mapping[str, str] | None = None
) -> str:
    """API, DIRECT or PLAIN (not Dokploy's); raise :class:`DokployRefusal` when the file must
    not be written from here."""
    if stack is None:
        return PLAIN
    where = f"{host.name}: {host.kong_config_path}"
    if stack.location == CODE:
        raise DokployRefusal(
            f"{where} is in Dokploy's code/ directory of compose {stack.app_name}: every Dokploy deploy recreates"
            f" code/ from the compose source, so a change written here is lost; change the file in the git"
            f" repository (or, Dokploy ≥ v0.28, add a patch for it in the service), or move it to a file mount"
            f" (../files/…), see {DOCS}"
        )
    if stack.location != FILES:
        return DIRECT if direct else PLAIN
    if api_access(host, environ) is not None:
        return API
    if direct:
        return DIRECT
    raise DokployRefusal(
        f"{where} is Dokploy's file mount {stack.file_path} of compose {stack.app_name}: Dokploy keeps its own copy"
        f" and writes it back the next time anyone saves that mount, so a change written over SSH is silently"
        f" reverted ({missing_access(host, environ)}); set dokploy_url and dokploy_api_key_env (an API key from"
        f" Dokploy's Settings → Profile → API Keys) to deploy through Dokploy's API, or pass --direct to write the"
        f" file anyway"
    )


def dokploy_notes(stack: DokployStack | None, markers: tuple[str, ...], host: HostConfig | None) -> tuple[str, ...]:
    """What doctor and init say about Dokploy on this host."""
    notes = []
    if stack is not None:
        notes.append(stack.describe())
        if stack.location == FILES and host is not None:
            how = "through Dokploy's API" if host.dokploy_url else "refused unless --direct (no dokploy_url)"
            notes.append(f"deploy-kong writes it {how}")
        elif stack.location == CODE:
            notes.append("deploy-kong refuses to write it: Dokploy rewrites code/ on every deploy")
    if markers:
        notes.append(f"Dokploy markers: {'; '.join(markers)}")
    return tuple(notes)


def doctor_check(stack: DokployStack | None, host: HostConfig | None) -> tuple[str, str, str, tuple[str, ...]] | None:
    """doctor's "dokploy" row: (status, detail, fix, notes), status "ok" or "fail"; None when
    the stack is not Dokploy's."""
    if stack is None:
        return None
    detail = stack.describe()
    if stack.location == CODE:
        return "fail", detail, "Dokploy rewrites code/ on every deploy: change the file in git or a Dokploy patch", ()
    if stack.location == FILES and host is not None and api_access(host) is None:
        fix = (
            f"{missing_access(host)}: set dokploy_url, and dokploy_api_key_env naming a variable that holds a key, so"
            " that deploy-kong updates the mount through Dokploy's API (a write over SSH is reverted by the next"
            " save of the mount in Dokploy)"
        )
        return "fail", detail, fix, ()
    via = f"deploy-kong updates it through {host.dokploy_url}; Dokploy's copy is the host's file" if host else ""
    return "ok", detail, "", (via,) if via else ()


def writer_intent(stack: DokployStack | None, host: HostConfig, kind: str) -> str:
    """The plan's line for a Dokploy-managed file."""
    assert stack is not None
    if kind == API:
        return f"{stack.describe()}: writing it through Dokploy's API at {host.dokploy_url}, then applying it to Kong"
    return f"! {stack.describe()}: --direct, writing it in place over SSH, behind Dokploy's back"
