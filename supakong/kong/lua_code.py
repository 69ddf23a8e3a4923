"""Lua in a Kong config: request-transformer ``$(...)`` templates and pre-/post-function code.

Kong compiles both with LuaJIT; so does this module (``lupa``, loaded on first use), so a
syntax error is reported as Kong would see it. Templates follow request-transformer: a
``$`` directly followed by a balanced ``( ... )`` is a Lua expression, the rest is text, and
an unbalanced ``$(`` is kept as text (Kong/kong@3.9.3:kong/plugins/request-transformer/access.lua:74-108,
Penlight's pl.template with its ``#`` escape disabled). The expression can read only
``headers``, ``query_params``, ``uri_captures`` and ``shared`` (access.lua:506-551).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any

TEMPLATE_NAMES = frozenset({"headers", "query_params", "uri_captures", "shared", "type"})
_LUA_KEYWORDS = frozenset(
    "and break do else elseif end false for function if in local nil not or repeat return then true until while".split()
)


@functools.lru_cache(maxsize=1)
def _lua() -> Any:
    try:
        from lupa import luajit21 as lupa_module
    except ImportError:  # a lupa build without LuaJIT: Lua 5.1 parses the same
        from lupa import lua51 as lupa_module
    runtime = lupa_module.LuaRuntime(register_eval=False, register_builtins=False)
    return runtime.eval("function(code, name) local f, e = loadstring(code, name); return e end")


def lua_syntax_error(code: str) -> str | None:
    """LuaJIT's message when ``code`` does not compile, or None."""
    error = _lua()(code, "code")
    return None if error is None else str(error)


@dataclass(frozen=True)
class Template:
    """A request-transformer value split into literal text and ``$(...)`` expressions."""

    expressions: tuple[str, ...]
    unbalanced: bool  # a `$(` with no closing parenthesis, sent as text


def split_template(value: str) -> Template:
    """Find the ``$( ... )`` expressions of a value, the way ``%b()`` counts parentheses."""
    expressions: list[str] = []
    unbalanced = False
    index = 0
    while (index := value.find("$(", index)) != -1:
        depth, end = 0, None
        for position in range(index + 1, len(value)):
            depth += {"(": 1, ")": -1}.get(value[position], 0)
            if depth == 0:
                end = position
                break
        if end is None:
            unbalanced = True
            index += 1
            continue
        expressions.append(value[index + 2 : end])
        index = end + 1
    return Template(tuple(expressions), unbalanced)


def expression_error(expression: str) -> str | None:
    """Why the template expression does not compile, or None."""
    return lua_syntax_error(f"return tostring(({expression}) or '')")


def unknown_names(expression: str) -> list[str]:
    """Names the expression reads as tables but the template environment does not have
    (``header.apikey`` instead of ``headers.apikey``)."""
    without_strings = re.sub(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"", "''", expression)
    used = re.findall(r"(?<![\w.:])([A-Za-z_]\w*)\s*(?=[.\[])", without_strings)
    return sorted({name for name in used if name not in TEMPLATE_NAMES and name not in _LUA_KEYWORDS})
