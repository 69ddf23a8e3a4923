"""The files ``supakong init`` writes on this machine, idempotently: a second run with the
same findings writes nothing; an existing host entry is updated in place, never duplicated;
the user's comments and key order are kept (ruamel.yaml's round trip).
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError

from ..errors import InventoryError

CREATED, UPDATED, UNCHANGED = "created", "updated", "unchanged"
COMMENT_COLUMN = 40


@dataclass(frozen=True)
class Entry:
    """One variable init writes: its value and where it came from (the line's comment)."""

    key: str
    value: Any
    comment: str = ""


def _yaml() -> YAML:
    yaml = YAML()  # round trip: comments, order and quotes are kept
    yaml.preserve_quotes = True
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 4096
    return yaml


def _dump(doc: Any) -> str:
    out = io.StringIO()
    _yaml().dump(doc, out)
    return out.getvalue()


def _load(path: Path) -> Any:
    try:
        return _yaml().load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InventoryError(f"{path}: cannot read ({exc.strerror})") from None
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        raise InventoryError(f"{path}{where}: invalid YAML; fix it, then run init again") from None


def write_if_changed(path: Path, text: str, mode: int = 0o644) -> str:
    """Write ``text`` to ``path`` (atomically) unless it already holds exactly that."""
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return UNCHANGED
    status = UPDATED if path.exists() else CREATED
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.chmod(tmp, mode)
    tmp.replace(path)
    return status


HOSTS_HEADER = (
    "supakong inventory, in Ansible's YAML inventory shape (see supakong's docs/inventory.md).\n"
    "Hosts added by `supakong init`; their findings are in host_vars/<host>.yml."
)


def add_host(path: Path, name: str, connection: Mapping[str, Any]) -> str:
    """Put host ``name`` with its ``connection`` variables into the inventory at ``path``:
    where it already is (any group), else under ``all.hosts``."""
    doc = _load(path) if path.exists() else None
    if doc is None:
        doc = CommentedMap()
        doc.yaml_set_start_comment(HOSTS_HEADER)
    if not isinstance(doc, dict):
        raise InventoryError(f"{path}: expected a mapping with a top-level 'all' group")
    group = doc.setdefault("all", CommentedMap())
    if group is None:
        group = doc["all"] = CommentedMap()
    entry = _find_host(group, name)
    if entry is None:
        hosts = group.get("hosts")
        if hosts is None:
            hosts = group["hosts"] = CommentedMap()
        hosts[name] = entry = CommentedMap()
    for key, value in connection.items():
        if key not in entry or entry[key] != value:
            entry[key] = value
    return write_if_changed(path, _dump(doc))


def _find_host(group: Any, name: str) -> Any:
    """The variables mapping of ``name`` in ``group`` or its children (made a mapping if empty)."""
    if not isinstance(group, dict):
        return None
    hosts = group.get("hosts")
    if isinstance(hosts, dict) and name in hosts:
        if hosts[name] is None:
            hosts[name] = CommentedMap()
        return hosts[name]
    for child in (group.get("children") or {}).values():
        found = _find_host(child, name)
        if found is not None:
            return found
    return None


def update_vars(path: Path, header: str, entries: Sequence[Entry], nested: Mapping[str, Sequence[Entry]]) -> str:
    """Set ``entries`` (and ``nested``: a mapping per key) in the variables file at
    ``path``, each with its comment; variables and comments of the user's own are kept."""
    doc = _load(path) if path.exists() else None
    if doc is None:
        doc = CommentedMap()
    if not isinstance(doc, CommentedMap):
        raise InventoryError(f"{path}: expected a mapping of variables")
    if not path.exists():
        doc.yaml_set_start_comment(header)
    _set_all(doc, entries)
    for key, children in nested.items():
        inner = doc.get(key)
        if not isinstance(inner, CommentedMap):
            inner = doc[key] = CommentedMap()
        _set_all(inner, children)
    return write_if_changed(path, _dump(doc))


def _set_all(mapping: CommentedMap, entries: Sequence[Entry]) -> None:
    for entry in entries:
        value = _plain(entry.value)
        if entry.key not in mapping or mapping[entry.key] != value:
            mapping[entry.key] = value
        if entry.comment:  # set again as is: the dump is the same
            mapping.yaml_add_eol_comment(entry.comment, entry.key, column=COMMENT_COLUMN)


def _plain(value: Any) -> Any:
    """Lists are written in flow style (``[a, b]``): one line, one comment."""
    if isinstance(value, list | tuple):
        seq = CommentedSeq(value)
        seq.fa.set_flow_style()
        return seq
    return value
