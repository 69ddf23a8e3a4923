"""What ships inside the package: the default template and the default inventory variables.

A user who installs supakong with ``pip install`` (no checkout) gets both: an inventory of
their own anywhere works without copying ``templates/`` or ``group_vars/all.yml``. The
templates live in the repository's ``templates/`` and are installed as package data of
``supakong.templates``; the defaults are ``supakong/defaults.yml``.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import yaml

DEFAULT_TEMPLATE = "templates/kong-simple.yml.j2"
_HERE = Path(__file__).resolve().parent


def templates_dir() -> Path:
    """The directory of the shipped templates: ``supakong/templates`` when installed from a
    wheel, else the checkout's ``templates/`` (an editable install or ``fab`` in the checkout)."""
    installed = _HERE / "templates"
    return installed if installed.is_dir() else _HERE.parent / "templates"


def template_candidates(value: str, project_dir: Path) -> tuple[Path, ...]:
    """Where a ``kong_template`` value may be, in the order searched: an absolute path as is;
    a relative one in the inventory's project directory (the directory holding
    ``inventory/``), then among the shipped templates (``templates/x`` → the package's ``x``)."""
    path = Path(value)
    if path.is_absolute():
        return (path,)
    shipped = Path(*path.parts[1:]) if path.parts[:1] == ("templates",) else path
    return (project_dir / path, templates_dir() / shipped)


def resolve_template(value: str, project_dir: Path) -> tuple[Path, tuple[Path, ...]]:
    """(the first candidate that exists, or the first candidate; every place searched)."""
    candidates = template_candidates(value, project_dir)
    found = next((p for p in candidates if p.is_file()), candidates[0])
    return found, candidates


@functools.lru_cache(maxsize=1)
def default_vars() -> dict[str, Any]:
    """The package's default inventory variables (the lowest precedence of every host)."""
    data = yaml.safe_load((_HERE / "defaults.yml").read_text(encoding="utf-8")) or {}
    assert isinstance(data, dict), "supakong/defaults.yml must be a mapping"
    return data
