"""What a sandbox VPS is: names, addresses and paths, all derived from a name and an index."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

STATE_ROOT = Path(os.path.expanduser("~/.local/state/supakong"))
RUN_ROOT = Path("/run/supakong")
DATA_ROOT = Path("/var/lib/supakong")
SRV_ROOT = Path("/srv/supakong-sandbox")
STANDINS_DIR = Path(__file__).resolve().parent / "standins"

#: The SSH user on the sandbox VPS: not root, in the docker group, no sudo, a plain /bin/sh
#: login with no rc files (a lean login, as on a real server).
SSH_USER = "supakong"
SUPABASE_PLUGINS = "request-transformer,cors,key-auth,acl,basic-auth,request-termination,ip-restriction"
#: KONG_PLUGINS of Supabase's 2026 Kong (supabase/supabase:docker/docker-compose.kong.yml).
SUPABASE_PLUGINS_2026 = SUPABASE_PLUGINS + ",post-function"
#: The Kong of each era of self-hosted Supabase the sandbox can play: "legacy" is kong:2.8.1
#: with the eval entrypoint; "2026" is kong/kong:3.9.3 run by kong-entrypoint.sh with the
#: expressions router (docker-compose.kong.yml).
KONG_ERAS = ("legacy", "2026")


@dataclass(frozen=True)
class SandboxSpec:
    """One local VPS: a network namespace with its own address, sshd, dockerd and the containers
    (Kong, Realtime, the db)."""

    name: str = "sandbox"
    index: int = 1
    kong_image: str = "kong:2.8.1"
    realtime_image: str = "supabase/realtime:v2.129.8"
    kong_container: str = "sandbox-supabase-kong"
    realtime_container: str = "sandbox-supabase-realtime"
    db_container: str = "sandbox-supabase-db"
    realtime_upstream_host: str = "realtime-dev.supabase-realtime"
    tenant: str = "realtime-dev"
    kong_port: int = 8000
    kong_era: str = "legacy"
    #: The "before" kong file (in this package) and whether Kong loads it: the second seed,
    #: a user's own file with a custom service and a hand-edited realtime route that Kong
    #: OSS refuses (ws/wss protocols), leaves Kong crash-looping, as it would on a server.
    seed: str = "seed-kong.yml"
    seed_loads: bool = True
    #: KONG_ADMIN_LISTEN of the Kong container; empty = Kong's default (127.0.0.1:8001), as
    #: in Supabase's compose. A second Kong in the same VPS (host network) needs its own.
    kong_admin_listen: str = ""
    #: The kong file's name in volumes/api (upstream's current compose mounts kong.yml).
    kong_file: str = "kong-simple.yml"
    #: Whether the sandbox has today's keys (opaque sb_ keys, ES256 JWTs, a JWKS; see
    #: supakong.sandbox.api_keys) and Realtime gets the JWKS as API_JWT_JWKS.
    api_keys: bool = False
    realtime_jwks: bool = False
    #: Kong and Realtime belong to a Dokploy compose service (:mod:`supakong.sandbox.dokploy`).
    dokploy: bool = False

    @property
    def netns(self) -> str:
        """The network namespace that plays the VPS."""
        return f"sk-{self.name}"

    @property
    def host_if(self) -> str:
        """The host end of the veth pair (at most 15 characters)."""
        return f"skh{self.index}"

    @property
    def host_addr(self) -> str:
        """The host's address on the link to the VPS."""
        return f"10.203.{self.index}.1"

    @property
    def vps_addr(self) -> str:
        """The VPS's own address (sshd and the containers listen on it)."""
        return f"10.203.{self.index}.2"

    @property
    def ssh_alias(self) -> str:
        """The Host alias in the ssh config this sandbox writes."""
        return f"supakong-{self.name}"

    @property
    def state_dir(self) -> Path:
        """Keys, known_hosts, ssh config, secrets and logs (outside the repository)."""
        return STATE_ROOT / self.name

    @property
    def run_dir(self) -> Path:
        """Sockets and pid files (short paths: unix sockets are limited to 108 bytes)."""
        return RUN_ROOT / self.name

    @property
    def docker_socket(self) -> Path:
        """The VPS's Docker Engine socket."""
        return self.run_dir / "docker.sock"

    @property
    def docker_data_root(self) -> Path:
        """The VPS's Docker data root."""
        return DATA_ROOT / self.name / "docker"

    @property
    def srv_dir(self) -> Path:
        """The VPS's Supabase directory (what docker compose would live in)."""
        return SRV_ROOT / self.name

    @property
    def kong_config_path(self) -> Path:
        """The kong file on the VPS's volume, bind-mounted into the Kong container
        (under Dokploy: the template's file mount, ``files/volumes/api/kong.yml``)."""
        if self.dokploy:
            from .dokploy import files_path

            return files_path(self)
        return self.srv_dir / "volumes" / "api" / self.kong_file

    @property
    def ssh_config_path(self) -> Path:
        """The ssh config with this sandbox's alias."""
        return self.state_dir / "ssh_config"

    @property
    def known_hosts_path(self) -> Path:
        """The known_hosts file with this sandbox's host key."""
        return self.state_dir / "known_hosts"

    @property
    def secrets_path(self) -> Path:
        """The env file with this sandbox's JWT secret and keys."""
        return self.state_dir / "secrets.env"

    @property
    def public_url(self) -> str:
        """Kong's proxy as a browser on the host would reach it."""
        return f"http://{self.vps_addr}:{self.kong_port}"


def compose_labels(spec: SandboxSpec, service: str) -> dict[str, str]:
    """The labels ``docker compose up`` puts on a service's container (docker/compose
    ``pkg/api/labels.go``), for a project in the VPS's Supabase directory: supakong finds
    containers by these, as on a real server."""
    return {
        "supakong.sandbox": spec.name,
        "com.docker.compose.project": spec.name,
        "com.docker.compose.service": service,
        "com.docker.compose.project.working_dir": str(spec.srv_dir),
        "com.docker.compose.project.config_files": str(spec.srv_dir / "docker-compose.yml"),
        "com.docker.compose.container-number": "1",
        "com.docker.compose.oneoff": "False",
        "com.docker.compose.version": "2.29.7",
    }


#: The client key, shared by every sandbox (one authorized_keys for the sandbox user).
CLIENT_KEY = STATE_ROOT / "id_ed25519"
