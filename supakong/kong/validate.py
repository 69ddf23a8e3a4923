"""Offline validation of a Kong declarative config for a given Kong target.

Pure and fast: no Kong binary, no network. It orchestrates the checks of the sibling
modules and returns findings sorted by severity, then path. It complements, not replaces,
`kong config parse` inside the real image (Kong/kong@3.9.3:kong/cmd/config.lua).
"""

from __future__ import annotations

from collections.abc import Mapping

from .entities import collect_entities
from .expansion import findings_for_document, findings_for_text
from .findings import Finding, error, sort_findings
from .pitfalls import check_pitfalls
from .references import check_references, check_uniqueness
from .schema_core import check_entities, check_header
from .schema_types import yaml_type
from .target import KongTarget
from .yaml_source import contains_cycle, parse_source


def validate_kong_config(text: str, target: KongTarget, *, source: str = "kong.yml") -> list[Finding]:
    """Validate kong.yml text. Never raises on bad input: YAML errors become a finding at
    `<source>:line:col`."""
    parsed = parse_source(text, source)
    if parsed.failed:
        return list(parsed.findings)
    findings = [
        *parsed.findings,
        *_validate_structure(parsed.doc, target, root=source),
        *findings_for_text(text, parsed.spans, source, target),
    ]
    return sort_findings(findings)


def validate_kong_document(doc: object, target: KongTarget) -> list[Finding]:
    """Validate an already parsed declarative config (e.g. `yaml.safe_load` output)."""
    if contains_cycle(doc):
        return [error("(document)", "the document contains itself (recursive YAML alias)")]
    findings = [*_validate_structure(doc, target, root="(document)"), *findings_for_document(doc, target)]
    return sort_findings(findings)


def _validate_structure(doc: object, target: KongTarget, *, root: str) -> list[Finding]:
    if doc is None:
        return [
            error(
                root,
                "the config is empty: Kong would start without any route",
                "start from Supabase's docker/volumes/api/kong.yml",
            )
        ]
    if not isinstance(doc, Mapping):
        return [
            error(
                root,
                f"expected a mapping at the top of the config, got {yaml_type(doc)}",
                "a declarative config starts with _format_version: '2.1'",
            )
        ]
    entities = collect_entities(doc)
    return [
        *check_header(doc, target),
        *check_entities(entities, target, _format_version(doc)),
        *check_references(entities, target),
        *check_uniqueness(entities, target),
        *check_pitfalls(entities, target),
    ]


def _format_version(doc: Mapping[object, object]) -> str:
    # An invalid or missing value is reported by check_header; path rules then assume 3.0.
    value = doc.get("_format_version")
    return value if isinstance(value, str) else "3.0"
