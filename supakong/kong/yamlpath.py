"""YAML paths as findings print them: `services[1].routes[0].protocols[2]`."""

from __future__ import annotations


def child(path: str, key: object) -> str:
    """Path of mapping entry `key` under `path` (the root has the empty path)."""
    return f"{path}.{key}" if path else str(key)


def item(path: str, index: int) -> str:
    """Path of sequence element `index` under `path`."""
    return f"{path}[{index}]"
