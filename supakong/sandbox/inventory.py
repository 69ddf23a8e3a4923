"""An inventory for a sandbox VPS other than the repository's ``sandbox`` host (tests,
benchmarks, several sandboxes at once). Host names start with ``sandbox`` so that the
``SUPAKONG_HOST_ALLOWLIST=sandbox*`` fence lets them through."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import yaml

from ..packaged import templates_dir
from .spec import SandboxSpec

TEMPLATE = templates_dir() / "kong-simple.yml.j2"
MODERN_TEMPLATE = templates_dir() / "kong-2026.yml.j2"
#: A sandbox whose name ends so plays today's self-hosted Supabase (see :func:`modern_spec`).
MODERN_SUFFIX = "-modern"


def spec_for(name: str, index: int) -> SandboxSpec:
    """A sandbox whose container names follow its name (``<name>-supabase-kong``); a name
    ending in ``-modern`` is a modern one (:func:`modern_spec`), one ending in ``-dokploy`` a
    Dokploy-managed one (:func:`~supakong.sandbox.dokploy.dokploy_spec`)."""
    if name == "sandbox":
        return SandboxSpec()
    if name.endswith("-dokploy"):
        from .dokploy import dokploy_spec

        return dokploy_spec(name, index)
    spec = SandboxSpec(
        name=name,
        index=index,
        kong_container=f"{name}-supabase-kong",
        realtime_container=f"{name}-supabase-realtime",
        db_container=f"{name}-supabase-db",
    )
    return modern_spec(spec) if name.endswith(MODERN_SUFFIX) else spec


def modern_spec(spec: SandboxSpec) -> SandboxSpec:
    """``spec`` as today's self-hosted Supabase with Kong (docker-compose.kong.yml of
    self-hosted v0.8.1): kong/kong:3.9.3 run by kong-entrypoint.sh with the expressions
    router, upstream's kong.yml as the before state, opaque keys and asymmetric JWTs made as
    add-new-auth-keys.sh makes them, and Realtime verifying ES256 against API_JWT_JWKS."""
    return dataclasses.replace(
        spec,
        kong_era="2026",
        kong_image="kong/kong:3.9.3",
        realtime_image="supabase/realtime:v2.134.10",
        seed="seed-kong-2026.yml",
        kong_file="kong.yml",
        api_keys=True,
        realtime_jwks=True,
    )


def template_for(spec: SandboxSpec) -> Path:
    """The shipped template of the sandbox's era."""
    return MODERN_TEMPLATE if spec.kong_era == "2026" else TEMPLATE


def host_vars(spec: SandboxSpec, template: Path | None = None) -> dict[str, object]:
    """The inventory variables of one sandbox host (``template``: its era's by default; a
    Dokploy one: with its API)."""
    template = template or template_for(spec)
    dokploy: dict[str, object] = {}
    if spec.dokploy:
        from .dokploy import KEY_ENV, api_url

        dokploy = {"dokploy_url": api_url(spec), "dokploy_api_key_env": KEY_ENV}
    return {
        "ansible_host": spec.ssh_alias,
        "ssh_config_file": str(spec.ssh_config_path),
        "public_url": spec.public_url,
        "kong_container": spec.kong_container,
        "realtime_container": spec.realtime_container,
        "kong_config_path": str(spec.kong_config_path),
        "docker_socket": str(spec.docker_socket),
        "secrets_env_file": str(spec.secrets_path),
        "kong_template": str(template),
        "backups_keep": 3,
        **dokploy,
    }


def write_sandbox_inventory(path: Path, specs: Sequence[SandboxSpec], group: str = "sandboxes") -> Path:
    """Write an Ansible-style inventory with one host per sandbox (named like the sandbox);
    supakong's packaged defaults (upstreams, verify channel, modes) apply to every host."""
    (path.parent / "group_vars").mkdir(parents=True, exist_ok=True)
    hosts = {spec.name: host_vars(spec) for spec in specs}
    path.write_text(yaml.safe_dump({"all": {"children": {group: {"hosts": hosts}}}}, sort_keys=False))
    return path
