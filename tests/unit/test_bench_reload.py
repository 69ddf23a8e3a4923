"""The benchmark's change scenario with the reload path (bench/bench.py, bench/held_sockets.py):
the restarts each tool must cause, the held sockets' column and the #19 targets, from raw runs."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

# As in test_bench_stats: bench.py imports bench/sandboxes.py as `sandboxes`.
_tests_sandboxes = sys.modules.pop("sandboxes", None)
import held_sockets  # noqa: E402

import bench  # noqa: E402

if _tests_sandboxes is not None:
    sys.modules["sandboxes"] = _tests_sandboxes

TOOLS = ["supakong", "supakong-restart", "ansible", "pyinfra", "paramiko", "paramiko+health"]


@pytest.mark.parametrize(
    ("tool", "scenario", "restarts"),
    [
        ("supakong", "change", 0),
        ("supakong-restart", "change", 30),
        ("pyinfra", "change", 30),
        ("paramiko", "change", 30),
        ("supakong", "no-op", 0),
        ("supakong-restart", "no-op", 0),
    ],
)
def test_only_supakongs_change_leaves_kong_running(tool: str, scenario: str, restarts: int) -> None:
    assert bench.expected_restarts(tool, scenario, 30) == restarts


def test_the_held_socket_url_is_the_one_supabase_js_opens() -> None:
    assert (
        held_sockets.socket_url("http://10.203.31.2:8000/", "k")
        == "ws://10.203.31.2:8000/realtime/v1/websocket?apikey=k&vsn=1.0.0"
    )
    assert held_sockets.socket_url("https://api.example.com", "k").startswith("wss://api.example.com/realtime/v1/")


def _runs(seconds: list[float], dropped: int | None = None, rss: float = 50) -> list[dict[str, Any]]:
    extra = {} if dropped is None else {"held": 30.0, "dropped": float(dropped)}
    return [
        {"seconds": s, "returncode": 0, "tree_rss_mib": rss, "max_rss_mib": rss, "cpu_seconds": s / 2, "extra": extra}
        for s in seconds
    ]


def report(cells: dict[tuple[str, int, str, str], list[dict[str, Any]]]) -> str:
    data = {
        "when": "t",
        "cores": 2,
        "versions": {},
        "noop_runs": 3,
        "change_runs": 3,
        "parallel": 30,
        "sizes": [30],
        "tools": TOOLS,
        "setup_notes": [],
        "startup": [],
        "total_seconds": 1,
        "cells": [{"key": list(k), "runs": v} for k, v in cells.items()],
    }
    return bench.report(json.loads(json.dumps(data)))


def test_the_reload_change_is_held_to_pyinfra_and_the_paramiko_loop_and_to_no_dropped_socket() -> None:
    text = report(
        {
            ("+0 ms", 30, "no-op", "supakong"): _runs([1.0, 1.0, 1.0]),
            ("+0 ms", 30, "change", "supakong"): _runs([5.0, 5.2, 5.1], dropped=0),
            ("+0 ms", 30, "change", "supakong-restart"): _runs([20.0, 21.0, 20.5], dropped=30, rss=120),
            ("+0 ms", 30, "change", "pyinfra"): _runs([8.0, 8.2, 8.1], dropped=30),
            ("+0 ms", 30, "change", "paramiko"): _runs([4.5, 4.4, 4.6], dropped=30),
        }
    )
    assert "| +0 ms | 30 | change | supakong | 5.10 |" in text and "| 0/30 | ok |" in text
    assert "| 30/30 | ok |" in text  # the restarting tools drop every held socket
    assert "- met: change (reload) ≤ pyinfra's change (×0.63 of the medians" in text
    assert "- met: change (reload) within 1.3× of the paramiko loop's change (×1.13 of the medians" in text
    assert "- met: 0 dropped sockets on a change (0 of 90 held over 3 runs)" in text
    assert "- MISSED: change --restart within 1.2× of the paramiko loop, restarts included (×4.56" in text
    assert "- met: supakong: peak memory < 100 MiB (50 MiB)" in text
    assert "- MISSED: supakong-restart: peak memory < 100 MiB (120 MiB)" in text


def test_a_dropped_socket_misses_the_target_and_no_held_socket_is_not_measured() -> None:
    dropping = report(
        {
            ("+0 ms", 30, "no-op", "supakong"): _runs([1.0, 1.0, 1.0]),
            ("+0 ms", 30, "change", "supakong"): _runs([5.0, 5.2, 5.1], dropped=1),
        }
    )
    assert "- MISSED: 0 dropped sockets on a change (3 of 90 held over 3 runs)" in dropping
    unheld = report(
        {
            ("+0 ms", 30, "no-op", "supakong"): _runs([1.0, 1.0, 1.0]),
            ("+0 ms", 30, "change", "supakong"): _runs([5.0, 5.2, 5.1]),
        }
    )
    assert "- not measured: 0 dropped sockets on a change (no held sockets counted)" in unheld
