"""The benchmark's statistics: paired ratios, bootstrap intervals and round-trip estimates.

Pure functions over lists of seconds, so that the verdicts can be tested without a fleet.
A cell's runs are in round order: the tools of one round ran back to back, so round ``i`` of
two tools is a pair (the machine's slow drifts cancel out in their ratio).

On this machine the same code's median moves by several per cent from one full run to the
next, so a point estimate that lands within a few per cent of a target says little: each
ratio is shown with a bootstrap interval, and a target whose interval straddles its bound is
reported as within the noise, beside the met / MISSED of the point estimates.
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Callable, Sequence

#: Coverage of the intervals (the 5th to the 95th percentile of the resampled statistic).
LEVEL = 0.90
RESAMPLES = 2000


def median(values: Sequence[float]) -> float:
    """The median; NaN for no values (a missing cell must not pass as 0 s)."""
    return statistics.median(values) if values else float("nan")


def quotient(top: float, bottom: float) -> float:
    """``top / bottom``; NaN when ``bottom`` is 0 (a quantity a run did not record)."""
    return top / bottom if bottom else float("nan")


def paired_ratios(top: Sequence[float], bottom: Sequence[float]) -> list[float]:
    """``top[i] / bottom[i]`` for every round both have (a zero time is skipped)."""
    return [a / b for a, b in zip(top, bottom, strict=False) if b]


def _percentiles(values: list[float], level: float = LEVEL) -> tuple[float, float]:
    values.sort()
    tail = (1 - level) / 2
    return values[int(tail * (len(values) - 1))], values[round((1 - tail) * (len(values) - 1))]


def bootstrap(statistic: Callable[[Sequence[int]], float], size: int, *, seed: int = 0) -> tuple[float, float]:
    """The :data:`LEVEL` interval of ``statistic`` over resamples (with replacement) of the
    indices ``0..size-1``; seeded, so that a report is reproducible from its data."""
    if size < 2:
        return float("nan"), float("nan")
    rng = random.Random(seed)
    return _percentiles([statistic([rng.randrange(size) for _ in range(size)]) for _ in range(RESAMPLES)])


def two_sample(
    first: Sequence[float], second: Sequence[float], combine: Callable[[float, float], float], *, seed: int = 1
) -> tuple[float, float]:
    """The :data:`LEVEL` interval of ``combine(median(first), median(second))`` for two
    independent samples, each resampled on its own."""
    if len(first) < 2 or len(second) < 2:
        return float("nan"), float("nan")
    rng = random.Random(seed)

    def resampled(values: Sequence[float]) -> float:
        return median([values[rng.randrange(len(values))] for _ in values])

    return _percentiles([combine(resampled(first), resampled(second)) for _ in range(RESAMPLES)])


def paired_interval(top: Sequence[float], bottom: Sequence[float]) -> tuple[float, float]:
    """Interval of the median paired ratio, resampling whole rounds."""
    ratios = paired_ratios(top, bottom)
    return bootstrap(lambda idx: median([ratios[i] for i in idx]), len(ratios))


def growth_interval(big: Sequence[float], small: Sequence[float]) -> tuple[float, float]:
    """Interval of ``median(big) / median(small)`` (runs at two sizes are not paired)."""
    return two_sample(big, small, lambda a, b: a / b)


def _missing(interval: tuple[float, float]) -> bool:
    """True for the NaN interval of fewer than two runs."""
    return math.isnan(interval[0]) or math.isnan(interval[1])


def span(interval: tuple[float, float], digits: int = 2) -> str:
    """``low–high``, or "–" without an interval (fewer than two runs)."""
    low, high = interval
    return "–" if _missing(interval) else f"{low:.{digits}f}–{high:.{digits}f}"


def noise_note(interval: tuple[float, float], bound: float) -> str:
    """ "" when the interval lies on one side of ``bound``; else a note that the point
    estimate's verdict is within this machine's run-to-run noise."""
    low, high = interval
    if _missing(interval):
        return ""
    return "; within the noise: the interval straddles the target" if low <= bound <= high else ""


def round_trips(slow: Sequence[float], fast: Sequence[float], added_rtt: float) -> tuple[float, tuple[float, float]]:
    """Round trips a run waits for, estimated from its times with and without ``added_rtt``
    seconds of round-trip time: the difference of the medians over the RTT, and its interval."""
    estimate = (median(slow) - median(fast)) / added_rtt
    return estimate, two_sample(slow, fast, lambda a, b: (a - b) / added_rtt, seed=2)
