"""Real Lua (LuaJIT through lupa) for what Kong runs as Lua: request-transformer templates
and pre-/post-function code.

Templates: request-transformer renders a value with Penlight's ``pl.template`` and its
``#`` escape disabled (Kong/kong@3.9.3:kong/plugins/request-transformer/access.lua:40-42,
74-108). ``$(expr)`` is a Lua expression up to the balancing parenthesis (``%b()``); it is
replaced by ``tostring((expr) or '')``, so a nil result renders as the empty string; text
around it is kept. The expression sees a read-only environment with ``headers``,
``query_params``, ``uri_captures`` and ``shared``, loaded on first use, plus ``type``
(access.lua:506-551, untrusted_lua = sandbox, the default).

Functions: pre-/post-function compile each string with Kong's sandbox (the safe globals of
Kong/kong@3.9.3:kong/tools/kong-lua-sandbox.lua plus ``kong`` and ``ngx``); the chunk runs
on the first request, and if it returns a function, that function runs from then on
(Kong/kong@3.9.3:kong/plugins/pre-function/_handler.lua:22-74). The ``kong`` here is the
part of Kong's PDK the code Supabase ships needs (``kong.request.get_header``,
``kong.service.request.clear_header``, ...).

Nothing of Kong's or Penlight's code is copied: this is our own implementation of the
behaviour those files describe.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

_LUA_HELPERS = r"""
local setmetatable, rawget, type, ipairs, lower = setmetatable, rawget, type, ipairs, string.lower
local helpers = {}

