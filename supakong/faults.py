"""Named checkpoints in the deploy path, for the fault-injection tests.

``SUPAKONG_FAULT_PAUSE=<checkpoint>`` makes a run stop at that checkpoint (it writes
``$SUPAKONG_FAULT_MARKER`` and sleeps) so a test can SIGKILL it exactly there and check
that nothing is lost. Unset, a checkpoint costs one dictionary lookup.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

CHECKPOINTS = ("looked", "locked", "replacing", "committed", "restarted", "up", "verified")
#: The same for a deploy that reloads Kong through its Admin API instead of restarting it.
RELOAD_CHECKPOINTS = ("looked", "locked", "reloaded", "replacing", "committed", "marked", "verified")


def checkpoint(name: str) -> None:
    """Pause here if the fault-injection environment asks for it."""
    if os.environ.get("SUPAKONG_FAULT_PAUSE") != name:
        return
    marker = os.environ.get("SUPAKONG_FAULT_MARKER")
    if marker:
        Path(marker).write_text(f"{os.getpid()} {name}\n")
    time.sleep(float(os.environ.get("SUPAKONG_FAULT_SECONDS", "120")))
