"""Shared test setup: never let anything reach a host outside the sandbox."""

import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

GUARD_DIR = Path(__file__).resolve().parent / "guard"
sys.path.insert(0, str(GUARD_DIR))
from socket_guard import LOG_ENV, install  # noqa: E402 - found through the line above

pytest_plugins = ("pytester",)  # the socket guard's own test runs the suite's conftest

# Belt and braces with the Makefile: every host a test names must be a sandbox host.
os.environ.setdefault("SUPAKONG_HOST_ALLOWLIST", "sandbox*")

# The socket guard, in this process and (through sitecustomize.py) in every Python process a
# test starts: a connection outside loopback and the sandbox network fails the test.
_GUARD_LOG = Path(tempfile.mkdtemp(prefix="supakong-socket-guard-")) / "refused.log"
_GUARD_LOG.touch()
os.environ[LOG_ENV] = str(_GUARD_LOG)
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(GUARD_DIR), os.environ.get("PYTHONPATH")]))
install(_GUARD_LOG)


@pytest.fixture(autouse=True)
def socket_guard(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail the test if it (or a process it started) tried to connect outside this machine
    and the sandbox network; the connection itself was refused."""
    request.node.guard_offset = _GUARD_LOG.stat().st_size
    yield
    refused = _refused_since(request.node)
    if refused:
        pytest.fail(
            f"{request.node.nodeid} tried to connect outside loopback and the sandbox network:\n  "
            + "\n  ".join(refused),
            pytrace=False,
        )


def pytest_sessionstart(session):  # noqa: ANN001, ANN201 - pytest's hook signature
    # A second early: file times come from the kernel's coarser clock.
    session.config.supakong_started = time.time() - 1.0


def pytest_sessionfinish(session, exitstatus):  # noqa: ANN001, ANN201 - pytest's hook signature
    """Remove the compiled templates this run left in Jinja2's bytecode cache: most tests
    render templates from their own tmp_path, each a cache file nobody will read again."""
    from supakong.render import bytecode_cache

    shutil.rmtree(_GUARD_LOG.parent, ignore_errors=True)  # its refusals failed their tests already
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


@pytest.fixture()
def refused_connections(request: pytest.FixtureRequest) -> Callable[[], list[str]]:
    """For a test that expects the guard to refuse: the refusals logged since the last call
    (or the test's start), which then no longer fail the test."""
    return lambda: _refused_since(request.node)


def _refused_since(node: pytest.Item) -> list[str]:
    with _GUARD_LOG.open(encoding="utf-8") as fh:
        fh.seek(node.guard_offset)  # type: ignore[attr-defined]
        refused = fh.read().splitlines()
        node.guard_offset = fh.tell()  # type: ignore[attr-defined]
    return refused
