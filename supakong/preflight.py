"""Preflight on the host: Kong itself parses the new file before anything is replaced.

The offline validator knows Kong's schema from its source; the running Kong knows it for
sure (its exact version, edition and ``KONG_PLUGINS``). Before the file is replaced, the new
content is copied into the running Kong container and checked with ``kong config parse``,
after the same ``$VAR`` expansion the Supabase entrypoint applies (a shell ``eval`` with the
container's own environment), so what Kong parses here is what it would load at start.
"""

from __future__ import annotations

import io
import tarfile
import time
from dataclasses import dataclass
from typing import Any

from .container import ContainerState, exec_in_container
from .errors import TransportError, ValidationError
from .secrets import mask

WORKDIR = "/tmp/supakong-preflight"
# The Supabase compose entrypoint expands the mounted file with `eval "echo \"$(cat …)\""`.
_EXPAND_AND_PARSE = (
    'cd "$1" && eval "echo \\"$(cat temp.yml)\\"" > kong.yml && kong config parse kong.yml; '
    'code=$?; rm -rf "$1"; exit $code'
)
_PARSE_ONLY = 'cd "$1" && kong config parse temp.yml; code=$?; rm -rf "$1"; exit $code'


@dataclass(frozen=True)
class PreflightResult:
    """What the preflight did: ``ok``, ``failed`` or ``skipped`` (with why)."""

    status: str
    detail: str


def expands_with_eval(command: list[str]) -> bool:
    """True if the container's entrypoint/command runs the file through a shell ``eval``."""
    return any("eval" in part for part in command)


def tar_one_file(name: str, content: bytes) -> bytes:
    """A tar archive with one file (what ``PUT /containers/{id}/archive`` takes)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.size, info.mode, info.mtime = len(content), 0o600, int(time.time())
        tar.addfile(info, io.BytesIO(content))
    return buf.getvalue()


def container_command(api: Any, name: str) -> list[str]:
    """The container's entrypoint + command, as one list."""
    config = api.inspect_container(name).get("Config") or {}
    return [*(config.get("Entrypoint") or []), *(config.get("Cmd") or [])]


def preflight_parse(api: Any, kong: ContainerState, content: bytes) -> PreflightResult:
    """Run ``kong config parse`` on ``content`` inside the running Kong container.

    Raises :class:`ValidationError` when Kong refuses the file; returns ``skipped`` when
    Kong is not running (nothing to exec into).
    """
    import docker.errors  # lazy: keeps `fab` start-up fast

    if not (kong.running and not kong.restarting):
        return PreflightResult("skipped", f"{kong.name} is {kong.status}: cannot run kong config parse in it")
    workdir = f"{WORKDIR}-{int(time.time() * 1000)}"
    try:
        exec_in_container(api, kong.name, ["mkdir", "-p", workdir])
        api.put_archive(kong.name, workdir, tar_one_file("temp.yml", content))
    except (docker.errors.APIError, TransportError) as exc:
        return PreflightResult("skipped", f"cannot copy the file into {kong.name}: {mask(str(exc))[:200]}")
    script = _EXPAND_AND_PARSE if expands_with_eval(container_command(api, kong.name)) else _PARSE_ONLY
    code, output = exec_in_container(api, kong.name, ["sh", "-c", script, "sh", workdir])
    if code == 0 and "parse successful" in output:
        return PreflightResult("ok", "kong config parse: parse successful")
    if code == 127:
        return PreflightResult("skipped", f"no kong CLI in {kong.name}")
    lines = [line.strip() for line in mask(output).splitlines() if line.strip()]
    raise ValidationError(
        f"Kong in {kong.name} refuses the new file (kong config parse exited {code}): "
        f"{' | '.join(lines[:6])[:600]}; nothing was changed"
    )
