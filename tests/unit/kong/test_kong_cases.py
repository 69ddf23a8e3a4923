"""supakong's validator gives Kong's verdict on every case of the shared table
(tests/kong_cases.yaml): an error where Kong refuses the file, at the YAML path of the
offending value, and no error where Kong loads it."""

from __future__ import annotations

import pytest
from kong_cases import KongCase, case_params

from supakong.kong import KongTarget, validate_kong_config


def target(case: KongCase) -> KongTarget:
    # The table holds files as Kong reads them, after the entrypoint: no expansion here.
    return KongTarget(
        case.version, plugins=tuple(case.plugins.split(",")), router_flavor=case.flavor or "", expansion="none"
    )


@pytest.mark.parametrize("case", case_params())
def test_validator_gives_kongs_verdict(case: KongCase) -> None:
    findings = validate_kong_config(case.text, target(case), source="kong.yml")
    errors = [f for f in findings if f.severity == "error"]
    if case.refused is None:
        assert errors == [], [f.as_line() for f in errors]
    else:
        assert case.at is not None
        assert any(f.path.startswith(case.at) for f in errors), (case.at, [f.as_line() for f in findings])
