"""``supakong init --fix``: the known remedies for a hand-edited realtime route, applied to
the user's own file as text: only the offending lines (or list items) change, comments and
layout stay.

Each remedy says what it changed, why, and where that is written down (public sources):

- ``ws``/``wss`` in route ``protocols`` are Kong Enterprise's: Kong OSS refuses the file and
  does not start (``Kong/kong@2.8.1:kong/constants.lua`` PROTOCOLS); OSS proxies WebSocket
  upgrades on plain http/https routes (Kong docs, "Proxy WebSocket traffic",
  https://docs.konghq.com/gateway/latest/how-kong-works/routing-traffic/).
- ``preserve_host: true`` on the realtime route: Realtime takes its tenant from the first
  label of the Host Kong sends (``supabase/realtime lib/realtime/database.ex``
  ``get_external_id``), so the browser's Host gives "Tenant not found".
- ``Sec-WebSocket-*`` in cors ``headers``: forbidden request headers a page never sends in
  a preflight (https://developer.mozilla.org/docs/Glossary/Forbidden_header_name); an
  explicit list replaces the default echo and blocks ``apikey``/``authorization``
  preflights (``Kong/kong@2.8.1:kong/plugins/cors/handler.lua``).
- key-auth ``anonymous`` on the realtime route lets missing and invalid keys through as
  that consumer (``Kong/kong@2.8.1:kong/plugins/key-auth/handler.lua``).
- An upstream host whose first label is not Realtime's tenant: pointed at a name of the
  Realtime container that starts with the tenant, when it has one.

Pure: text in, text and the list of what was done out.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from ..kong.entities import Entities, Entity, collect_entities, effective_upstream, parent_of, plugins_applying_to
from ..kong.pitfalls import realtime_routes
from ..kong.yaml_source import ScalarSpan, parse_source

OSS_ONLY_PROTOCOLS = ("ws", "wss")
_WEBSOCKET_HEADER = re.compile(r"(?i)sec-websocket-")

WS_WHY = (
    "Kong OSS has no ws/wss route protocols and refuses the file (Kong/kong@2.8.1:kong/constants.lua);"
    " it proxies WebSocket upgrades on http/https routes"
    " (https://docs.konghq.com/gateway/latest/how-kong-works/routing-traffic/)"
)
PRESERVE_HOST_WHY = (
    "Realtime takes its tenant from the first label of the Host Kong sends, and preserve_host sends the"
    " browser's instead: 'Tenant not found' (supabase/realtime lib/realtime/database.ex, get_external_id)"
)
CORS_WHY = (
    "Sec-WebSocket-* are forbidden headers no browser preflight carries"
    " (https://developer.mozilla.org/docs/Glossary/Forbidden_header_name), and an explicit cors headers"
    " list stops echoing apikey/authorization (Kong/kong@2.8.1:kong/plugins/cors/handler.lua)"
)
ANONYMOUS_WHY = (
    "with anonymous, a missing or invalid apikey passes as that consumer, hiding a stale key"
    " (Kong/kong@2.8.1:kong/plugins/key-auth/handler.lua)"
)
UPSTREAM_WHY = (
    "Realtime takes its tenant from the first label of the Host Kong sends"
    " (supabase/realtime lib/realtime/database.ex, get_external_id)"
)


@dataclass(frozen=True)
class Remedy:
    """One thing ``--fix`` did (or could not do): where, what, why."""

    where: str
    what: str
    why: str
    applied: bool = True

    def as_line(self) -> str:
        """``fixed services[1].routes[0]: removed preserve_host: true (because …)``."""
        verb = "fixed" if self.applied else "NOT fixed"
        return f"{verb} {self.where}: {self.what} ({self.why})"


@dataclass(frozen=True)
class FixContext:
    """What the remedies need to know about the host."""

    tenant: str = "realtime-dev"
    realtime_names: tuple[str, ...] = ()  # the Realtime container's name and network aliases
    enterprise: bool = False


@dataclass(frozen=True)
class Fixed:
    """The text after the remedies, and what they did."""

    text: str
    remedies: tuple[Remedy, ...] = field(default=())


class _Document:
    """The text with its YAML positions, and line-level edits collected before applying."""

    def __init__(self, text: str) -> None:
        self.text = text
        parsed = parse_source(text)
        self.ok = not parsed.failed and isinstance(parsed.doc, Mapping)
        self.entities: Entities = collect_entities(parsed.doc) if self.ok else Entities(())  # type: ignore[arg-type]
        self.spans = parsed.spans
        self.line_starts = [0] + [i + 1 for i, ch in enumerate(text) if ch == "\n"]
        self.deleted: set[int] = set()
        self.replaced: dict[int, str] = {}

    def line_of(self, offset: int) -> int:
        low, high = 0, len(self.line_starts) - 1
        while low < high:
            middle = (low + high + 1) // 2
            if self.line_starts[middle] <= offset:
                low = middle
            else:
                high = middle - 1
        return low

    def line(self, number: int) -> str:
        start = self.line_starts[number]
        end = self.line_starts[number + 1] if number + 1 < len(self.line_starts) else len(self.text)
        return self.replaced.get(number, self.text[start:end])

    def spans_at(self, path: str) -> list[ScalarSpan]:
        return [s for s in self.spans if s.path == path]

    def subtree_end(self, path: str) -> int:
        """The last line of ``path``'s value (the key's own line for a scalar)."""
        last = max(
            (s.end for s in self.spans if s.path == path or s.path.startswith((path + ".", path + "["))), default=0
        )
        return self.line_of(max(last - 1, 0))

    def delete_key(self, path: str) -> bool:
        """Delete the lines of a mapping key and its value; False if it is not alone on them."""
        spans = self.spans_at(path)
        if not spans:
            return False
        first = self.line_of(spans[0].start)
        if not self.line(first).lstrip().startswith(self.text[spans[0].start : spans[0].end]):
            return False  # a flow mapping, or the first key of a list item: not a line of its own
        self.deleted.update(range(first, self.subtree_end(path) + 1))
        return True

    def delete_items(self, sequence: str, indexes: Sequence[int], count: int) -> bool:
        """Remove items of a block or flow sequence; with none left, its key."""
        if len(indexes) == count:
            return self.delete_key(sequence)
        items = [self.spans_at(f"{sequence}[{i}]") for i in range(count)]
        if any(len(found) != 1 for found in items):
            return False  # items that are not plain scalars
        key_line = self.line_of(self.spans_at(sequence)[0].start) if self.spans_at(sequence) else -1
        if self.line_of(items[0][0].start) == key_line:
            return self._rewrite_flow(items, set(indexes))
        for index in indexes:
            self.deleted.add(self.line_of(items[index][0].start))
        return True

    def _rewrite_flow(self, items: list[list[ScalarSpan]], drop: set[int]) -> bool:
        number = self.line_of(items[0][0].start)
        if self.line_of(items[-1][0].end) != number:
            return False  # a flow sequence over several lines
        line, start = self.line(number), self.line_starts[number]
        opening = line.rfind("[", 0, items[0][0].start - start)
        closing = line.find("]", items[-1][0].end - start)
        if opening < 0 or closing < 0:
            return False
        kept = [self.text[s[0].start : s[0].end] for i, s in enumerate(items) if i not in drop]
        self.replaced[number] = line[: opening + 1] + ", ".join(kept) + line[closing:]
        return True

    def replace_in_scalar(self, path: str, old: str, new: str) -> bool:
        spans = self.spans_at(path)
        if not spans:
            return False
        value = spans[-1]
        number = self.line_of(value.start)
        if self.line_of(value.end) != number:
            return False
        line, start = self.line(number), self.line_starts[number]
        scalar = line[value.start - start : value.end - start]
        if old not in scalar:
            return False
        self.replaced[number] = line[: value.start - start] + scalar.replace(old, new, 1) + line[value.end - start :]
        return True

    def result(self) -> str:
        return "".join(self.line(n) for n in range(len(self.line_starts)) if n not in self.deleted)


def apply_remedies(text: str, context: FixContext) -> Fixed:
    """Apply every remedy that applies (see the module doc); the text is unchanged when
    none does, or when it is not a YAML mapping Kong could load."""
    document = _Document(text)
    if not document.ok:
        return Fixed(text)
    remedies: list[Remedy] = []
    routes = realtime_routes(document.entities)
    steps: tuple[Callable[[_Document, list[Entity], FixContext], Iterable[Remedy]], ...] = (
        _websocket_protocols,
        _preserve_host,
        _websocket_cors_headers,
        _anonymous,
        _upstream_tenant,
    )
    for step in steps:
        remedies.extend(step(document, routes, context))
    return Fixed(document.result(), tuple(remedies))


def _websocket_protocols(doc: _Document, realtime: list[Entity], context: FixContext) -> Iterable[Remedy]:
    if context.enterprise:
        return
    for route in doc.entities.of_kind("routes"):
        protocols = route.get("protocols")
        if not isinstance(protocols, list):
            continue
        drop = [i for i, p in enumerate(protocols) if p in OSS_ONLY_PROTOCOLS]
        if not drop:
            continue
        where = f"{route.path}.protocols"
        removed = ", ".join(str(protocols[i]) for i in drop)
        ok = doc.delete_items(where, drop, len(protocols))
        what = f"removed {removed} from protocols" if len(drop) < len(protocols) else "removed protocols (ws/wss only)"
        yield Remedy(where, what if ok else f"remove {removed} from protocols by hand", WS_WHY, ok)


def _preserve_host(doc: _Document, realtime: list[Entity], context: FixContext) -> Iterable[Remedy]:
    for route in realtime:
        if route.get("preserve_host") is True:
            where = f"{route.path}.preserve_host"
            ok = doc.delete_key(where)
            yield Remedy(
                where, "removed preserve_host: true" if ok else "remove preserve_host by hand", PRESERVE_HOST_WHY, ok
            )


def _scoped_plugins(doc: _Document, realtime: list[Entity], name: str) -> list[Entity]:
    """Plugins ``name`` on the realtime routes or their services (not global ones)."""
    found: dict[str, Entity] = {}
    for route in realtime:
        for plugin in plugins_applying_to(route, doc.entities):
            scoped = plugin.parent is not None or plugin.get("route") is not None or plugin.get("service") is not None
            if plugin.get("name") == name and scoped:
                found[plugin.path] = plugin
    return list(found.values())


def _websocket_cors_headers(doc: _Document, realtime: list[Entity], context: FixContext) -> Iterable[Remedy]:
    for plugin in doc.entities.of_kind("plugins"):
        config = plugin.get("config")
        headers = config.get("headers") if isinstance(config, Mapping) else None
        if plugin.get("name") != "cors" or not isinstance(headers, list) or not isinstance(config, Mapping):
            continue
        drop = [i for i, h in enumerate(headers) if isinstance(h, str) and _WEBSOCKET_HEADER.match(h)]
        if not drop:
            continue
        where = f"{plugin.path}.config.headers"
        if len(drop) == len(headers) and len(config) == 1:
            ok = doc.delete_key(f"{plugin.path}.config")
        else:
            ok = doc.delete_items(where, drop, len(headers))
        shown = ", ".join(str(headers[i]) for i in drop)
        yield Remedy(where, f"removed {shown}" if ok else f"remove {shown} by hand", CORS_WHY, ok)


def _anonymous(doc: _Document, realtime: list[Entity], context: FixContext) -> Iterable[Remedy]:
    for plugin in _scoped_plugins(doc, realtime, "key-auth"):
        config = plugin.get("config")
        if not isinstance(config, Mapping) or not config.get("anonymous"):
            continue
        where = f"{plugin.path}.config.anonymous"
        ok = doc.delete_key(f"{plugin.path}.config" if len(config) == 1 else where)
        shown = f"anonymous: {config['anonymous']}"
        yield Remedy(where, f"removed {shown}" if ok else f"remove {shown} by hand", ANONYMOUS_WHY, ok)


def _upstream_tenant(doc: _Document, realtime: list[Entity], context: FixContext) -> Iterable[Remedy]:
    seen: set[str] = set()
    for route in realtime:
        service = parent_of(route, "services", doc.entities)
        if service is None or service.path in seen:
            continue
        seen.add(service.path)
        host = effective_upstream(service.data).host
        if not host or host.split(".", 1)[0].lower() == context.tenant.lower():
            continue
        better = next((n for n in context.realtime_names if n.split(".", 1)[0].lower() == context.tenant.lower()), None)
        where = f"{service.path}.url" if isinstance(service.get("url"), str) else f"{service.path}.host"
        why = f"{UPSTREAM_WHY}: {host} gives tenant {host.split('.', 1)[0]!r}, Realtime's is {context.tenant!r}"
        if better and doc.replace_in_scalar(where, host, better):
            yield Remedy(where, f"pointed the upstream at {better} (a name of the Realtime container)", why)
        else:
            yield Remedy(
                where,
                f"set SELF_HOST_TENANT_NAME={host.split('.', 1)[0]} on the Realtime container, or name it"
                f" {context.tenant}.<something> and use that here",
                why,
                applied=False,
            )
