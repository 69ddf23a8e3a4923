"""Requests and replies on the wire: parsing, rendering, and Kong's own error bodies."""

from __future__ import annotations

import http
import json
import time
from dataclasses import dataclass, field

from .settings import Settings

Headers = list[tuple[str, str]]
JSON_TYPE = "application/json; charset=utf-8"  # MIME_TYPES.default (kong/tools/http.lua)


@dataclass
class Request:
    """One client request, as the plugins see and change it. Like nginx's ``headers_in``
    there is one header list: ``kong.service.request.*`` edits it and ``kong.request.*``
    then reads the edited values."""

    method: str
    path: str
    query: str
    version: str
    headers: Headers
    client_ip: str
    server_port: int
    upstream_path: str | None = None  # set by request-transformer's replace.uri

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)

    def header_values(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def remove_header(self, name: str) -> None:
        self.headers = [(k, v) for k, v in self.headers if k.lower() != name.lower()]

    def set_header(self, name: str, value: str | list[str]) -> None:
        """``ngx.req.set_header``: the first header of that name keeps its place and its
        spelling and takes the value, the others go; an empty value removes the header and
        never creates one; a list sets one header per value
        (openresty/lua-nginx-module:src/ngx_http_lua_headers_in.c, set_header_helper)."""
        values = [v for v in (value if isinstance(value, list) else [value]) if v != ""]
        spots = [i for i, (k, _) in enumerate(self.headers) if k.lower() == name.lower()]
        if spots and values:
            first = spots[0]
            kept = [h for i, h in enumerate(self.headers) if i not in spots or i == first]
            position = kept.index(self.headers[first])
            key = self.headers[first][0]
            kept[position : position + 1] = [(key, v) for v in values]
            self.headers = kept
            return
        self.remove_header(name)
        self.headers.extend((name, v) for v in values)

    @property
    def host(self) -> str:
        """The Host header without its port (nginx's ``$host``)."""
        value = (self.header("host") or "").lower()
        if value.startswith("["):
            return value[1 : value.find("]")]
        return value.rsplit(":", 1)[0]

    @property
    def line(self) -> str:
        query = "?" + self.query if self.query else ""
        return f"{self.method} {self.path}{query} {self.version}"


@dataclass
class Reply:
    """A response Kong makes itself (plugin exits, router and balancer errors)."""

    status: int
    body: bytes
    headers: Headers = field(default_factory=list)
    content_type: str = JSON_TYPE


def exit_message(status: int, text: str, *headers: tuple[str, str]) -> Reply:
    """``kong.response.exit(status, { message = text })``: compact cjson."""
    body = json.dumps({"message": text}, separators=(",", ":")).encode()
    return Reply(status, body, list(headers))


def error_message(settings: Settings, status: int, text: str, request_id: str, *headers: tuple[str, str]) -> Reply:
    """``kong.response.error`` and nginx errors (kong/error_handlers.lua) with the JSON
    template: 2.8 ``{"message"}`` (Kong/kong@2.8.1:kong/tools/utils.lua:1297), 3.x adds
    ``request_id`` (Kong/kong@3.9.3:kong/tools/http.lua:409-413)."""
    if settings.v3:
        body = f'{{\n  "message":"{text}",\n  "request_id":"{request_id}"\n}}'
    else:
        body = f'{{\n  "message":"{text}"\n}}'
    return Reply(status, body.encode(), list(headers))


def parse_request(head: bytes, client_ip: str, server_port: int) -> Request:
    """The request line and headers; raises ValueError on anything malformed."""
    lines = head.decode("latin-1").split("\r\n")
    method, target, version = lines[0].split(" ")
    if not version.startswith("HTTP/1."):
        raise ValueError("unsupported protocol")
    if target.startswith(("http://", "https://")):  # absolute-form
        target = "/" + target.split("/", 3)[3] if target.count("/") >= 3 else "/"
    path, _, query = target.partition("?")
    headers = [(k.strip(), v.strip()) for k, v in (x.split(":", 1) for x in lines[1:] if x)]
    return Request(method, path, query, version, headers, client_ip, server_port)


def render_head(first_line: str, headers: Headers) -> bytes:
    lines = [first_line] + [f"{k}: {v}" for k, v in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def reason(status: int) -> str:
    if status == 494:  # nginx's own status, unknown to the http module
        return "Request Header Or Cookie Too Large"
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def http_date() -> str:
    return time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime())
