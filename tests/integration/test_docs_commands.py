"""Every command the README and docs/ show in a ``console`` block, run against the sandbox,
with the output lines shown checked (issue #22: the docs cannot drift from the code).

One test per block, in document order (README first, then docs/ by name), on one shared
sandbox: a block marked ``<!-- docs-test: reset -->`` starts from the sandbox's before
state, the others from where the blocks before them left it. Commands run as a user types
them: ``fab`` in the checkout (its inventory: the repository's, with the test's sandbox in
place of the ``sandbox`` host), ``supakong`` anywhere, ``cd`` between them. What the docs
name but this machine does not have (your server, your project directory) is substituted by
:func:`substitutions`; what cannot run here is listed in ``docs_console.NOT_RUN``.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from docs_console import ConsoleBlock, ConsoleCommand, all_blocks, missing_lines

from supakong.sandbox import SandboxSpec, sandbox_reset
from supakong.sandbox.inventory import write_sandbox_inventory

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
BLOCKS = [block for block in all_blocks() if any(c.runnable() for c in block.commands)]

Substitute = Callable[[str], str]


def substitutions(spec: SandboxSpec, project: Path, inventory: Path | None) -> list[tuple[str, str]]:
    """(regular expression, replacement) pairs applied to each command and each output line
    shown: the names the docs use for a user's server and directories, and the repository
    sandbox's names, become this test's sandbox and temporary directory."""
    pairs = [
        (re.escape("root@203.0.113.7"), f"{spec.ssh_alias} --ssh-config {spec.ssh_config_path}"),
        (re.escape("~/gateway"), str(project)),
        (r"(?<![\w-])my-server(?![\w-])", spec.name),
        (re.escape("sandbox-supabase-"), f"{spec.name}-supabase-"),
        (re.escape("10.203.1.2"), spec.vps_addr),
        (re.escape("/srv/supakong-sandbox/sandbox/"), f"/srv/supakong-sandbox/{spec.name}/"),
        # the host `sandbox`; not sandbox-up, 'sandbox*' or a path such as supakong/sandbox/
        (r"(?<![\w/-])sandbox(?![\w*/-])", spec.name),
    ]
    if inventory is not None:  # errors name the inventory file SUPAKONG_INVENTORY points at
        pairs.append((re.escape("inventory/hosts.yml:"), f"{inventory}:"))
    return pairs


def substituter(pairs: list[tuple[str, str]]) -> Substitute:
    def apply(text: str) -> str:
        for pattern, replacement in pairs:
            text = re.sub(pattern, lambda _m, r=replacement: r, text)  # type: ignore[misc]
        return text

    return apply


def docs_inventory(spec: SandboxSpec, directory: Path) -> Path | None:
    """The repository's inventory with the test's sandbox as the `sandbox` group's host (None:
    the test's sandbox is the repository's own, use the inventory as it is)."""
    if spec.name == "sandbox":
        return None
    written = yaml.safe_load(write_sandbox_inventory(directory / "written" / "hosts.yml", [spec]).read_text())
    host = written["all"]["children"]["sandboxes"]["hosts"][spec.name]
    shutil.copytree(REPO / "inventory", directory / "inventory")
    path = directory / "inventory" / "hosts.yml"
    inventory = yaml.safe_load(path.read_text())
    inventory["all"]["children"]["sandbox"]["hosts"] = {spec.name: host}
    path.write_text(yaml.safe_dump(inventory, sort_keys=False))
    return path


@dataclass
class Shell:
    """A user's shell: a working directory that ``cd`` changes, the sandbox fence, and the
    test's inventory while in the checkout."""

    inventory: Path | None
    substitute: Substitute
    cwd: Path = REPO
    ran: list[str] = field(default_factory=list)

    def run(self, command: ConsoleCommand) -> subprocess.CompletedProcess[str] | None:
        words = shlex.split(self.substitute(command.text), comments=True)
        assignments = {}
        while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", words[0]):
            name, _, value = words.pop(0).partition("=")
            assignments[name] = value
        if words[0] == "cd":
            self.cwd = (self.cwd / words[1]).resolve()
            assert self.cwd.is_dir(), f"{command.where}: cd {words[1]}: no such directory"
            return None
        env = {k: v for k, v in os.environ.items() if k not in ("SUPAKONG_INVENTORY",)}
        env["SUPAKONG_HOST_ALLOWLIST"] = "sandbox*"
        if self.cwd == REPO and self.inventory is not None:
            env["SUPAKONG_INVENTORY"] = str(self.inventory)
        env.update(assignments)
        argv = [str(BIN / words[0]), *words[1:]]
        self.ran.append(shlex.join(words))
        return subprocess.run(argv, cwd=self.cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def shell(sandbox_spec: SandboxSpec, tmp_path_factory: pytest.TempPathFactory) -> Shell:
    root = tmp_path_factory.mktemp("docs")
    inventory = docs_inventory(sandbox_spec, root)
    return Shell(inventory, substituter(substitutions(sandbox_spec, root / "gateway", inventory)))


@pytest.mark.parametrize("block", BLOCKS, ids=[f"{b.doc}:{b.line}" for b in BLOCKS])
def test_the_commands_of_a_console_block_print_what_the_docs_show(
    block: ConsoleBlock, shell: Shell, sandbox_spec: SandboxSpec
) -> None:
    if block.reset:
        sandbox_reset(sandbox_spec)
    shell.cwd = REPO  # a `cd` holds for the rest of its block
    for command in block.commands:
        if not command.runnable():
            continue
        proc = shell.run(command)
        if proc is None:
            continue
        output = proc.stdout + proc.stderr
        shown = f"{command.where}: $ {command.text}\n--- output ---\n{output[-6000:]}"
        assert proc.returncode == command.exit_code, f"exit {proc.returncode}, docs say {command.exit_code}\n{shown}"
        missing = missing_lines([shell.substitute(line) for line in command.expected], output)
        assert not missing, "lines shown but not printed:\n  " + "\n  ".join(missing) + f"\n{shown}"
