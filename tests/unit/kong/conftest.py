"""Shared fixtures for the offline Kong validator tests."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

FIXTURES = Path(__file__).parent / "fixtures"

# A small Supabase-shaped config that is valid on every supported target.
_MINIMAL: dict[str, Any] = {
    "_format_version": "2.1",
    "services": [
        {
            "name": "rest-v1",
            "url": "http://rest:3000/",
            "routes": [{"name": "rest-v1-all", "strip_path": True, "paths": ["/rest/v1/"]}],
            "plugins": [
                {"name": "cors"},
                {"name": "key-auth", "config": {"hide_credentials": True}},
                {"name": "acl", "config": {"hide_groups_header": True, "allow": ["anon"]}},
            ],
        },
        {
            "name": "realtime-v1-ws",
            "url": "http://realtime-dev.supabase-realtime:4000/socket",
            "routes": [{"name": "realtime-v1-ws", "strip_path": True, "paths": ["/realtime/v1/"]}],
        },
    ],
    "consumers": [{"username": "anon", "keyauth_credentials": [{"key": "anon-key"}]}],
    "acls": [{"consumer": "anon", "group": "anon"}],
}


@pytest.fixture
def upstream_text() -> str:
    """Supabase's upstream docker/volumes/api/kong.yml (2.8.1-era shape)."""
    return (FIXTURES / "supabase_upstream_kong.yml").read_text()


@pytest.fixture
def seed_text() -> str:
    """The reported user "fix" of the realtime route."""
    return (FIXTURES / "seed_user_fix.yml").read_text()


@pytest.fixture
def minimal_doc() -> Callable[[], dict[str, Any]]:
    """Factory for a fresh copy of a small valid config."""
    return lambda: copy.deepcopy(_MINIMAL)
