"""Shared test setup: never let anything reach a host outside the sandbox."""

import os

# Belt and braces with the Makefile: every host a test names must be a sandbox host.
os.environ.setdefault("SUPAKONG_HOST_ALLOWLIST", "sandbox*")
