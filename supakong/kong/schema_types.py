"""A small schema engine: the parts of Kong's schema library the validator needs.

Field tables (core entities in `schema_core`, plugin configs in `schema_plugins`) are plain
data. Each field says since which Kong version it exists (`since`), when it was removed
(`removed_in`) and whether only Kong Enterprise has it, so one table covers 2.8.x and 3.x.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from .findings import ERROR, Finding, error, warning
from .target import KongTarget, Version
from .yamlpath import child, item


@dataclass(frozen=True)
class Problem:
    """What a custom field check returns when a value is wrong."""

    message: str
    hint: str = ""
    severity: str = ERROR


Check = Callable[[object, KongTarget], "Problem | None"]


@dataclass(frozen=True)
class Field:
    """One field of a Kong schema (kinds: string, boolean, integer, number, array, set,
    record, map, foreign, any)."""

    kind: str
    elements: Field | None = None
    fields: Mapping[str, Field] | None = None
    one_of: tuple[object, ...] = ()
    between: tuple[float, float] | None = None
    check: Check | None = None
    since: Version = (2, 8)
    removed_in: Version | None = None
    enterprise_only: bool = False
    deprecated: str = ""
    required: bool = False
    allow_empty: bool = False
    min_items: int = 0


def available(spec: Field, target: KongTarget) -> bool:
    """True when the field exists in the target's schema."""
    if not target.at_least(spec.since):
        return False
    if spec.removed_in is not None and target.at_least(spec.removed_in):
        return False
    return target.is_enterprise or not spec.enterprise_only


