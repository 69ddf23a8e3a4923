"""The Kong stand-in's `kong config parse` gives Kong's verdict on every case of the shared
table (tests/kong_cases.yaml), with Kong's error text."""

from __future__ import annotations

import contextlib
import io
import subprocess
import sys
from pathlib import Path

import pytest
from kong_cases import KongCase, case_params, load_cases

from supakong.sandbox.standins.kong import cli

STANDIN = Path(__file__).resolve().parents[2] / "supakong/sandbox/standins/kong_standin.py"


def environment(case: KongCase) -> dict[str, str]:
    env = {"KONG_VERSION": case.version, "KONG_PLUGINS": case.plugins}
    if case.flavor:
        env["KONG_ROUTER_FLAVOR"] = case.flavor
    return env


def config_parse(case: KongCase, tmp_path: Path) -> tuple[int, str, str]:
    """`kong config parse FILE` in this process: the code the container's /bin/kong runs."""
    path = tmp_path / "kong.yml"
    path.write_text(case.text)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(["config", "parse", str(path)], environment(case))
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("case", case_params())
def test_standin_gives_kongs_verdict(case: KongCase, tmp_path: Path) -> None:
    code, out, err = config_parse(case, tmp_path)
    if case.refused is None:
        assert (code, out.strip()) == (0, "parse successful"), err
    else:
        assert code == 1 and err.startswith("Error: Failed parsing:\n"), out + err
        assert case.refused in err


def test_the_table_has_refusals_and_acceptances_on_both_versions() -> None:
    cases = load_cases()
    for version in ("2.8.1", "3.9.3"):
        mine = [c for c in cases if c.version == version]
        assert sum(c.refused is not None for c in mine) > 40 and sum(c.refused is None for c in mine) > 10


@pytest.mark.parametrize("case_id", ["service-read-timeout-zero", "cors-method-outside-the-enum"])
def test_the_command_in_a_process_prints_the_same(case_id: str, tmp_path: Path) -> None:
    case = next(c for c in load_cases() if c.id == case_id and c.version == "3.9.3")
    expected = config_parse(case, tmp_path)
    run = subprocess.run(
        [sys.executable, str(STANDIN), "config", "parse", str(tmp_path / "kong.yml")],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", **environment(case)},
        timeout=20,
    )
    assert (run.returncode, run.stdout, run.stderr) == expected