-- ngx.req.get_headers(): lower-case keys, repeated headers as arrays, and lookups that
-- ignore case and accept '_' for '-' (lua-nginx-module, ngx.req.get_headers).
function helpers.headers(list)
  local t = {}
  for _, pair in ipairs(list) do
    local k, v = lower(pair[1]), pair[2]
    local old = t[k]
    if old == nil then t[k] = v
    elseif type(old) == "table" then old[#old + 1] = v
    else t[k] = { old, v } end
  end
  return setmetatable(t, { __index = function(self, key)
    if type(key) ~= "string" then return nil end
    local normal = lower(key):gsub("_", "-")
    if normal ~= key then return rawget(self, normal) end
  end })
end

-- ngx.req.get_uri_args(): a flag without '=' is true, repeated args are arrays.
function helpers.args(list)
  local t = {}
  for _, pair in ipairs(list) do
    local k, v = pair[1], pair[2]
    local old = t[k]
    if old == nil then t[k] = v
    elseif type(old) == "table" then old[#old + 1] = v
    else t[k] = { old, v } end
  end
  return t
end

-- The template environment: lazily loaded request values, read-only.
function helpers.template_env(load)
  local loaded = { type = type }
  return setmetatable({}, {
    __index = function(self, key)
      local value = rawget(loaded, key)
      if value == nil and (key == "headers" or key == "query_params"
          or key == "uri_captures" or key == "shared") then
        value = load(key)
        loaded[key] = value
      end
      return value
    end,
    __newindex = function() error("This environment is read-only.", 2) end,
  })
end

function helpers.load(code, name)
  local fn, err = loadstring(code, name)
  return fn, err
end

function helpers.bind(fn, env)
  setfenv(fn, env)
  return fn
end

function helpers.chunk_env(parent)
  return setmetatable({ __tostring = tostring }, { __index = parent })
end

-- kong-lua-sandbox's BASE_ENV: the globals sandboxed code may use.
local BASE = {
  "_VERSION", "assert", "error", "ipairs", "next", "pairs", "pcall", "select", "tonumber",
  "tostring", "type", "unpack", "xpcall",
}
local MODULES = {
  coroutine = { "create", "resume", "running", "status", "wrap", "yield" },
  math = { "abs", "acos", "asin", "atan", "atan2", "ceil", "cos", "cosh", "deg", "exp",
    "fmod", "floor", "frexp", "huge", "ldexp", "log", "log10", "max", "min", "modf", "pi",
    "pow", "rad", "random", "sin", "sinh", "sqrt", "tan", "tanh" },
  os = { "clock", "date", "difftime", "time" },
  string = { "byte", "char", "find", "format", "gmatch", "gsub", "len", "lower", "match",
    "rep", "reverse", "sub", "upper" },
  table = { "concat", "insert", "maxn", "remove", "sort" },
}
function helpers.sandbox_env(extra)
  local env = {}
  for _, name in ipairs(BASE) do env[name] = _G[name] end
  for module, names in pairs(MODULES) do
    local m = {}
    for _, name in ipairs(names) do m[name] = _G[module][name] end
    env[module] = setmetatable({}, { __index = m, __newindex = function(_, k)
      error("Can not modify " .. module .. "." .. k .. ". Protected by the sandbox.")
    end })
  end
  env.require = function(name) error("require '" .. tostring(name) .. "' not allowed within sandbox") end
  for k, v in pairs(extra) do env[k] = v end
  env._G = env
  return env
end

-- kong.response.exit() ends the phase: an error carrying this marker.
helpers.EXIT = setmetatable({}, { __tostring = function() return "kong.response.exit" end })
function helpers.exiter(record)
  return function(status, body, headers)
    record(status, body, headers)
    error(helpers.EXIT, 0)
  end
end

function helpers.run(fn)
  local ok, result = pcall(fn)
  if ok then return true, nil, result end
  if result == helpers.EXIT then return true, "exit", nil end
  return false, tostring(result), nil
end

function helpers.is_function(value)
  return type(value) == "function"
end

return helpers
"""


class LuaError(RuntimeError):
    """Lua code failed to compile or to run."""


@functools.lru_cache(maxsize=1)
def runtime() -> tuple[Any, Any]:
    """One LuaJIT runtime for the process (Kong runs LuaJIT, Lua 5.1 semantics) and our
    helpers in it. lupa is imported only when Lua is needed."""
    try:
        from lupa import luajit21 as lupa_module
    except ImportError:  # a lupa build without LuaJIT: Lua 5.1 has the same semantics here
        from lupa import lua51 as lupa_module
    lua = lupa_module.LuaRuntime(unpack_returned_tuples=True, register_eval=False, register_builtins=False)
    return lua, lua.execute(_LUA_HELPERS)


def syntax_error(code: str, chunk_name: str) -> str | None:
    """``loadstring(code)``'s error message, or None when the code compiles."""
    _, helpers = runtime()
    function, error = helpers.load(code, chunk_name)
    return None if function is not None else str(error)


# ------------------------------------------------------------------ templates
@dataclass(frozen=True)
class Template:
    """A request-transformer value: literal text and ``$(...)`` expressions."""

    source: str
    parts: tuple[tuple[bool, str], ...]  # (is_expression, text)

    @property
    def is_literal(self) -> bool:
        return not any(is_expression for is_expression, _ in self.parts)


def split_template(source: str) -> Template:
    """Find each ``$`` followed by a balanced ``( ... )`` (Lua's ``%b()``: parentheses are
    counted, quotes are not); an unbalanced ``$(`` stays literal text."""
    parts: list[tuple[bool, str]] = []
    text_start = index = 0
    while (index := source.find("$(", index)) != -1:
        depth, end = 0, None
        for position in range(index + 1, len(source)):
            depth += {"(": 1, ")": -1}.get(source[position], 0)
            if depth == 0:
                end = position
                break
        if end is None:
            index += 1
            continue
        if index > text_start:
            parts.append((False, source[text_start:index]))
        parts.append((True, source[index + 2 : end]))
        text_start = index = end + 1
    if text_start < len(source):
        parts.append((False, source[text_start:]))
    return Template(source, tuple(parts))


def _lua_string(text: str) -> str:
    out = []
    for byte in text.encode("utf-8"):
        char = chr(byte)
        out.append(char if 32 <= byte < 127 and char not in '"\\' else f"\\{byte:03d}")
    return '"' + "".join(out) + '"'


def template_code(template: Template) -> str:
    """The Lua chunk that renders the template: a list of its pieces."""
    pieces = [
        f"__tostring(({text}) or '')" if is_expression else _lua_string(text) for is_expression, text in template.parts
    ]
    return "return { " + ", ".join(pieces) + " }"


def template_error(source: str) -> str | None:
    """Why the template does not compile (the request-transformer schema's check), or None."""
    template = split_template(source)
    if template.is_literal:
        return None
    return syntax_error(template_code(template), "TMP")


@functools.lru_cache(maxsize=512)
def _compiled(code: str) -> Any:
    _, helpers = runtime()
    function, error = helpers.load(code, "TMP")
    if function is None:
        raise LuaError(str(error))
    return function


@dataclass
class RequestValues:
    """What a template or a function can read of the request."""

    headers: Callable[[], Sequence[tuple[str, str]]]
    query: Callable[[], Sequence[tuple[str, object]]]
    captures: Mapping[str, str]


def template_environment(values: RequestValues) -> Any:
    """A fresh read-only template environment for one request (access.lua:506-551)."""
    lua, helpers = runtime()

    def load(key: str) -> Any:
        if key == "headers":
            return helpers.headers(lua.table_from([lua.table_from(pair) for pair in values.headers()]))
        if key == "query_params":
            return helpers.args(lua.table_from([lua.table_from(pair) for pair in values.query()]))
        if key == "uri_captures":
            return lua.table_from(dict(values.captures))
        return lua.table_from({})

    return helpers.template_env(load)


def render(source: str, environment: Any) -> str:
    """Render a template in ``environment``; raises :class:`LuaError` when its code does not
    compile or fails (Kong then answers 500)."""
    template = split_template(source)
    if template.is_literal:
        return source
    lua, helpers = runtime()
    function = helpers.bind(_compiled(template_code(template)), helpers.chunk_env(environment))
    ok, result = lua.globals().pcall(function)
    if not ok:
        raise LuaError(str(result))
    return "".join(str(result[index]) for index in range(1, len(result) + 1))


# ------------------------------------------------------------------ pre-/post-function
@dataclass
class Exit:
    """``kong.response.exit(status, body, headers)`` called by the code."""

    status: int
    body: bytes | None
    headers: list[tuple[str, str]]


def _to_python(value: Any) -> Any:
    """A Lua value (table) as JSON-able Python data."""
    if hasattr(value, "items") and not isinstance(value, dict):
        items = dict(value.items())
        if items and all(isinstance(k, int) for k in items):
            return [_to_python(items[i]) for i in sorted(items)]
        return {str(k): _to_python(v) for k, v in items.items()}
    return value


PdkFunction = Callable[..., Any]


class FunctionPlugin:
    """The compiled phase functions of one pre-/post-function configuration.

    ``kong`` in the code is one table for the plugin's lifetime (a function the code
    returns keeps it as an upvalue); its functions call whatever :meth:`run` was given for
    the current request.
    """

    def __init__(self, sources: Sequence[str], pdk_names: Sequence[str]) -> None:
        lua, helpers = runtime()
        self.current: Mapping[str, PdkFunction] = {}
        self.exits: list[Exit] = []
        tree: dict[str, Any] = {}
        for name in pdk_names:
            *parents, leaf = name.split(".")
            node = tree
            for parent in parents:
                node = node.setdefault(parent, {})
            node[leaf] = self._dispatcher(name)
        tree.setdefault("response", {})["exit"] = helpers.exiter(self._record_exit)
        env = helpers.sandbox_env(lua.table_from({"kong": self._lua_tree(tree), "ngx": lua.table_from({})}))
        self.functions: list[Any] = []
        self.first_run: list[bool] = []
        for source in sources:
            function, error = helpers.load(source, source)
            if function is None:
                raise LuaError(str(error))
            self.functions.append(helpers.bind(function, env))
            self.first_run.append(True)

    def _dispatcher(self, name: str) -> PdkFunction:
        return lambda *args: self.current[name](*args)

    def _lua_tree(self, tree: Mapping[str, Any]) -> Any:
        lua, _ = runtime()
        return lua.table_from({k: self._lua_tree(v) if isinstance(v, dict) else v for k, v in tree.items()})

    def _record_exit(self, status: Any, body: Any = None, headers: Any = None) -> None:
        data = _to_python(body)
        payload = None if data is None else data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
        pairs = [(str(k), str(v)) for k, v in (_to_python(headers) or {}).items()]
        self.exits.append(Exit(int(status), None if payload is None else payload.encode(), pairs))

    def run(self, pdk: Mapping[str, PdkFunction]) -> Exit | None:
        """Run the functions in order for one request; stop at ``kong.response.exit``.
        Raises :class:`LuaError` when the code fails (Kong then answers 500)."""
        _, helpers = runtime()
        self.current, self.exits = pdk, []
        for index, function in enumerate(self.functions):
            ok, error, result = helpers.run(function)
            if ok and error is None and self.first_run[index] and helpers.is_function(result):
                self.functions[index] = result  # a chunk that returns its per-request function
                ok, error, _ = helpers.run(result)
            self.first_run[index] = False
            if not ok:
                raise LuaError(str(error))
            if self.exits:
                return self.exits[0]
        return None