def yaml_type(value: object) -> str:
    """Name a parsed YAML value's type the way a config author thinks of it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, Mapping):
        return "mapping"
    return type(value).__name__


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_fields(
    value: Mapping[object, object],
    fields: Mapping[str, Field],
    path: str,
    target: KongTarget,
    *,
    skip: Iterable[str] = (),
    lenient_unknown: bool = False,
) -> list[Finding]:
    """Check a record's keys and values against a field table for the target version.

    `skip` names keys handled elsewhere (nested entities). With `lenient_unknown` (Kong
    Enterprise plugin configs, which have fields this validator does not know), an unknown
    key is a warning instead of an error.
    """
    skipped = frozenset(skip)
    findings: list[Finding] = []
    for key, val in value.items():
        if key in skipped:
            continue
        spec = fields.get(key) if isinstance(key, str) else None
        if spec is None:
            findings.append(_unknown_field(key, fields, path, target, lenient_unknown))
            continue
        findings.extend(_check_availability(str(key), spec, path, target))
        if available(spec, target):
            findings.extend(check_value(val, spec, child(path, key), target))
    findings.extend(_missing_required(value, fields, path, target))
    return findings


def _known_names(fields: Mapping[str, Field], target: KongTarget) -> str:
    return ", ".join(sorted(name for name, spec in fields.items() if available(spec, target)))


def _unknown_field(key: object, fields: Mapping[str, Field], path: str, target: KongTarget, lenient: bool) -> Finding:
    known = _known_names(fields, target)
    if lenient:
        return warning(
            child(path, key),
            f"field {key!r} is not known to this validator; {target.label} may refuse it ('unknown field')",
            f"check the Kong Enterprise docs for this plugin; known fields: {known}",
        )
    return error(
        child(path, key),
        f"unknown field {key!r}: {target.label} refuses the file ('unknown field')",
        f"remove it or fix its spelling; known fields: {known}",
    )


def _check_availability(key: str, spec: Field, path: str, target: KongTarget) -> list[Finding]:
    where = child(path, key)
    if not target.at_least(spec.since):
        since = ".".join(map(str, spec.since))
        return [
            error(
                where,
                f"field {key!r} does not exist before Kong {since}; {target.label} refuses it as 'unknown field'",
                f"remove it, or target Kong {since} or newer",
            )
        ]
    if spec.removed_in is not None and target.at_least(spec.removed_in):
        removed = ".".join(map(str, spec.removed_in))
        return [error(where, f"field {key!r} was removed in Kong {removed}", spec.deprecated)]
    if spec.enterprise_only and not target.is_enterprise:
        return [error(where, f"field {key!r} exists only in Kong Enterprise")]
    if spec.deprecated:
        return [warning(where, f"field {key!r} is deprecated", spec.deprecated)]
    return []


def _missing_required(
    value: Mapping[object, object], fields: Mapping[str, Field], path: str, target: KongTarget
) -> list[Finding]:
    return [
        error(child(path, name), f"required field {name!r} is missing")
        for name, spec in fields.items()
        if spec.required and available(spec, target) and value.get(name) is None
    ]


def check_value(value: object, spec: Field, path: str, target: KongTarget) -> list[Finding]:
    """Check one value against its field spec. A YAML null means "unset" and always passes
    (Kong converts null to nil before validating, 3.0 changelog #8483)."""
    if value is None:
        return []
    type_problem = _type_problem(value, spec)
    if type_problem:
        return [error(path, type_problem)]
    if spec.kind in ("array", "set"):
        return _check_elements(value, spec, path, target)
    if spec.kind == "record":
        assert isinstance(value, Mapping)
        return check_fields(value, spec.fields or {}, path, target)
    if spec.kind == "map":
        return _check_map(value, spec, path, target)
    return _check_scalar(value, spec, path, target)


_EXPECTED = {
    "string": "a string",
    "boolean": "a boolean",
    "integer": "an integer",
    "number": "a number",
    "array": "an array (YAML list)",
    "set": "an array (YAML list)",
    "record": "a record (YAML mapping)",
    "map": "a map (YAML mapping)",
    "foreign": "a reference (name or id)",
}


def _type_problem(value: object, spec: Field) -> str | None:
    ok = {
        "string": isinstance(value, str),
        "boolean": isinstance(value, bool),
        "integer": _is_integer(value),
        "number": isinstance(value, int | float) and not isinstance(value, bool),
        "array": isinstance(value, list),
        "set": isinstance(value, list),
        "record": isinstance(value, Mapping),
        "map": isinstance(value, Mapping),
        "foreign": isinstance(value, str | Mapping),
    }.get(spec.kind, True)
    if ok:
        return None
    return f"expected {_EXPECTED[spec.kind]}, got {yaml_type(value)} {_shown(value)}"


def _is_integer(value: object) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and value.is_integer())


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _check_elements(value: object, spec: Field, path: str, target: KongTarget) -> list[Finding]:
    assert isinstance(value, list)
    if len(value) < spec.min_items:
        return [error(path, f"length must be at least {spec.min_items}")]
    findings: list[Finding] = []
    if spec.elements is not None:
        for index, element in enumerate(value):
            if element is None:
                findings.append(error(item(path, index), "array elements must not be null"))
                continue
            findings.extend(check_value(element, spec.elements, item(path, index), target))
    return findings


def _check_map(value: object, spec: Field, path: str, target: KongTarget) -> list[Finding]:
    assert isinstance(value, Mapping)
    findings: list[Finding] = []
    for key, val in value.items():
        if not isinstance(key, str):
            findings.append(error(child(path, key), "map keys must be strings"))
        elif spec.elements is not None:
            findings.extend(check_value(val, spec.elements, child(path, key), target))
    return findings


def _check_scalar(value: object, spec: Field, path: str, target: KongTarget) -> list[Finding]:
    if isinstance(value, str) and value == "" and not spec.allow_empty:
        return [error(path, "length must be at least 1 (empty string)")]
    if spec.one_of and value not in spec.one_of:
        choices = ", ".join(str(choice) for choice in spec.one_of)
        return [error(path, f"{_shown(value)} is not allowed: expected one of: {choices}")]
    if spec.between is not None and isinstance(value, int | float):
        low, high = spec.between
        if not low <= value <= high:
            return [error(path, f"value should be between {_num(low)} and {_num(high)}, got {value}")]
    if spec.check is not None:
        problem = spec.check(value, target)
        if problem is not None:
            return [Finding(problem.severity, path, problem.message, problem.hint)]
    return []


def string_array(*, since: Version = (2, 8), check: Check | None = None) -> Field:
    """An array of non-empty strings (the commonest shape in Kong schemas)."""
    return Field("array", elements=Field("string", check=check), since=since)
