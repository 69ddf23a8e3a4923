"""The ``kong`` command line: docker-start/start, health, config parse, version."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Mapping

from .admin import AdminApi, LoadedConfig, file_hash
from .logs import log_error
from .model import Gateway, build_gateway
from .proxy import Proxy
from .settings import Settings, load_settings
from .validation import parse_declarative_file

LUA = "/usr/local/share/lua/5.1/kong"
RUN_HINT = "\n\n  Run with --v (verbose) or --vv (debug) for more details"
USAGE = """Usage: kong COMMAND [OPTIONS]

The available commands are:
 config
 docker-start
 health
 start
 version
"""


def parse_listen(spec: str, quiet: bool = False) -> list[tuple[str, int]]:
    """Plain listeners of ``proxy_listen``/``admin_listen``; ssl ones are skipped (the
    stand-in has no TLS)."""
    listeners = []
    for words in (entry.split() for entry in spec.split(",") if entry.strip() not in ("", "off")):
        if "ssl" in words[1:]:
            if not quiet:
                log_error("warn", f"stand-in: skipping ssl listener {words[0]}")
            continue
        host, _, port = words[0].rpartition(":")
        listeners.append((host.strip("[]") or "0.0.0.0", int(port)))
    return listeners


def start_failure(settings: Settings, error: str) -> int:
    """What ``kong docker-start`` prints when init_by_lua refuses the declarative file."""
    print(
        f"Error: {LUA}/cmd/start.lua:37: nginx: [error] init_by_lua error: {LUA}/init.lua:553:"
        f" error parsing declarative config file {settings.declarative_config}:\n{error}\n"
        f"stack traceback:\n\t[C]: in function 'error'\n\t{LUA}/init.lua:553: in function "
        f"'init'\n\tinit_by_lua:3: in main chunk{RUN_HINT}",
        file=sys.stderr,
        flush=True,
    )
    return 1


async def serve(settings: Settings, gateway: Gateway, loaded: LoadedConfig) -> int:
    """Bind, write the pid file, log like nginx's start, serve until SIGTERM/SIGINT."""
    proxy, servers = Proxy(settings, gateway), []
    admin = AdminApi(settings, proxy, loaded)
    listeners = [(proxy.handle, a) for a in parse_listen(settings.proxy_listen)]
    listeners += [(admin.handle, a) for a in parse_listen(settings.admin_listen, quiet=True)]
    for handler, (host, port) in listeners:
        try:
            servers.append(await asyncio.start_server(handler, host, port))
        except OSError as exc:
            print(
                f"nginx: [emerg] bind() to {host}:{port} failed ({exc.errno}: {exc.strerror})",
                file=sys.stderr,
                flush=True,
            )
            return 1
    os.makedirs(os.path.dirname(settings.pid_file), exist_ok=True)
    with open(settings.pid_file, "w", encoding="utf-8") as handle:
        handle.write(f"{os.getpid()}\n")
    openresty = "1.25.3.2" if settings.v3 else "1.19.9.1"
    for text in (
        'using the "epoll" event method',
        f"openresty/{openresty}",
        "start worker processes",
        f"start worker process {os.getpid()}",
    ):
        log_error("notice", text)
    if settings.declarative_config:
        log_error(
            "notice",
            f"*1 [kong] init.lua:562 declarative config loaded from "
            f"{settings.declarative_config}, context: init_worker_by_lua*",
        )
    await wait_for_stop_signal()
    for server in servers:
        server.close()
    with contextlib.suppress(OSError):
        os.unlink(settings.pid_file)
    log_error("notice", "exit")
    return 0


async def wait_for_stop_signal() -> None:
    stopping = asyncio.Event()

    def on_signal(sig: signal.Signals) -> None:
        action = "shutting down" if sig == signal.SIGQUIT else "exiting"
        log_error("notice", f"signal {int(sig)} ({sig.name}) received, {action}")
        stopping.set()

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
        loop.add_signal_handler(sig, on_signal, sig)
    await stopping.wait()


def cmd_start(settings: Settings) -> int:
    gateway = Gateway()  # no declarative file: Kong starts with an empty configuration
    text = None
    if settings.declarative_config:
        doc, error = parse_declarative_file(settings.declarative_config, settings)
        if doc is None:
            return start_failure(settings, error)
        gateway = build_gateway(doc, legacy_paths=not settings.v3)
        with open(settings.declarative_config, encoding="utf-8") as handle:
            text = handle.read()
    return asyncio.run(serve(settings, gateway, LoadedConfig(file_hash(settings, text))))


def cmd_health(settings: Settings) -> int:
    """``kong health`` only checks that the nginx master pid is alive (kong/cmd/health.lua)."""
    try:
        with open(settings.pid_file, encoding="utf-8") as handle:
            os.kill(int(handle.read().strip()), 0)
        running = True
    except (OSError, ValueError):
        running = False
    if os.path.exists(settings.pid_file):
        print("nginx......." + ("running" if running else "not running") + "\n")
    if not running:
        print(f"Error: Kong is not running at {settings.prefix}{RUN_HINT}", file=sys.stderr)
        return 1
    print(f"Kong is healthy at {settings.prefix}")
    return 0


def cmd_config_parse(settings: Settings, path: str) -> int:
    if not os.path.exists(path):
        print(f"Error: {path}: No such file or directory{RUN_HINT}", file=sys.stderr)
        return 1
    doc, error = parse_declarative_file(path, settings)
    if doc is None:
        print(f"Error: Failed parsing:\n{error}{RUN_HINT}", file=sys.stderr)
        return 1
    print("parse successful")
    return 0


def main(argv: list[str], environ: Mapping[str, str] | None = None) -> int:
    """Run one ``kong`` command; ``environ`` defaults to the process environment."""
    env, words, args = dict(os.environ if environ is None else environ), [], iter(argv)
    for arg in args:
        if arg in ("-p", "--prefix"):
            env["KONG_PREFIX"] = next(args, env.get("KONG_PREFIX", ""))
        elif arg in ("-c", "--conf"):
            next(args, None)  # the stand-in reads no kong.conf, only KONG_* variables
        elif not arg.startswith("-"):
            words.append(arg)
    settings = load_settings(env)
    command = words[0] if words else ""
    if command in ("docker-start", "start"):
        return cmd_start(settings)
    if command == "health":
        return cmd_health(settings)
    if command == "config" and len(words) == 3 and words[1] == "parse":
        return cmd_config_parse(settings, words[2])
    if command == "version":  # kong/cmd/version.lua prints meta._VERSION alone (2.8.1 and 3.9.3)
        print(settings.version_text)
        return 0
    print(USAGE, file=sys.stderr)
    return 1
