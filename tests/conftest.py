"""Shared test setup: never let anything reach a host outside the sandbox."""

import os
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
    from supakong.render import bytecode_cache

    started = getattr(session.config, "supakong_started", None)
    cache = bytecode_cache()
    if started is None or cache is None:
        return
    for path in Path(cache.directory).glob(cache.pattern % "*"):
        try:
            if path.stat().st_mtime >= started:
                path.unlink()
        except OSError:
            pass
