"""Shared test setup: never let anything reach a host outside the sandbox."""

import os
import tempfile
import time
from pathlib import Path

# Belt and braces with the Makefile: every host a test names must be a sandbox host.
os.environ.setdefault("SUPAKONG_HOST_ALLOWLIST", "sandbox*")


def pytest_sessionstart(session):  # noqa: ANN001, ANN201 - pytest's hook signature
    # A second early: file times come from the kernel's coarser clock.
    session.config.supakong_started = time.time() - 1.0


def pytest_sessionfinish(session, exitstatus):  # noqa: ANN001, ANN201 - pytest's hook signature
    """Remove the compiled templates this run left in Jinja2's bytecode cache: most tests
    render templates from their own tmp_path, each a cache file nobody will read again."""
    started = getattr(session.config, "supakong_started", None)
    cache = Path(tempfile.gettempdir()) / f"_jinja2-cache-{os.getuid()}"
    if started is None or not cache.is_dir():
        return
    for path in cache.glob("__supakong_*.cache"):
        try:
            if path.stat().st_mtime >= started:
                path.unlink()
        except OSError:
            pass
