"""Findings: what the offline Kong validator reports.

A finding is a value (severity, YAML path, message, hint). Validators only build lists of
findings; printing and deciding whether to stop is the caller's business.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass

ERROR = "error"
WARNING = "warning"
INFO = "info"
SEVERITIES = (ERROR, WARNING, INFO)


@dataclass(frozen=True)
class Finding:
    """One problem (or remark) about a Kong declarative config.

    `path` is the YAML path of the offending node, e.g. `services[1].routes[0].protocols[2]`,
    or `<source>:line:col` when the file cannot be parsed at all.
    """

    severity: str
    path: str
    message: str
    hint: str = ""

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {SEVERITIES}, not {self.severity!r}")

    def as_line(self) -> str:
        """Render as one line: `error <path>: <message> (hint: <hint>)`."""
        line = f"{self.severity} {self.path}: {self.message}"
        return f"{line} (hint: {self.hint})" if self.hint else line

    def as_dict(self) -> dict[str, str]:
        """Render as the JSON object used by `findings_to_json`."""
        return asdict(self)


def error(path: str, message: str, hint: str = "") -> Finding:
    """Build an error finding: Kong would refuse the file, or Supabase would break."""
    return Finding(ERROR, path, message, hint)


def warning(path: str, message: str, hint: str = "") -> Finding:
    """Build a warning finding: valid for Kong, but probably not what was meant."""
    return Finding(WARNING, path, message, hint)


def info(path: str, message: str, hint: str = "") -> Finding:
    """Build an informational finding."""
    return Finding(INFO, path, message, hint)


def _natural_path_key(path: str) -> tuple[tuple[int, int | str], ...]:
    # services[10] must sort after services[2]: compare the numbers as numbers. The split's
    # \d runs are decimal digits; isdigit() would also take "¹", which int() refuses.
    parts = re.split(r"(\d+)", path)
    return tuple((1, int(part)) if part.isdecimal() else (0, part) for part in parts)


def sort_findings(findings: Iterable[Finding]) -> list[Finding]:
    """Sort by severity (errors first), then by YAML path, then by message; drop duplicates."""
    unique = dict.fromkeys(findings)
    return sorted(
        unique,
        key=lambda f: (SEVERITIES.index(f.severity), _natural_path_key(f.path), f.message),
    )


def findings_to_json(findings: Iterable[Finding]) -> str:
    """Serialise as `{"findings": [{"severity", "path", "message", "hint"}, ...]}`."""
    return json.dumps({"findings": [f.as_dict() for f in findings]}, indent=2)


def has_errors(findings: Iterable[Finding]) -> bool:
    """True when at least one finding is an error (the file must not be deployed)."""
    return any(f.severity == ERROR for f in findings)
