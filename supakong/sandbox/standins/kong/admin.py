"""Kong's Admin API, DB-less subset: ``POST /config``, ``GET /status`` and ``GET /``.

It listens where ``admin_listen`` says (default ``127.0.0.1:8001``, loopback inside the
container; ``off`` disables it), like Kong/kong@{2.8.1,3.9.3}:kong/templates/kong_defaults.lua.

``POST /config`` (Kong/kong@{2.8.1,3.9.1}:kong/api/routes/config.lua):

- the configuration comes as the raw body (``text/yaml``; 3.9 also ``application/yaml``),
  as a ``config`` field (JSON or form-encoded) or as a JSON object with ``_format_version``;
  other content types get 415;
- ``check_hash=1`` answers 304 without a body when md5 of the posted string equals the
  current hash;
- a refused configuration answers 400 ``{"code":14,"name":"invalid declarative
  configuration","message":"declarative config is invalid: {…}","fields":{…}}`` and the
  running configuration stays; 3.x adds ``flattened_errors`` with ``flatten_errors=1``;
- a loaded one answers 201 with the entities (credentials included, as in Kong) and is
  swapped in with :meth:`Proxy.swap`, so open connections and WebSockets stay. 2.8.1 answers
  only after every worker flipped; 3.x answers before the workers rebuild their routers
  (``kong/db/declarative/import.lua``), which the stand-in plays by swapping a moment later.

``GET /status`` carries ``configuration_hash`` in DB-less mode on both versions: md5 of the
posted string; after loading the file at start, 3.x reports md5 of the file and 2.8.1 32
zeros (the bug fixed in 3.2.0, Kong/kong#9911).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from .http import Reply, http_date, parse_request, reason, render_head
from .logs import access_log, log_error
from .model import build_gateway
from .proxy import Proxy
from .schema import ErrTree
from .settings import Settings
from .validation import check_declarative_doc, check_declarative_text

EMPTY_HASH = "0" * 32
MAX_BODY = 10 * 1024 * 1024  # nginx_admin_client_max_body_size = 10m
#: 3.x answers 201 before the workers rebuild; this is how long the stand-in's "workers" take.
V3_REBUILD_DELAY = 0.05
SINGULAR = {"services": "service", "routes": "route", "consumers": "consumer", "plugins": "plugin"}


@dataclass
class LoadedConfig:
    """What ``GET /status`` reports about the configuration in use."""

    hash: str


def file_hash(settings: Settings, text: str | None) -> str:
    """The hash after loading the declarative file at start: md5 on 3.x, zeros on 2.8.1."""
    if text is None:
        return EMPTY_HASH
    return hashlib.md5(text.encode()).hexdigest() if settings.v3 else EMPTY_HASH


def lua_literal(value: Any) -> str:
    """Penlight's ``pretty.write(t, "")``, how Kong prints the error tree in ``message``."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if not isinstance(value, dict | list):
        return str(value)
    items = dict(enumerate(value, 1)) if isinstance(value, list) else value
    array_len = 0
    while array_len + 1 in items:
        array_len += 1
    parts = [lua_literal(items[i]) for i in range(1, array_len + 1)]
    others = sorted((k for k in items if not (isinstance(k, int) and 1 <= k <= array_len)), key=str)
    for key in others:
        if isinstance(key, int):
            label = f"[{key}]"
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            label = key
        else:
            label = f"[{json.dumps(key)}]"
        parts.append(f"{label}={lua_literal(items[key])}")
    return "{" + ",".join(parts) + "}"


