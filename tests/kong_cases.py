"""The shared table of Kong's verdicts (tests/kong_cases.yaml), for the stand-in's tests and
the validator's tests alike."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

CASES_FILE = Path(__file__).with_name("kong_cases.yaml")
#: KONG_PLUGINS of Supabase's 2026 compose (docker-compose.kong.yml), with post-function.
MODERN_PLUGINS = "request-transformer,cors,key-auth,acl,basic-auth,request-termination,ip-restriction,post-function"


@dataclass(frozen=True)
class KongCase:
    """One snippet and Kong's verdict on it for one version."""

    id: str
    source: str
    version: str
    config: str
    plugins: str
    flavor: str | None
    refused: str | None
    at: str | None
    raw: bool = False

    @property
    def text(self) -> str:
        """The file Kong reads: the snippet, with a `_format_version` unless it has one."""
        if self.raw or "_format_version" in self.config:
            return self.config
        return "_format_version: '2.1'\n" + self.config


def load_cases() -> list[KongCase]:
    """Every case, once per version it names."""
    cases = []
    for raw in yaml.safe_load(CASES_FILE.read_text()):
        for version in raw["versions"]:
            cases.append(
                KongCase(
                    id=raw["id"],
                    source=raw["source"],
                    version=str(version),
                    config=raw["config"],
                    plugins=raw.get("plugins", MODERN_PLUGINS),
                    flavor=raw.get("flavor"),
                    refused=raw.get("refused"),
                    at=raw.get("at"),
                    raw=bool(raw.get("raw")),
                )
            )
    return cases


def case_params() -> list[object]:
    """The cases as pytest parameters, named `<id>@<version>`."""
    return [pytest.param(case, id=f"{case.id}@{case.version}") for case in load_cases()]
