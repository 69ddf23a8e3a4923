"""The part of ``docker compose up -d --remove-orphans`` that Dokploy's deploy relies on,
over the Docker Engine API: a container per service named ``<project>-<service>-1`` (or its
``container_name``), compose's labels (``docker/compose pkg/api/labels.go``), and a
container recreated only when its service's configuration hash changes
(``com.docker.compose.config-hash``): a bind-mounted file's *content* is not part of that
hash, so an unchanged Kong keeps running with the file it read at its start (Dokploy issue
#945). Supported service keys: image, container_name, entrypoint, command, environment,
volumes (short syntax, relative sources resolved against the project directory),
network_mode, extra_hosts, labels, healthcheck, restart. ``${VAR}`` / ``${VAR:-default}``
are interpolated from the ``.env`` beside the compose file, as compose does.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Mapping
from typing import Any

import yaml

COMPOSE_VERSION = "2.29.7"
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}|\$\$")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNITS = {"ms": 1_000_000, "s": 1_000_000_000, "m": 60_000_000_000, "h": 3_600_000_000_000}


def parse_env(text: str) -> dict[str, str]:
    """A ``.env`` file's ``NAME=value`` lines (comments and blanks skipped)."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip().strip('"')
    return values


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """Compose's ``${VAR}``, ``${VAR:-default}`` and ``$$`` in one value."""

    def one(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        return env.get(match.group(1)) or (match.group(2) or "")

    return _VAR.sub(one, text)


def _interpolated(value: Any, env: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        return interpolate(value, env)
    if isinstance(value, list):
        return [_interpolated(item, env) for item in value]
    if isinstance(value, dict):
        return {key: _interpolated(item, env) for key, item in value.items()}
    return value


def load_project(path: str, env: Mapping[str, str]) -> dict[str, Any]:
    """The compose file at ``path`` with its variables interpolated in its values (after
    parsing, as compose does: a value holding JSON stays one string)."""
    with open(path, encoding="utf-8") as handle:
        doc = _interpolated(yaml.safe_load(handle.read()) or {}, env)
    if not isinstance(doc.get("services"), dict):
        raise ValueError(f"{path}: no services")
    return doc


def config_hash(service: Mapping[str, Any]) -> str:
    """The service's configuration hash (its definition, never the files it mounts)."""
    return hashlib.sha256(json.dumps(service, sort_keys=True, default=str).encode()).hexdigest()


def _nanoseconds(value: Any) -> int:
    return sum(int(float(n) * _UNITS[u]) for n, u in _DURATION.findall(str(value)))


def _as_dict(value: Any, sep: str = "=") -> dict[str, str]:
    if isinstance(value, dict):
        return {str(k): "" if v is None else str(v) for k, v in value.items()}
    return dict(str(item).split(sep, 1) for item in value or [] if sep in str(item))


def _binds(volumes: list[str], workdir: str) -> dict[str, dict[str, str]]:
    binds: dict[str, dict[str, str]] = {}
    for volume in volumes:
        source, target, *rest = str(volume).split(":")
        if source.startswith("."):
            source = os.path.normpath(os.path.join(workdir, source))
        mode = "ro" if rest and "ro" in rest[0].split(",") else "rw"
        binds[source] = {"bind": target, "mode": mode}
    return binds


class Project:
    """One compose project on one engine (``client``: a docker-py ``APIClient``)."""

    def __init__(self, client: Any, name: str, config_file: str, log: Callable[[str], None]) -> None:
        self.client, self.name, self.config_file, self.log = client, name, config_file, log
        self.workdir = os.path.dirname(config_file)

    def labels(self, service: str, digest: str) -> dict[str, str]:
        """The labels compose puts on a service's container."""
        return {
            "com.docker.compose.project": self.name,
            "com.docker.compose.service": service,
            "com.docker.compose.project.working_dir": self.workdir,
            "com.docker.compose.project.config_files": self.config_file,
            "com.docker.compose.container-number": "1",
            "com.docker.compose.oneoff": "False",
            "com.docker.compose.version": COMPOSE_VERSION,
            "com.docker.compose.config-hash": digest,
        }

    def containers(self) -> dict[str, dict[str, Any]]:
        """This project's containers by service."""
        found = self.client.containers(all=True, filters={"label": f"com.docker.compose.project={self.name}"})
        return {c["Labels"]["com.docker.compose.service"]: c for c in found}

    def up(self, env: Mapping[str, str]) -> None:
        """``docker compose -p <name> -f <file> up -d --remove-orphans``."""
        services = load_project(self.config_file, env)["services"]
        existing = self.containers()
        for service, orphan in existing.items():
            if service not in services:
                self.log(f"Container {orphan['Names'][0].lstrip('/')} Removing (orphan)")
                self.client.remove_container(orphan["Id"], force=True)
        for service, definition in services.items():
            self._up_one(service, definition, existing.get(service))

    def _up_one(self, service: str, definition: Mapping[str, Any], current: dict[str, Any] | None) -> None:
        name = definition.get("container_name") or f"{self.name}-{service}-1"
        digest = config_hash(definition)
        if current is not None and current["Labels"].get("com.docker.compose.config-hash") == digest:
            if current["State"] != "running":
                self.client.start(current["Id"])
                self.log(f"Container {name} Started")
            else:
                self.log(f"Container {name} Running")
            return
        if current is not None:
            self.log(f"Container {name} Recreate")
            self.client.remove_container(current["Id"], force=True)
        self._create(service, name, definition, digest)
        self.client.start(name)
        self.log(f"Container {name} Started")

    def _create(self, service: str, name: str, d: Mapping[str, Any], digest: str) -> None:
        restart = d.get("restart")
        host_config = self.client.create_host_config(
            binds=_binds(list(d.get("volumes") or []), self.workdir),
            network_mode=d.get("network_mode"),
            extra_hosts=_as_dict(d.get("extra_hosts"), ":") or None,
            restart_policy={"Name": restart} if restart and restart != "no" else None,
        )
        health = d.get("healthcheck")
        healthcheck = None
        if health:
            healthcheck = {
                "test": health["test"],
                "interval": _nanoseconds(health.get("interval", "30s")),
                "timeout": _nanoseconds(health.get("timeout", "30s")),
                "retries": int(health.get("retries", 3)),
            }
        entrypoint = d.get("entrypoint")
        self.client.create_container(
            d["image"],
            name=name,
            entrypoint=[entrypoint] if isinstance(entrypoint, str) else entrypoint,
            command=d.get("command"),
            environment=_as_dict(d.get("environment")),
            labels={**_as_dict(d.get("labels")), **self.labels(service, digest)},
            healthcheck=healthcheck,
            host_config=host_config,
        )