def json_tree(value: Any) -> Any:
    """The error tree as cjson encodes it: entry numbers become (sparse) arrays."""
    if isinstance(value, dict):
        if value and all(isinstance(k, int) for k in value):
            return [json_tree(value.get(i)) for i in range(1, max(value) + 1)]
        return {str(k): json_tree(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_tree(v) for v in value]
    return value


def flatten_errors(doc: Any, errs: ErrTree) -> list[dict[str, Any]]:
    """3.x ``flattened_errors`` for top-level entities (Kong/kong@3.9.1:kong/db/errors.lua)."""
    flat: list[dict[str, Any]] = []
    for key, entries in errs.items():
        if key not in SINGULAR or not isinstance(entries, dict) or not isinstance(doc.get(key), list):
            continue
        for index, entry_errs in entries.items():
            entity = doc[key][index - 1] if isinstance(index, int) and index <= len(doc[key]) else {}
            entity = entity if isinstance(entity, dict) else {}
            errors = [
                {"type": "field", "field": f, "message": lua_literal(m) if not isinstance(m, str) else m}
                for f, m in (entry_errs.items() if isinstance(entry_errs, dict) else [])
            ]
            if isinstance(entry_errs, str):
                errors = [{"type": "entity", "message": entry_errs}]
            flat.append(
                {
                    "entity_type": SINGULAR[key],
                    "entity_name": entity.get("name") or entity.get("username"),
                    "entity_id": entity.get("id"),
                    "entity_tags": entity.get("tags"),
                    "errors": errors,
                    "entity": entity,
                }
            )
    return flat


def json_reply(status: int, value: Any, *headers: tuple[str, str]) -> Reply:
    return Reply(status, json.dumps(value, separators=(",", ":")).encode(), list(headers))


def message(status: int, text: str, *headers: tuple[str, str]) -> Reply:
    return json_reply(status, {"message": text}, *headers)


class AdminApi:
    """The Admin API of one Kong node; ``proxy`` is the node's proxy, swapped on a load."""

    def __init__(self, settings: Settings, proxy: Proxy, loaded: LoadedConfig) -> None:
        self.settings, self.proxy, self.loaded = settings, proxy, loaded
        self.started = time.time()
        self.requests = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer, sock = writer.get_extra_info("peername"), writer.get_extra_info("sockname")
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 60)
            req = parse_request(head, peer[0], sock[1])
            length = int(req.header("content-length") or 0)
            if length > MAX_BODY:
                reply = message(413, "Request Entity Too Large")
            else:
                body = await reader.readexactly(length) if length else b""
                reply = self.route(req.method, req.path, req.query, req.header("content-type") or "", body)
            self.requests += 1
            writer.write(self.reply_bytes(reply))
            await writer.drain()
            access_log(req, req.line, reply.status, len(reply.body))
        except (OSError, ValueError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        except Exception as exc:  # a stand-in bug must not look like a hung Admin API
            log_error("error", f"stand-in admin failure: {exc!r}")
        finally:
            writer.close()

    def reply_bytes(self, reply: Reply) -> bytes:
        headers = [("Date", http_date()), ("Content-Length", str(len(reply.body))), ("Connection", "close")]
        if reply.status != 304:
            headers.append(("Content-Type", reply.content_type))
        headers += reply.headers + [("Access-Control-Allow-Origin", "*"), ("Server", self.settings.server_token)]
        body = b"" if reply.status == 304 else reply.body
        return render_head(f"HTTP/1.1 {reply.status} {reason(reply.status)}", headers) + body

    def route(self, method: str, path: str, query: str, content_type: str, body: bytes) -> Reply:
        handlers: dict[str, dict[str, Callable[[], Reply]]] = {
            "/": {"GET": self.root},
            "/status": {"GET": self.status},
            "/config": {"POST": lambda: self.post_config(query, content_type, body)},
        }
        methods = handlers.get(path.rstrip("/") or "/")
        if methods is None:
            return message(404, "Not found")
        if method not in methods:
            return message(405, "Method not allowed")
        return methods[method]()

    def root(self) -> Reply:
        return json_reply(
            200,
            {
                "tagline": "Welcome to kong",
                "version": self.settings.version_text,
                "hostname": socket.gethostname(),
                "configuration": {"database": "off", "declarative_config": self.settings.declarative_config},
            },
        )

    def status(self) -> Reply:
        active = len(asyncio.all_tasks())
        return json_reply(
            200,
            {
                "database": {"reachable": True},
                "memory": {
                    "workers_lua_vms": [{"pid": os.getpid(), "http_allocated_gc": "0.00 MiB"}],
                    "lua_shared_dicts": {},
                },
                "server": {
                    "connections_active": active,
                    "connections_reading": 0,
                    "connections_writing": 1,
                    "connections_waiting": max(active - 1, 0),
                    "connections_accepted": self.requests + 1,
                    "connections_handled": self.requests + 1,
                    "total_requests": self.requests + 1,
                },
                "configuration_hash": self.loaded.hash,
            },
        )

    def config_source(self, content_type: str, body: bytes) -> tuple[str | dict[str, Any] | None, Reply | None]:
        """The posted configuration: a string, a JSON object, or None; or a refusal."""
        media = content_type.split(";", 1)[0].strip().lower()
        yaml_types = {"text/yaml"} | ({"application/yaml"} if self.settings.v3 else set())
        if media in yaml_types or (not media and body):
            return body.decode("utf-8", "replace"), None
        if media == "application/json":
            try:
                value = json.loads(body or b"{}")
            except ValueError:
                return None, message(400, "Cannot parse JSON body")
            if isinstance(value, dict) and isinstance(value.get("config"), str):
                return value["config"], None
            if isinstance(value, dict) and "_format_version" in value:
                return value, None
            return None, None
        if media == "application/x-www-form-urlencoded":
            fields = parse_qs(body.decode("utf-8", "replace"))
            return (fields["config"][0] if "config" in fields else None), None
        return None, message(415, "Unsupported Content-Type")

    def post_config(self, query: str, content_type: str, body: bytes) -> Reply:
        source, refusal = self.config_source(content_type, body)
        if refusal is not None:
            return refusal
        if source is None or source == "":
            return message(400, "expected a declarative configuration")
        params = parse_qs(query)
        if isinstance(source, str):
            posted_hash = hashlib.md5(source.encode()).hexdigest()
            if params.get("check_hash", [""])[0] in ("1", "true") and posted_hash == self.loaded.hash:
                return Reply(304, b"")
            doc, errs = check_declarative_text(source, self.settings)
        else:
            posted_hash = hashlib.md5(json.dumps(source, sort_keys=True).encode()).hexdigest()
            doc, errs = check_declarative_doc(source, self.settings)
        if doc is None:
            return self.refusal(source, errs, params)
        self.load(doc, posted_hash)
        return json_reply(201, doc)

    def refusal(self, source: Any, errs: ErrTree | str, params: dict[str, list[str]]) -> Reply:
        fields: ErrTree = {"error": errs} if isinstance(errs, str) else errs
        body: dict[str, Any] = {
            "code": 14,
            "name": "invalid declarative configuration",
            "message": f"declarative config is invalid: {lua_literal(fields)}",
            "fields": json_tree(fields),
        }
        flatten = params.get("flatten_errors", [""])[0].lower() in ("1", "true", "on", "yes")
        if self.settings.v3 and flatten:
            doc = source if isinstance(source, dict) else {}
            if isinstance(source, str):
                import yaml

                try:
                    doc = yaml.safe_load(source) or {}
                except yaml.YAMLError:
                    doc = {}
            body["flattened_errors"] = flatten_errors(doc if isinstance(doc, dict) else {}, fields)
        return json_reply(400, body)

    def load(self, doc: Any, posted_hash: str) -> None:
        """Commit the new configuration and swap it into the proxy (open tunnels stay)."""
        gateway = build_gateway(doc, legacy_paths=not self.settings.v3)
        self.loaded.hash = posted_hash
        if self.settings.v3:
            asyncio.get_running_loop().call_later(V3_REBUILD_DELAY, self.swap, gateway)
        else:
            self.swap(gateway)

    def swap(self, gateway: Any) -> None:
        self.proxy.swap(gateway)
        log_error("info", "[kong] declarative reconfigure on worker #0, context: ngx.timer")
