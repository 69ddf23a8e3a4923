"""Integration tests run against the sandbox VPS: a real sshd and a real dockerd in a network
namespace, with the Kong and Realtime stand-ins as containers. They need root (CI is root);
`make test` installs the packages and the fixture brings the sandbox up."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sandbox_specs import TEST_SANDBOX, related_spec

from supakong.inventory import HostConfig, load_inventory
from supakong.report import BufferOutput
from supakong.sandbox import SandboxSpec, sandbox_reset, sandbox_up
from supakong.sandbox.inventory import spec_for, write_sandbox_inventory
from supakong.secrets import Secrets, load_secrets

REPO = Path(__file__).resolve().parents[2]
INVENTORY = REPO / "inventory" / "hosts.yml"


@pytest.fixture(scope="session")
def sandbox_spec() -> SandboxSpec:
    """The sandbox VPS, up (created once per session)."""
    if os.geteuid() != 0:
        pytest.fail("integration tests need root: they create a network namespace, sshd and dockerd")
    name, _, index = TEST_SANDBOX.partition(":")
    return sandbox_up(spec_for(name, int(index or 1)))


@pytest.fixture(scope="session")
def inventory_path(sandbox_spec: SandboxSpec, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The repository inventory for the default sandbox, else one written for this sandbox."""
    if sandbox_spec.name == "sandbox":
        return INVENTORY
    return write_sandbox_inventory(tmp_path_factory.mktemp("inventory") / "hosts.yml", [sandbox_spec])


@pytest.fixture()
def fresh_sandbox(sandbox_spec: SandboxSpec) -> SandboxSpec:
    """The sandbox in its before state: seed config, freshly created containers."""
    return sandbox_reset(sandbox_spec)


@pytest.fixture(scope="session")
def host(sandbox_spec: SandboxSpec, inventory_path: Path) -> HostConfig:
    """The sandbox host of the test inventory."""
    return load_inventory(inventory_path).host(sandbox_spec.name)


@pytest.fixture(scope="session")
def secrets(host: HostConfig) -> Secrets:
    return load_secrets(host.secrets_env_file)


@pytest.fixture()
def out() -> BufferOutput:
    return BufferOutput()


@pytest.fixture(scope="module")
def dokploy() -> SandboxSpec:
    """The Dokploy sandbox (sandbox-dokploy in the default run), from scratch for each module
    that uses it: Dokploy's seed rows and a first deploy."""
    if os.geteuid() != 0:
        pytest.fail("integration tests need root")
    return sandbox_up(related_spec("dokploy", 6), recreate=True)
