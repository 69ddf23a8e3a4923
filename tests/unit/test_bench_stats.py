"""The benchmark's verdicts: paired ratios, bootstrap intervals, round-trip estimates, and the
report rebuilt from raw runs (bench/stats.py, bench/bench.py --report)."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

import stats  # noqa: E402

# bench.py imports bench/sandboxes.py as `sandboxes`; a whole run has imported the tests'
# tests/sandboxes.py under that name already (the integration conftest): let bench load its
# own, then give the tests theirs back.
_tests_sandboxes = sys.modules.pop("sandboxes", None)
import bench  # noqa: E402

if _tests_sandboxes is not None:
    sys.modules["sandboxes"] = _tests_sandboxes


def test_paired_ratios_pair_rounds_and_skip_zero_times() -> None:
    assert stats.paired_ratios([2.0, 3.0, 4.0], [1.0, 0.0, 2.0]) == [2.0, 2.0]
    assert stats.paired_ratios([2.0, 3.0], [1.0]) == [2.0]


def test_a_missing_cell_has_no_median_rather_than_zero_seconds() -> None:
    assert math.isnan(stats.median([]))


def test_interval_of_a_steady_ratio_is_tight_and_contains_it() -> None:
    top = [1.30, 1.31, 1.29, 1.30, 1.32, 1.28, 1.30, 1.31, 1.29]
    bottom = [1.0] * 9
    low, high = stats.paired_interval(top, bottom)
    assert low <= 1.30 <= high
    assert high - low < 0.03


def test_interval_of_a_noisy_ratio_is_wide() -> None:
    top = [1.0, 1.6, 1.1, 1.5, 1.2, 1.4, 1.3, 1.25, 1.35]
    low, high = stats.paired_interval(top, [1.0] * 9)
    assert high - low > 0.15


def test_intervals_are_reproducible_and_need_two_runs() -> None:
    top, bottom = [1.2, 1.4, 1.3, 1.5], [1.0, 1.1, 0.9, 1.0]
    assert stats.paired_interval(top, bottom) == stats.paired_interval(top, bottom)
    assert all(math.isnan(v) for v in stats.paired_interval([1.2], [1.0]))
    assert all(math.isnan(v) for v in stats.growth_interval([3.0], [1.0, 1.1]))


def test_growth_interval_of_a_tripled_time_is_around_three() -> None:
    small = [1.0, 1.05, 0.95, 1.02, 0.98]
    big = [3 * t for t in small]
    low, high = stats.growth_interval(big, small)
    assert 2.7 < low <= 3.0 <= high < 3.3


@pytest.mark.parametrize(
    ("interval", "bound", "noisy"),
    [((1.14, 1.51), 1.3, True), ((1.14, 1.25), 1.3, False), ((1.31, 1.50), 1.3, False), ((math.nan,) * 2, 1.3, False)],
)
def test_the_noise_note_appears_only_when_the_interval_straddles_the_bound(
    interval: tuple[float, float], bound: float, noisy: bool
) -> None:
    assert bool(stats.noise_note(interval, bound)) is noisy


def test_an_interval_is_shown_as_a_range_or_a_dash_without_one() -> None:
    assert stats.span((1.234, 1.5)) == "1.23–1.50"
    assert stats.span((7.04, 8.0), 1) == "7.0–8.0"
    assert stats.span((math.nan, math.nan)) == "–"


def test_round_trips_are_the_added_time_over_the_added_rtt() -> None:
    fast = [0.40, 0.42, 0.38, 0.41, 0.39]
    slow = [t + 7 * 0.05 for t in fast]
    estimate, (low, high) = stats.round_trips(slow, fast, 0.05)
    assert estimate == pytest.approx(7.0)
    assert low <= 7.0 <= high


def _runs(seconds: list[float]) -> list[dict[str, float]]:
    return [
        {"seconds": s, "returncode": 0, "tree_rss_mib": 50, "max_rss_mib": 50, "cpu_seconds": s / 2} for s in seconds
    ]


def test_report_from_raw_runs_shows_verdicts_intervals_and_round_trips(tmp_path: Path) -> None:
    cells = {
        ("+0 ms", 30, "no-op", "supakong"): [1.0, 1.1, 1.0],
        ("+0 ms", 30, "no-op", "paramiko"): [0.9, 0.9, 0.9],
        ("+0 ms", 30, "no-op", "pyinfra"): [1.9, 2.0, 1.8],
        ("+0 ms", 30, "no-op", "ansible"): [15.0, 16.0, 15.5],
        ("+0 ms", 1, "no-op", "supakong"): [0.40, 0.42, 0.41],
        ("+50 ms", 1, "no-op", "supakong"): [0.75, 0.77, 0.76],
    }
    data = {
        "when": "t",
        "cores": 2,
        "versions": {},
        "noop_runs": 3,
        "change_runs": 3,
        "parallel": 30,
        "sizes": [1, 30],
        "tools": ["supakong", "ansible", "pyinfra", "paramiko", "paramiko+health"],
        "setup_notes": [],
        "startup": [],
        "total_seconds": 1,
        "cells": [{"key": list(k), "runs": _runs(v)} for k, v in cells.items()],
    }
    path = tmp_path / "latest.json"
    path.write_text(json.dumps(data))
    text = bench.report(json.loads(path.read_text()))
    assert "- met: no-op within 1.3× of the paramiko loop (×1.11 of the medians" in text
    assert "- met: no-op ≥1.5× faster than pyinfra (×1.90 of the medians" in text
    assert "- met: no-op ≥10× faster than Ansible (×15.50 of the medians" in text
    assert "| +50 ms | 1 | no-op | supakong | 7.0 |" in text
