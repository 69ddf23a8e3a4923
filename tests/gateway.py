"""The sandbox's Kong and Realtime stand-ins as two processes on 127.0.0.1, Kong in front with
the config the project's template renders: a Supabase gateway for tests that speak to it as
a client does. Both stand-ins are black boxes here: they are started with their documented
command line and environment (see their module docstrings), never imported.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import jwt
import yaml
from ports import free_port

from supakong.inventory import load_inventory
from supakong.render import render_kong_config
from supakong.secrets import load_secrets

STANDINS = Path(__file__).resolve().parents[1] / "supakong" / "sandbox" / "standins"
GROUP_VARS = Path(__file__).resolve().parents[1] / "inventory" / "group_vars" / "all.yml"
JWT_SECRET = "super-secret-jwt-token-with-at-least-32-characters-long"
SUPABASE_PLUGINS = "request-transformer,cors,key-auth,acl,basic-auth,request-termination,ip-restriction"


def supabase_key(role: str, secret: str = JWT_SECRET) -> str:
    """An anon / service_role key as Supabase makes them (HS256, a day long)."""
    return jwt.encode({"role": role, "iss": "supabase", "exp": int(time.time()) + 86400}, secret, algorithm="HS256")


#: The keys every gateway's Kong holds (made once: a key made later differs in its exp).
ANON_KEY, SERVICE_KEY = supabase_key("anon"), supabase_key("service_role")


@dataclass
class Process:
    """A stand-in process, where it listens and where its output goes."""

    process: subprocess.Popen[bytes]
    port: int
    log: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def start(argv: list[str], env: dict[str, str], port: int, log: Path) -> Process:
    """Start a stand-in and wait (with a deadline) until it accepts connections."""
    with log.open("wb") as sink:
        process = subprocess.Popen(argv, env={"PATH": os.environ.get("PATH", ""), **env}, stdout=sink, stderr=sink)
    deadline, delay = time.monotonic() + 15, 0.02
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{argv[1]} exited with {process.returncode}:\n{log.read_text()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return Process(process, port, log)
        except OSError:
            if time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(f"{argv[1]} did not listen on {port} within 15 s:\n{log.read_text()}") from None
            time.sleep(delay)
            delay = min(delay * 2, 0.2)


def start_realtime(directory: Path, **env: str) -> Process:
    """The Realtime stand-in on a free port (its environment: API_JWT_SECRET, PORT, HOST, and
    SELF_HOST_TENANT_NAME, REALTIME_VERSION, REALTIME_PUBLICATION_TABLES… from ``env``)."""
    port = free_port()
    settings = {"API_JWT_SECRET": JWT_SECRET, "HOST": "127.0.0.1", "PORT": str(port), **env}
    return start([sys.executable, str(STANDINS / "realtime_standin.py")], settings, port, directory / "realtime.log")


def start_kong(directory: Path, config: str, upstream_host: str) -> Process:
    """The Kong stand-in (``kong docker-start``) serving ``config`` on a free port; names
    resolve from a hosts file of its own that maps ``upstream_host`` to 127.0.0.1 only."""
    port = free_port()
    (directory / "kong.yml").write_text(config)
    (directory / "hosts").write_text(f"127.0.0.1 localhost\n127.0.0.1 {upstream_host}\n")
    settings = {
        "KONG_DECLARATIVE_CONFIG": str(directory / "kong.yml"),
        "KONG_PROXY_LISTEN": f"127.0.0.1:{port}",
        "KONG_PLUGINS": SUPABASE_PLUGINS,
        "KONG_PREFIX": str(directory / "prefix"),
        "KONG_DNS_HOSTSFILE": str(directory / "hosts"),
        "KONG_STANDIN_HOSTS_ONLY": "1",
        "KONG_ADMIN_LISTEN": "off",  # Kong's default 127.0.0.1:8001 would be shared by parallel runs
    }
    argv = [sys.executable, str(STANDINS / "kong_standin.py"), "docker-start"]
    return start(argv, settings, port, directory / "kong.log")


def rendered_config(directory: Path, realtime_port: int, **host_vars: object) -> str:
    """kong-simple.yml as the project's template renders it for a host whose Realtime
    upstream listens on ``realtime_port`` (``host_vars`` override the inventory's)."""
    (directory / "group_vars").mkdir(exist_ok=True)
    (directory / "group_vars" / "all.yml").write_text(GROUP_VARS.read_text())
    (directory / "secrets.env").write_text(f"SUPABASE_ANON_KEY={ANON_KEY}\nSUPABASE_SERVICE_KEY={SERVICE_KEY}\n")
    host = {
        "public_url": "http://127.0.0.1:8000",
        "kong_container": "kong",
        "realtime_container": "realtime",
        "kong_config_path": "/srv/kong.yml",
        "secrets_env_file": str(directory / "secrets.env"),
        "kong_template": str(GROUP_VARS.parents[2] / "templates" / "kong-simple.yml.j2"),
        "realtime_upstream_port": realtime_port,
        # This Kong reads the file as is (no entrypoint expands $NAME references): keys inline.
        "kong_secrets": "inline",
        **host_vars,
    }
    (directory / "hosts.yml").write_text(yaml.safe_dump({"all": {"hosts": {"gateway": host}}}))
    config = load_inventory(directory / "hosts.yml").host("gateway")
    return render_kong_config(config, load_secrets(config.secrets_env_file, environ={}))


@dataclass
class Gateway:
    """Kong in front of Realtime: the public URL a browser would use, and the anon key."""

    kong: Process
    realtime: Process
    anon_key: str

    @property
    def public_url(self) -> str:
        return f"http://127.0.0.1:{self.kong.port}"

    def stop(self) -> None:
        self.kong.stop()
        self.realtime.stop()


def start_gateway(
    directory: Path,
    *,
    realtime_env: dict[str, str] | None = None,
    edit: Callable[[str], str] = lambda config: config,
    upstream_host: str = "realtime-dev.supabase-realtime",
) -> Gateway:
    """Realtime (with ``realtime_env``), then Kong with the rendered config (``edit``-ed)."""
    directory.mkdir(parents=True, exist_ok=True)
    realtime = start_realtime(directory, **(realtime_env or {}))
    try:
        config = edit(rendered_config(directory, realtime.port, realtime_upstream_host=upstream_host))
        kong = start_kong(directory, config, "realtime-dev.supabase-realtime")
    except BaseException:
        realtime.stop()
        raise
    return Gateway(kong, realtime, ANON_KEY)
