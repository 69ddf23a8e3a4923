"""Which sandbox VPSes the integration tests use, all derived from one setting.

``SUPAKONG_TEST_SANDBOX=name:index`` (default ``sandbox:1``, the repository inventory's
``sandbox`` host) names the main test VPS. Every other sandbox a test brings up (the
fleet's three) takes its name and index from it, so that several people (or agents) can run
the suite on one machine at once with different settings, e.g. ``sandbox-h1:110``.
"""

from __future__ import annotations

import os

from supakong.sandbox import SandboxSpec
from supakong.sandbox.inventory import spec_for

TEST_SANDBOX = os.environ.get("SUPAKONG_TEST_SANDBOX", "sandbox:1")
_NAME, _, _INDEX = TEST_SANDBOX.partition(":")
BASE_INDEX = int(_INDEX or 1)


def related_spec(suffix: str, offset: int) -> SandboxSpec:
    """Another sandbox of this test run: ``sandbox-<suffix>`` at index ``20 + offset`` for
    the default run, else ``<name>-<suffix>`` at ``<index> + offset`` (offset 1..9)."""
    if not 1 <= offset <= 9:
        raise ValueError(f"offset must be 1..9, got {offset}")
    if _NAME == "sandbox":
        return spec_for(f"sandbox-{suffix}", 20 + offset)
    return spec_for(f"{_NAME}-{suffix}", BASE_INDEX + offset)
