"""Kong's schema library, as far as the stand-in needs it: fields, records, entity checks.

Applies the data of ``schema_rules`` the way Kong/kong@3.9.3:kong/db/schema/init.lua does:
unknown fields, then each field's type and validators in Kong's order (the first failing
one is reported), required fields, then the entity checks into ``@entity``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from . import schema_rules as rules
from .model import Doc
from .validators import CUSTOM

ErrTree = dict[Any, Any]  # Kong's err_t: field names (str) or 1-based entries (int)
Err = str | ErrTree | list[str]


@dataclass(frozen=True)
class Node:
    """Which Kong is validating: version and router flavor."""

    version: rules.Version
    flavor: str

    def fields(self, table: Iterable[tuple[str, rules.Field]]) -> dict[str, rules.Field]:
        return {name: spec for name, spec in table if rules.exists(spec, self.version, self.flavor)}


_TYPE_ERRORS = {
    "string": "expected a string",
    "integer": "expected an integer",
    "number": "expected a number",
    "boolean": "expected a boolean",
    "array": "expected an array",
    "set": "expected a set",
    "map": "expected a map",
    "record": "expected a record",
}


def _type_ok(kind: str, value: object) -> bool:
    if kind == "string":
        return isinstance(value, str)
    if kind == "integer":
        return isinstance(value, int | float) and not isinstance(value, bool) and float(value).is_integer()
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind in ("array", "set"):
        return isinstance(value, list)
    if kind in ("map", "record"):
        return isinstance(value, dict)
    return True  # foreign, any


def quoted(words: Iterable[object]) -> str:
    return ", ".join(f"({quoted(w)})" if isinstance(w, tuple | list) else f"'{w}'" for w in words)


def validate_field(spec: rules.Field, value: object, node: Node) -> Err | None:
    """Schema:validate_field (init.lua:874-1033): type, then the validators in order."""
    if spec.eq_null:
        return spec.eq_null
    if not _type_ok(spec.type, value):
        return _TYPE_ERRORS[spec.type]
    if spec.type in ("array", "set"):
        assert isinstance(value, list)
        if spec.len_min is not None and len(value) < spec.len_min:
            return f"length must be at least {spec.len_min}"
        errs: ErrTree = {}
        for index, element in enumerate(value, 1):
            if element is None:
                errs[index] = "required field missing"
            elif spec.elements is not None and (err := validate_field(spec.elements, element, node)) is not None:
                errs[index] = err
        if errs:
            return errs
        if spec.subsets:
            return _exclusive_subsets(value, spec.subsets)
        return None
    if spec.type == "map":
        return _validate_map(spec, value, node)
    if spec.type == "record":
        assert isinstance(value, dict)
        return validate_record(node.fields(spec.fields), spec.checks, value, node) or None
    return _scalar_validators(spec, value, node)


def _exclusive_subsets(value: list[Any], subsets: tuple[tuple[str, ...], ...]) -> str | None:
    member_of: list[tuple[str, ...]] = []
    for element in value:
        subset = next((s for s in subsets if element in s), None)
        if subset is not None and subset not in member_of:
            member_of.append(subset)
    return None if len(member_of) <= 1 else f"these sets are mutually exclusive: {quoted(member_of)}"


def _validate_map(spec: rules.Field, value: object, node: Node) -> Err | None:
    assert isinstance(value, dict)
    for key, element in value.items():
        if spec.keys is not None and (err := validate_field(spec.keys, key, node)) is not None:
            return err
        if spec.values is not None and (err := validate_field(spec.values, element, node)) is not None:
            return err
    return None


def _scalar_validators(spec: rules.Field, value: Any, node: Node) -> str | None:
    if spec.one_of and value not in spec.one_of:
        return "expected one of: " + ", ".join(str(choice) for choice in spec.one_of)
    if spec.uuid and not re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", str(value)):
        return "expected a valid UUID"
    if spec.between is not None and not spec.between[0] <= value <= spec.between[1]:
        return f"value should be between {spec.between[0]} and {spec.between[1]}"
    if spec.type != "string":
        return None
    return _string_validators(spec, value, node)


def _string_validators(spec: rules.Field, value: str, node: Node) -> str | None:
    len_min = 1 if spec.len_min is None else spec.len_min
    if len(value) < len_min:
        return f"length must be at least {len_min}"
    if spec.starts_with and not value.startswith(spec.starts_with):
        return f"should start with: {spec.starts_with}"
    for pattern, error in spec.match_none:
        if re.search(pattern, value):
            return error
    if spec.match and not re.search(spec.match, value, re.DOTALL):
        return f"invalid value: {value}"
    for pattern, error in spec.match_all:
        if not re.search(pattern, value):
            return error
    if spec.match_any is not None and not any(re.search(p, value) for p in spec.match_any[0]):
        return spec.match_any[1]
    return CUSTOM[spec.custom](value, node.version) if spec.custom else None


# ------------------------------------------------------------------ records and checks
def nonempty(value: object) -> bool:
    return value is not None and value != "" and value != [] and value != {}


def _get(record: Mapping[str, Any], dotted: str) -> Any:
    value: Any = record
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def validate_record(
    fields: Mapping[str, rules.Field], checks: Iterable[rules.Check], record: Doc, node: Node, skip: Iterable[str] = ()
) -> ErrTree:
    """Schema:validate (init.lua:2106-2146): unknown fields, field values, required fields,
    then entity checks into ``@entity``. ``None`` means unset, as in Kong."""
    errs: ErrTree = {}
    skipped = set(skip)
    for key, value in record.items():
        if key in skipped or value is None:
            continue
        spec = fields.get(key)
        if spec is None:
            errs[key] = "unknown field"
        elif (err := validate_field(spec, value, node)) is not None:
            errs[key] = err
    for name, spec in fields.items():
        if spec.required and record.get(name) is None and name not in errs:
            errs[name] = "required field missing"
    for check in checks:
        if rules.exists(check, node.version, node.flavor) and (message := run_check(check, record)):
            errs.setdefault("@entity", []).append(message)
    return errs


def run_check(check: rules.Check, record: Doc) -> str | None:
    """The entity checkers Kong's schemas here use (init.lua:570-830)."""
    present = [name for name in check.fields if nonempty(_get(record, name))]
    if check.kind == "at_least_one_of":
        return None if present else f"at least one of these fields must be non-empty: {quoted(check.fields)}"
    if check.kind == "only_one_of":
        return None if len(present) == 1 else f"exactly one of these fields must be non-empty: {quoted(check.fields)}"
    if check.kind == "mutually_exclusive_sets":
        second = [name for name in check.then_fields if nonempty(_get(record, name))]
        if present and second:
            return f"these sets are mutually exclusive: ({quoted(present)}), ({quoted(second)})"
        return None
    raise ValueError(f"unknown check {check.kind}")
