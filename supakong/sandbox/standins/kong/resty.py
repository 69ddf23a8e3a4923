"""The ``resty`` command of Kong's images (openresty/resty-cli:bin/resty), for ``-e CODE``.

Both official images ship ``resty`` (Kong's own CLI runs on it) and Kong's
``lua-resty-http``, and no curl. The stand-in runs the code in real Lua (lupa, LuaJIT when
available) with what such scripts use of OpenResty: ``require "resty.http"``
(``new``, ``set_timeout(s)``, ``request_uri``), ``require "cjson"`` / ``"cjson.safe"``,
``ngx.md5``, ``ngx.sleep``, ``ngx.say``, ``ngx.null``; ``print``, ``io`` and ``os`` are
LuaJIT's own, so ``os.exit(n)`` is the exit code, as with resty.

As with resty, a Lua error prints ``ERROR: (command line -e):LINE: message`` on stderr and
exits 1; a first argument after ``-e`` that is not an option is taken as a Lua file.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import sys
import time
from typing import Any
from urllib.parse import urlsplit

USAGE = 'resty [options] [lua-file [args]]\n  -e PROG  Run the inlined Lua code in "prog".\n'


class HttpModule:
    """``resty.http``'s one-shot client, with lua-resty-http's error strings."""

    def __init__(self, lua: Any, to_lua: Any) -> None:
        self.lua, self.to_lua = lua, to_lua

    def new(self) -> Any:
        client = self.lua.table_from({"timeout": 60.0})
        client["set_timeout"] = lambda this, ms: this.__setitem__("timeout", float(ms) / 1000)
        client["set_timeouts"] = lambda this, c, s, r: this.__setitem__("timeout", float(max(c, s, r)) / 1000)
        client["request_uri"] = self.request_uri
        client["close"] = lambda this: 1
        return client

    def request_uri(self, this: Any, uri: str, params: Any = None) -> tuple[Any, Any]:
        parts = urlsplit(uri)
        if parts.scheme != "http":
            return None, f"unsupported scheme in {uri}"  # the stand-in has no TLS
        method = str((params and params["method"]) or "GET")
        body = params and params["body"]
        headers = {str(k): str(v) for k, v in (params["headers"] or {}).items()} if params and params["headers"] else {}
        target = parts.path or "/"
        target += "?" + parts.query if parts.query else ""
        conn = http.client.HTTPConnection(parts.hostname or "", parts.port or 80, timeout=float(this["timeout"]))
        try:
            conn.request(method, target, body=body.encode() if isinstance(body, str) else body, headers=headers)
            response = conn.getresponse()
            data = response.read()
        except ConnectionRefusedError:
            return None, "connection refused"
        except TimeoutError:
            return None, "timeout"
        except (OSError, http.client.HTTPException) as exc:
            return None, str(getattr(exc, "strerror", None) or exc)
        finally:
            conn.close()
        return self.lua.table_from(
            {
                "status": response.status,
                "reason": response.reason,
                "body": data.decode("utf-8", "replace"),
                "headers": self.lua.table_from(dict(response.getheaders())),
                "has_body": bool(data),
            }
        ), None


def cjson_module(lua: Any, to_lua: Any, to_python: Any, safe: bool) -> Any:
    def decode(text: Any) -> Any:
        try:
            return to_lua(json.loads(text))
        except (TypeError, ValueError) as exc:
            if safe:
                return None, f"Expected value but found invalid token: {exc}"
            raise

    def encode(value: Any) -> Any:
        return json.dumps(to_python(value), separators=(",", ":"))

    return lua.table_from({"decode": decode, "encode": encode, "null": lua.eval("nil")})


def runtime() -> Any:
    try:
        from lupa import luajit21 as lupa_module
    except ImportError:
        from lupa import lua51 as lupa_module
    lua = lupa_module.LuaRuntime(unpack_returned_tuples=True, register_eval=False)

    def to_lua(value: Any) -> Any:
        if isinstance(value, dict):
            return lua.table_from({k: to_lua(v) for k, v in value.items()})
        if isinstance(value, list):
            return lua.table_from([to_lua(v) for v in value])
        return value

    def to_python(value: Any) -> Any:
        if lua_type(value) != "table":
            return value
        items = dict(value.items())
        if items and all(isinstance(k, int) for k in items):
            return [to_python(items[i]) for i in sorted(items)]
        return {str(k): to_python(v) for k, v in items.items()}

    lua_type = lua.globals().type
    g = lua.globals()
    preload = g.package.preload
    http_module = HttpModule(lua, to_lua)
    modules = {
        "resty.http": lua.table_from({"new": http_module.new}),
        "cjson": cjson_module(lua, to_lua, to_python, safe=False),
        "cjson.safe": cjson_module(lua, to_lua, to_python, safe=True),
    }
    for name, module in modules.items():
        preload[name] = lua.eval("function(m) return function() return m end end")(module)
    g.ngx = lua.table_from(
        {
            "md5": lambda text: hashlib.md5(str(text).encode()).hexdigest(),
            "sleep": time.sleep,
            "now": time.time,
            "say": lambda *parts: print("".join(map(str, parts)), flush=True),
        }
    )
    return lua


def main(argv: list[str]) -> int:
    code, args = None, iter(argv)
    for arg in args:
        if arg == "-e":
            code = next(args, None)
        elif arg in ("-I", "-j", "-l", "--http-conf", "--main-conf", "--shdict", "--nginx"):
            next(args, None)
        elif not arg.startswith("-"):
            try:
                with open(arg, encoding="utf-8") as handle:
                    code = (code or "") + "\n" + handle.read()
            except OSError as exc:
                print(f"ERROR: cannot open {arg}: {exc.strerror}", file=sys.stderr)
                return 1
            break
    if code is None:
        print(USAGE, file=sys.stderr)
        return 1
    lua = runtime()
    run = lua.eval(
        "function(code) local f, e = loadstring(code, '=(command line -e)')"
        " if not f then return false, e end local ok, err = pcall(f) return ok, tostring(err) end"
    )
    ok, error = run(code)
    sys.stdout.flush()
    if not ok:
        print(f"ERROR: {error}", file=sys.stderr)
        return 1
    return 0
