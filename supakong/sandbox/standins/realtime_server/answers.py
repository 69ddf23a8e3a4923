"""Plain HTTP answers (health, ping, refused handshakes) and the Phoenix-like connection
class that answers non-GET requests instead of dropping them."""

from __future__ import annotations

import http
import json
import logging
from email.utils import formatdate
from typing import Any

from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.exceptions import InvalidMessage
from websockets.http11 import Response

from .settings import log

SOCKET_PATHS = frozenset({"/socket/websocket", "/socket/websocket/"})


def http_response(status: int, body: bytes = b"", content_type: str | None = None) -> Response:
    """An HTTP answer for websockets' ``process_request`` (it closes the connection after)."""
    headers = Headers([("date", formatdate(usegmt=True)), ("content-length", str(len(body)))])
    headers["cache-control"] = "max-age=0, private, must-revalidate"
    if content_type:
        headers["content-type"] = content_type
    return Response(status, http.HTTPStatus(status).phrase, headers, body)


def json_response(status: int, body: object) -> Response:
    """A JSON answer, encoded like Phoenix's Jason (no spaces)."""
    data = json.dumps(body, separators=(",", ":")).encode()
    return http_response(status, data, "application/json; charset=utf-8")


def raw_http_response(status: int, body: bytes = b"", content_type: str | None = None) -> bytes:
    """The bytes of a complete HTTP/1.1 answer, for requests websockets cannot parse."""
    response = http_response(status, body, content_type)
    response.headers["connection"] = "close"
    head = f"HTTP/1.1 {status} {response.reason_phrase}\r\n"
    lines = "".join(f"{name}: {value}\r\n" for name, value in response.headers.raw_items())
    return (head + lines + "\r\n").encode() + body


NOT_FOUND_BODY = json.dumps({"errors": {"detail": "Not Found"}}).encode()


class PhoenixMethodsConnection(ServerConnection):
    """Answers non-GET requests the way Phoenix does, instead of dropping them.

    websockets' request parser accepts only GET and closes the TCP connection without a word
    on anything else. Phoenix answers 400 to other methods on the socket path and 404
    elsewhere, so this class reads the request line first and answers those itself.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._state = "request-line"  # then "websocket" (hand over) or "answered" (drop input)
        self._head = b""

    def data_received(self, data: bytes) -> None:
        if self._state == "websocket":
            super().data_received(data)
            return
        if self._state == "answered":
            return
        self._head += data
        if b"\n" not in self._head and len(self._head) < 8192:
            return  # wait for the whole request line
        head, self._head = self._head, b""
        method, _, rest = head.partition(b" ")
        if method == b"GET":
            self._state = "websocket"
            super().data_received(head)
            return
        self._state = "answered"
        path = rest.split(b" ", 1)[0].split(b"?", 1)[0].decode("latin-1")
        if path in SOCKET_PATHS:
            self.transport.write(raw_http_response(400))
        else:
            self.transport.write(raw_http_response(404, NOT_FOUND_BODY, "application/json; charset=utf-8"))
        self.transport.close()


class WebsocketsLogBridge(logging.Handler):
    """Shows websockets' own warnings in our log format, without a traceback per TCP probe."""

    def emit(self, record: logging.LogRecord) -> None:
        exc = record.exc_info[1] if record.exc_info else None
        # A port probe or healthcheck that connects and leaves ends up here; Bandit is silent.
        if isinstance(exc, InvalidMessage) and isinstance(exc.__cause__, EOFError):
            return
        detail = f": {exc!r}" if exc else ""
        level = "error" if record.levelno >= logging.ERROR else "warning"
        log(level, f"websockets: {record.getMessage()}{detail}")
