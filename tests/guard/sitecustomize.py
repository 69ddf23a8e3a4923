"""Put on PYTHONPATH by the test session: every Python process a test starts is guarded too
(see socket_guard.py)."""

import os
from pathlib import Path

if os.environ.get("SUPAKONG_TEST_SOCKET_GUARD_LOG"):
    from socket_guard import install

    install(Path(os.environ["SUPAKONG_TEST_SOCKET_GUARD_LOG"]))
