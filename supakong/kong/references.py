"""References between entities and uniqueness of names and keys.

Kong 2.8 DB-less silently collapses duplicate names/keys (last one wins); since 3.4.0 it
refuses them ("uniqueness violation", commit 9ff7af15, #11199). Hence a warning before 3.4
and an error from 3.4.
"""

from __future__ import annotations

from .entities import Entities, Entity, is_nested_under, reference_key
from .findings import Finding, error, warning
from .target import KongTarget
from .yamlpath import child

# (entity kind, unique field, is it the endpoint key Kong collapses on)
UNIQUE_FIELDS: tuple[tuple[str, str], ...] = (
    ("services", "id"),
    ("services", "name"),
    ("routes", "id"),
    ("routes", "name"),
    ("consumers", "id"),
    ("consumers", "username"),
    ("consumers", "custom_id"),
    ("plugins", "id"),
    ("plugins", "instance_name"),
    ("keyauth_credentials", "id"),
    ("keyauth_credentials", "key"),
    ("basicauth_credentials", "id"),
    ("basicauth_credentials", "username"),
    ("acls", "id"),
)
# Which references each kind may carry, and the kind they point to.
REFERENCES: dict[str, tuple[tuple[str, str], ...]] = {
    "routes": (("service", "services"),),
    "plugins": (("service", "services"), ("route", "routes"), ("consumer", "consumers")),
    "keyauth_credentials": (("consumer", "consumers"),),
    "acls": (("consumer", "consumers"),),
    "basicauth_credentials": (("consumer", "consumers"),),
}


def check_references(entities: Entities, target: KongTarget) -> list[Finding]:
    """Every `service:`/`route:`/`consumer:` reference must name a declared entity."""
    findings: list[Finding] = []
    for entity in entities.items:
        for field_name, kind in REFERENCES.get(entity.kind, ()):
            findings.extend(_check_reference(entity, field_name, kind, entities))
    return findings


def _check_reference(entity: Entity, field_name: str, kind: str, entities: Entities) -> list[Finding]:
    reference = entity.get(field_name)
    if reference is None or is_nested_under(entity, kind):
        return []
    key = reference_key(reference)
    if key is not None and entities.find(kind, reference) is not None:
        return []
    shown = key if key is not None else reference
    return [
        error(
            child(entity.path, field_name),
            f"references {kind[:-1]} {shown!r}, which is not declared in this file",
            f"declare the {kind[:-1]} or fix the name (names and ids are case-sensitive)",
        )
    ]


def check_uniqueness(entities: Entities, target: KongTarget) -> list[Finding]:
    """Duplicate unique fields: a warning before Kong 3.4, an error from 3.4."""
    findings: list[Finding] = []
    for kind, field_name in UNIQUE_FIELDS:
        findings.extend(_duplicates(entities.of_kind(kind), kind, field_name, target))
    findings.extend(_duplicate_acl_groups(entities))
    return findings


def _duplicates(items: list[Entity], kind: str, field_name: str, target: KongTarget) -> list[Finding]:
    first_seen: dict[object, Entity] = {}
    findings: list[Finding] = []
    for entity in items:
        value = entity.get(field_name)
        if not isinstance(value, str | int) or isinstance(value, bool):
            continue
        if value not in first_seen:
            first_seen[value] = entity
            continue
        findings.append(_duplicate_finding(entity, first_seen[value], kind, field_name, value, target))
    return findings


def _duplicate_finding(
    entity: Entity, first: Entity, kind: str, field_name: str, value: object, target: KongTarget
) -> Finding:
    where = child(entity.path, field_name)
    hint = f"give each of {first.path} and {entity.path} its own {field_name}"
    if target.at_least((3, 4)):
        return error(
            where,
            f"uniqueness violation: {kind!r} entity with {field_name} set to "
            f"{value!r} already declared (at {first.path}); {target.label} "
            "refuses the file",
            hint,
        )
    return warning(
        where,
        f"duplicate {field_name} {value!r} in {kind} (first at {first.path}): "
        f"{target.label} silently keeps only one of them, and Kong 3.4+ "
        "refuses the file",
        hint,
    )


def _duplicate_acl_groups(entities: Entities) -> list[Finding]:
    seen: dict[tuple[str, str], Entity] = {}
    findings: list[Finding] = []
    for acl in entities.of_kind("acls"):
        owner = acl.parent if is_nested_under(acl, "consumers") else None
        consumer = reference_key(owner.get("username") if owner else acl.get("consumer"))
        group = acl.get("group")
        if consumer is None or not isinstance(group, str):
            continue
        if (consumer, group) in seen:
            findings.append(
                warning(
                    child(acl.path, "group"),
                    f"consumer {consumer!r} is already in group {group!r} (at {seen[(consumer, group)].path})",
                    "remove one of them",
                )
            )
        else:
            seen[(consumer, group)] = acl
    return findings
