"""Parse kong.yml text, keeping where each scalar sits so findings can name YAML paths.

YAML syntax errors become one finding with `<source>:line:col`. Duplicate mapping keys,
which YAML loaders resolve silently (the last one wins), become warnings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from .findings import Finding, error, warning
from .yamlpath import child, item


@dataclass(frozen=True)
class ScalarSpan:
    """Character offsets [start, end) of a scalar (key or value) in the text, and its path."""

    start: int
    end: int
    path: str


@dataclass(frozen=True)
class ParsedSource:
    """The parsed document, scalar spans, and findings (a YAML error leaves `doc` None)."""

    doc: object
    spans: tuple[ScalarSpan, ...] = ()
    findings: tuple[Finding, ...] = field(default=())
    failed: bool = False


def parse_source(text: str, source: str = "kong.yml") -> ParsedSource:
    """Parse one YAML (or JSON) document; never raises on bad input."""
    try:
        node, doc = _load(text)
    except yaml.YAMLError as exc:
        return ParsedSource(None, findings=(_yaml_error(exc, text, source),), failed=True)
    except RecursionError:
        too_deep = error(source, "YAML nesting is too deep", "flatten the document")
        return ParsedSource(None, findings=(too_deep,), failed=True)
    if contains_cycle(doc):
        return ParsedSource(None, findings=(_cycle_error(source),), failed=True)
    spans: list[ScalarSpan] = []
    findings: list[Finding] = []
    if node is not None:
        _walk(node, "", spans, findings, set())
    return ParsedSource(doc, tuple(spans), tuple(findings))


#: libyaml's loader, ~10× faster; its marks count bytes, so it only reads ASCII text.
_FAST_LOADER: type[Any] | None = getattr(yaml, "CSafeLoader", None)


def _load(text: str) -> tuple[Node | None, object]:
    # The pure-Python loader's marks count characters: it reads any text. For ASCII text
    # (nearly every kong.yml) bytes are characters, and libyaml gives the same marks faster.
    loader: Any = _FAST_LOADER(text) if _FAST_LOADER is not None and text.isascii() else yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        return node, loader.construct_document(node) if node is not None else None
    finally:
        loader.dispose()


def contains_cycle(value: object, ancestors: frozenset[int] = frozenset()) -> bool:
    """True when a YAML alias makes the document contain itself (`&a [*a]`)."""
    if not isinstance(value, list | dict):
        return False
    if id(value) in ancestors:
        return True
    inner = ancestors | {id(value)}
    children = value.values() if isinstance(value, dict) else value
    return any(contains_cycle(element, inner) for element in children)


def _cycle_error(where: str) -> Finding:
    return error(
        where,
        "the YAML contains itself through an alias (recursive anchor)",
        "Kong cannot load a recursive document; remove the alias",
    )


def _yaml_error(exc: yaml.YAMLError, text: str, source: str) -> Finding:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    if mark is not None:
        line, column = mark.line + 1, mark.column + 1
    else:  # ReaderError (a forbidden character) only knows its offset
        offset = int(getattr(exc, "position", 0) or 0)
        line = text.count("\n", 0, offset) + 1
        column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    problem = getattr(exc, "problem", None) or getattr(exc, "reason", None) or str(exc)
    context = getattr(exc, "context", None)
    detail = f"{context}: {problem}" if context else str(problem)
    return error(
        f"{source}:{line}:{column}",
        f"YAML syntax error: {detail}",
        "Kong cannot parse the file and will not start; fix the YAML at that line",
    )


def _walk(node: Node, path: str, spans: list[ScalarSpan], findings: list[Finding], seen: set[int]) -> None:
    if isinstance(node, ScalarNode):
        spans.append(ScalarSpan(node.start_mark.index, node.end_mark.index, path or "(root)"))
        return
    if id(node) in seen:  # an alias to an already visited anchor: nothing new inside
        return
    seen.add(id(node))
    if isinstance(node, SequenceNode):
        for index, element in enumerate(node.value):
            _walk(element, item(path, index), spans, findings, seen)
    elif isinstance(node, MappingNode):
        _walk_mapping(node, path, spans, findings, seen)


def _walk_mapping(
    node: MappingNode, path: str, spans: list[ScalarSpan], findings: list[Finding], seen: set[int]
) -> None:
    keys: set[str] = set()
    for key_node, value_node in node.value:
        key = key_node.value if isinstance(key_node, ScalarNode) else "?"
        key_path = child(path, key)
        if key in keys and key != "<<":
            findings.append(
                warning(
                    key_path,
                    f"duplicate key {key!r} in this mapping: YAML keeps only the last one, the "
                    "earlier one is silently ignored",
                    "merge the two entries into one",
                )
            )
        keys.add(key)
        if isinstance(key_node, ScalarNode):
            spans.append(ScalarSpan(key_node.start_mark.index, key_node.end_mark.index, key_path))
        _walk(value_node, key_path, spans, findings, seen)
