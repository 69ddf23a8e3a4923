"""request-transformer's access phase, its ``$(...)`` Lua templates evaluated for real.

Order and semantics follow Kong/kong@3.9.3:kong/plugins/request-transformer/access.lua:
the uri (replace.uri), the method, the headers (remove, rename, replace, add, append on a
copy of the request's headers, then set), then the querystring (the same five on a copy of
the query arguments, then ``kong.service.request.set_query``, which writes the arguments
sorted, each encoded like ``ngx.encode_args``). Each ``name:value`` entry splits at the
first run of colons; an empty value changes nothing. A template that fails makes Kong
answer 500. Body transformations are not implemented (Supabase's file has none).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import quote, unquote_plus

from . import lua
from .http import Request
from .model import Doc

QueryArg = tuple[str, Any]  # a value is a string, True (a flag without '='), or a list
HeaderValue = str | list[str]


class TemplateFailure(RuntimeError):
    """A template did not compile or failed while rendering (Kong: 500)."""


def parse_query(query: str) -> list[QueryArg]:
    """``ngx.req.get_uri_args``: decoded pairs in order; a flag without '=' is True."""
    args: list[QueryArg] = []
    for part in query.split("&"):
        if not part:
            continue
        name, equals, value = part.partition("=")
        args.append((unquote_plus(name), unquote_plus(value) if equals else True))
    return args


def encode_query(args: dict[str, Any]) -> str:
    """``kong.service.request.set_query``: each argument encoded alone, then sorted
    (Kong/kong@3.9.3:kong/pdk/service/request.lua:44-63, 253-266)."""
    pieces = []
    for name, value in args.items():
        values = value if isinstance(value, list) else [value]
        encoded = [
            _escape(name) if item is True else f"{_escape(name)}={_escape(str(item))}"
            for item in values
            if item is not False and item is not None
        ]
        if encoded:
            pieces.append("&".join(encoded))
    return "&".join(sorted(pieces))


def _escape(text: str) -> str:
    return quote(text, safe="-_.~")


def _entries(conf: Doc, op: str, part: str) -> list[str]:
    section = conf.get(op) or {}
    return [str(entry) for entry in section.get(part) or []]


def _split(entry: str) -> tuple[str, str]:
    """``pair:match("^([^:]+):*(.-)$")``."""
    name, _, rest = entry.partition(":")
    return name, rest.lstrip(":")


class Transformer:
    """One request's transformation: the template environment is built once, lazily."""

    def __init__(self, request: Request, captures: dict[str, str]) -> None:
        self.request = request
        self.original_query = parse_query(request.query)
        values = lua.RequestValues(
            headers=lambda: list(request.headers),
            query=lambda: list(self.original_query),
            captures=captures,
        )
        self.environment: Any = None
        self.values = values

    def render(self, value: str) -> str | None:
        """The entry's value rendered; None for an empty value (the entry does nothing)."""
        if value == "":
            return None
        if self.environment is None:
            self.environment = lua.template_environment(self.values)
        try:
            return lua.render(value, self.environment)
        except lua.LuaError as exc:
            raise TemplateFailure(f"[request-transformer] failed to render the template {value}, error:{exc}") from None

    def run(self, conf: Doc) -> None:
        self.uri(conf)
        if conf.get("http_method"):
            self.request.method = str(conf["http_method"]).upper()
        self.headers(conf)
        self.querystring(conf)

    def uri(self, conf: Doc) -> None:
        template = (conf.get("replace") or {}).get("uri")
        if template:
            rendered = self.render(str(template))
            if rendered:
                self.request.upstream_path = rendered

    def headers(self, conf: Doc) -> None:
        # lower-case name -> (the name to send, value or values), like ngx.req.get_headers()
        headers: dict[str, tuple[str, HeaderValue]] = {}
        for name, value in self.request.headers:
            key = name.lower()
            if key in headers:
                shown, old = headers[key]
                headers[key] = (shown, [*(old if isinstance(old, list) else [old]), value])
            else:
                headers[key] = (name, value)
        headers.pop("host", None)
        removed: set[str] = set()
        for entry in _entries(conf, "remove", "headers"):
            name = _split(entry)[0].lower()
            if headers.pop(name, None) is not None:
                removed.add(name)
        for entry in _entries(conf, "rename", "headers"):
            old_name, new_name = _split(entry)
            if new_name and old_name.lower() in headers and old_name.lower() != new_name.lower():
                headers[new_name.lower()] = (new_name, headers.pop(old_name.lower())[1])
                removed.add(old_name.lower())
        self._edit(headers, conf, "replace", lambda key: key in headers or key == "host")
        self._edit(headers, conf, "add", lambda key: key not in headers and key != "host")
        for entry in _entries(conf, "append", "headers"):
            name, template = _split(entry)
            previous = headers.get(name.lower(), (name, []))[1]
            appended = [*(previous if isinstance(previous, list) else [previous]), self.render(template) or ""]
            headers[name.lower()] = (name, appended)
        for name in removed:
            self.request.remove_header(name)
        for shown, current in headers.values():  # kong.service.request.set_headers
            self.request.set_header(shown, current)

    def _edit(
        self, headers: dict[str, tuple[str, HeaderValue]], conf: Doc, op: str, applies: Callable[[str], bool]
    ) -> None:
        for entry in _entries(conf, op, "headers"):
            name, template = _split(entry)
            if not applies(name.lower()):
                continue
            rendered = self.render(template)
            if rendered is not None:
                headers[name.lower()] = (headers.get(name.lower(), (name, ""))[0], rendered)

    def querystring(self, conf: Doc) -> None:
        if not any(_entries(conf, op, "querystring") for op in ("remove", "rename", "replace", "add", "append")):
            return
        args: dict[str, Any] = {}
        for name, value in self.original_query:
            old = args.get(name)
            args[name] = value if old is None else [*(old if isinstance(old, list) else [old]), value]
        for entry in _entries(conf, "remove", "querystring"):
            args.pop(_split(entry)[0], None)
        for entry in _entries(conf, "rename", "querystring"):
            old_name, new_name = _split(entry)
            if new_name and old_name in args and old_name != new_name:
                args[new_name] = args.pop(old_name)
        self._query_edit(args, conf, "replace", lambda n: n in args)
        self._query_edit(args, conf, "add", lambda n: n not in args)
        for entry in _entries(conf, "append", "querystring"):
            name, template = _split(entry)
            old = args.get(name)
            args[name] = [*([] if old is None else old if isinstance(old, list) else [old]), self.render(template)]
        self.request.query = encode_query(args)

    def _query_edit(self, args: dict[str, Any], conf: Doc, op: str, applies: Callable[[str], bool]) -> None:
        for entry in _entries(conf, op, "querystring"):
            name, template = _split(entry)
            if applies(name):
                args[name] = self.render(template)


def transform(request: Request, conf: Doc, captures: Sequence[tuple[str, str]] = ()) -> None:
    """Apply one request-transformer configuration; raises :class:`TemplateFailure`."""
    Transformer(request, dict(captures)).run(conf)
