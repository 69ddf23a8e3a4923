"""One line of a checklist (``doctor``): ✓ passed, ✗ failed with the fix, - skipped."""

from __future__ import annotations

from dataclasses import dataclass

OK = "ok"
FAIL = "fail"
SKIP = "skip"
MARKS = {OK: "✓", FAIL: "✗", SKIP: "-"}


@dataclass(frozen=True)
class Check:
    """One line of the doctor's checklist: ✓ ok, ✗ fail (with the fix), - skipped."""

    name: str
    status: str
    detail: str
    fix: str = ""
    notes: tuple[str, ...] = ()
