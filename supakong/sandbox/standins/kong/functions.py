"""pre-function and post-function: their ``access`` code runs as real Lua (see ``lua``).

The code sees the part of Kong's PDK the Lua Supabase ships (and small extensions of it)
needs, with Kong's semantics (Kong/kong@3.9.3:kong/pdk/request.lua, pdk/service/request.lua,
pdk/log.lua): ``kong.request.get_header/get_headers/get_query/get_query_arg/get_method/
get_path/get_raw_query/get_host/get_scheme``, ``kong.service.request.set_header/add_header/
clear_header``, ``kong.response.exit`` and ``kong.log.*``. Other phases than ``access`` are
not run by the stand-in.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from . import lua
from .http import Reply
from .logs import log_error
from .transformer import parse_query

PDK_NAMES = (
    "request.get_header",
    "request.get_headers",
    "request.get_query",
    "request.get_query_arg",
    "request.get_method",
    "request.get_path",
    "request.get_raw_query",
    "request.get_host",
    "request.get_scheme",
    "service.request.set_header",
    "service.request.add_header",
    "service.request.clear_header",
    *(f"log.{level}" for level in ("err", "warn", "notice", "info", "debug", "crit", "alert", "emerg")),
)


class FunctionFailure(RuntimeError):
    """The plugin's Lua failed (Kong logs it and answers 500)."""


def compiled(config: Mapping[str, Any], cache: dict[str, Any]) -> lua.FunctionPlugin:
    """The plugin's access functions, compiled once per loaded configuration."""
    if "access" not in cache:
        cache["access"] = lua.FunctionPlugin([str(code) for code in config.get("access") or []], PDK_NAMES)
    plugin: lua.FunctionPlugin = cache["access"]
    return plugin


def pdk(ctx: Any, name: str) -> Mapping[str, Callable[..., Any]]:
    """``kong.*`` for the request of ``ctx`` (a plugins.Context)."""
    req = ctx.request
    runtime, helpers = lua.runtime()

    def get_headers(max_headers: Any = None) -> Any:
        return helpers.headers(runtime.table_from([runtime.table_from(pair) for pair in req.headers]))

    def get_query(max_args: Any = None) -> Any:
        return helpers.args(runtime.table_from([runtime.table_from(pair) for pair in parse_query(req.query)]))

    def get_query_arg(arg: str) -> Any:
        return next((value for key, value in parse_query(req.query) if key == arg), None)

    def log(level: str) -> Callable[..., None]:
        return lambda *parts: log_error(level, f"[kong] {name}: " + "".join(str(p) for p in parts))

    def add_header(header: str, value: Any) -> None:
        req.headers.append((str(header), str(value)))

    functions: dict[str, Callable[..., Any]] = {
        "request.get_header": lambda header: req.header(str(header)),
        "request.get_headers": get_headers,
        "request.get_query": get_query,
        "request.get_query_arg": get_query_arg,
        "request.get_method": lambda: req.method,
        "request.get_path": lambda: req.path,
        "request.get_raw_query": lambda: req.query,
        "request.get_host": lambda: req.host,
        "request.get_scheme": lambda: "http",
        "service.request.set_header": lambda header, value: req.set_header(str(header), str(value)),
        "service.request.add_header": add_header,
        "service.request.clear_header": lambda header: req.remove_header(str(header)),
    }
    for level in ("err", "warn", "notice", "info", "debug", "crit", "alert", "emerg"):
        functions[f"log.{level}"] = log(level)
    return functions


def run_access(ctx: Any, name: str, config: Mapping[str, Any], cache: dict[str, Any]) -> Reply | None:
    """Run the access functions; a ``kong.response.exit`` becomes the reply."""
    try:
        outcome = compiled(config, cache).run(pdk(ctx, name))
    except lua.LuaError as exc:
        raise FunctionFailure(f"[{name}] {exc}") from None
    if outcome is None:
        return None
    return Reply(outcome.status, outcome.body or b"", outcome.headers)
