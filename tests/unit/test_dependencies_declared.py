"""Every third-party package supakong imports is declared in pyproject.toml; those whose
private API it uses are bounded above at the major tested (their own tests fail loudly when
that API moves); requirements.lock pins all of them with hashes and `make venv` installs
from it with --require-hashes."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[2]
#: Import name → distribution name, where they differ.
DISTRIBUTIONS = {"yaml": "pyyaml", "jwt": "pyjwt", "ruamel": "ruamel.yaml"}
#: Private API used: bounded above (tests/unit/test_paramiko_private_api.py, test_docker_private_api.py).
PRIVATE_API = ("paramiko", "docker", "requests", "urllib3")
STANDINS = REPO / "supakong" / "sandbox" / "standins"


def declared() -> dict[str, Requirement]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return {Requirement(r).name.lower(): Requirement(r) for r in project["dependencies"]}


def imported() -> set[str]:
    names = set()
    for root in ("supakong", "tasks"):
        for path in (REPO / root).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    names.update(alias.name.split(".")[0] for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names.add(node.module.split(".")[0])
    first_party = {"supakong", *(p.name for p in STANDINS.iterdir() if p.is_dir())}
    return {n for n in names if n not in sys.stdlib_module_names and n not in first_party}


def test_every_imported_package_is_declared():
    missing = sorted(DISTRIBUTIONS.get(n, n) for n in imported() if DISTRIBUTIONS.get(n, n) not in declared())
    assert not missing, f"imported but not in pyproject.toml's dependencies: {missing}"


def test_packages_whose_private_api_is_used_are_bounded_at_the_tested_major():
    for name in PRIVATE_API:
        upper = [s for s in declared()[name].specifier if s.operator == "<"]
        assert upper, f"{name} has no upper bound in pyproject.toml"


def locked() -> dict[str, tuple[str, list[str]]]:
    text = (REPO / "requirements.lock").read_text()
    pins = {}
    for block in re.split(r"\n(?=[a-z0-9])", text):
        match = re.match(r"([A-Za-z0-9_.-]+)==(\S+)", block)
        if match:
            pins[match.group(1).lower().replace("_", "-")] = (match.group(2), re.findall(r"--hash=sha256:(\w+)", block))
    return pins


def test_the_lock_pins_every_dependency_with_hashes_within_pyproject_ranges():
    pins = locked()
    for name, requirement in declared().items():
        key = name.replace(".", "-").replace("_", "-")
        assert key in pins, f"{name} is not in requirements.lock: regenerate it (see the Makefile)"
        pinned, hashes = pins[key]
        assert hashes, f"{name} has no hash in requirements.lock"
        assert requirement.specifier.contains(pinned), f"requirements.lock pins {name} {pinned}, outside {requirement}"
    assert all(hashes for _, hashes in pins.values())


def test_make_venv_installs_from_the_lock_with_hashes_required():
    makefile = (REPO / "Makefile").read_text()
    assert "--require-hashes -r requirements.lock" in makefile
    assert "-e '.[test]'" not in makefile, "an unlocked install would resolve dependencies afresh"


def test_every_package_of_the_checkout_is_installed():
    # A subpackage missing from [tool.setuptools] packages is absent from the wheel: the
    # pip-installed console script then fails on its import (tests/integration/test_adopt.py).
    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {
        ".".join(init.parent.relative_to(REPO).parts)
        for init in (REPO / "supakong").rglob("__init__.py")
        if "__pycache__" not in init.parts
    }
    assert found - listed == set(), f"add to pyproject.toml [tool.setuptools] packages: {sorted(found - listed)}"
