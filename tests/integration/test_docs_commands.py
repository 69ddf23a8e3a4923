"""Every command the README and docs/ show in a ``console`` block, run against the sandbox,
with the output lines shown checked (issue #22: the docs cannot drift from the code).

One test per block, in document order (README first, then docs/ by name), on one shared
sandbox: a block marked ``<!-- docs-test: reset -->`` starts from the sandbox's before
state (``docs_console.SETUPS`` lists the other setups), the others from where the blocks
before them left it. Commands run as a user types
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
from sandbox_specs import related_spec

from supakong.sandbox import SandboxSpec, sandbox_reset
from supakong.sandbox.inventory import write_sandbox_inventory

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
BLOCKS = [block for block in all_blocks() if any(c.runnable() for c in block.commands)]

Substitute = Callable[[str], str]


def modern_spec() -> SandboxSpec:
    """The test run's 2026 sandbox (the repository's `sandbox-modern` in the default run);
    the docs' own `fab sandbox-up --name sandbox-modern` brings it up."""
    return related_spec("modern", 5)


def substitutions(spec: SandboxSpec, project: Path, inventory: Path | None) -> list[tuple[str, str]]:
    """(regular expression, replacement) pairs applied to each command and each output line
    shown: the names the docs use for a user's server and directories, and the repository
    sandboxes' names, become this test's sandboxes and temporary directory."""
    modern = modern_spec()
    pairs = [
        (r"--name sandbox-modern(?![\w-])", f"--name {modern.name}:{modern.index}"),
        (r"(?<![\w/-])sandbox-modern(?![\w-])", modern.name),
        (re.escape(f"10.203.{spec_for_index('sandbox-modern')}.2"), modern.vps_addr),
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
    if spec.name != "sandbox":  # the sandbox tasks act on the repository's sandbox by default
        for task in ("sandbox-up", "sandbox-reset"):
            pairs.insert(0, (rf"^fab {task}$", f"fab {task} --name {spec.name}:{spec.index}"))
    return pairs


def substituter(pairs: list[tuple[str, str]]) -> Substitute:
    def apply(text: str) -> str:
        for pattern, replacement in pairs:
            text = re.sub(pattern, lambda _m, r=replacement: r, text)  # type: ignore[misc]
        return text

    return apply


def spec_for_index(name: str) -> int:
    """The index of a sandbox host of the repository inventory (its public_url's 10.203.N.2)."""
    inventory = yaml.safe_load((REPO / "inventory" / "hosts.yml").read_text())
    url = inventory["all"]["children"]["sandbox"]["hosts"][name]["public_url"]
    return int(re.fullmatch(r"http://10\.203\.(\d+)\.2:\d+", url).group(1))  # type: ignore[union-attr]


def docs_inventory(spec: SandboxSpec, directory: Path) -> Path | None:
    """The repository's inventory with the test's sandboxes in place of `sandbox` and
    `sandbox-modern` (None: they are the repository's own, use the inventory as it is)."""
    if spec.name == "sandbox":
        return None
    replaced = {"sandbox": spec, "sandbox-modern": modern_spec()}
    written = write_sandbox_inventory(directory / "written" / "hosts.yml", list(replaced.values()))
    hosts = yaml.safe_load(written.read_text())["all"]["children"]["sandboxes"]["hosts"]
    shutil.copytree(REPO / "inventory", directory / "inventory")
    path = directory / "inventory" / "hosts.yml"
    inventory = yaml.safe_load(path.read_text())
    group = inventory["all"]["children"]["sandbox"]["hosts"]
    inventory["all"]["children"]["sandbox"]["hosts"] = {
        (replaced[name].name if name in replaced else name): (
            hosts[replaced[name].name] if name in replaced else values
        )
        for name, values in group.items()
    }
    path.write_text(yaml.safe_dump(inventory, sort_keys=False))
    return path


def edit_in_place(path: Path, line: bytes) -> None:
    """Append ``line`` to the file by truncating and rewriting it (the inode stays), as
    Dokploy's ``mounts.update`` writes a file mount since v0.24.6; Kong is not told."""
    content = path.read_bytes()
    with path.open("r+b") as fh:
        fh.truncate(0)
        fh.write(content + line)


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
    if block.setup == "reset":
        sandbox_reset(sandbox_spec)
    elif block.setup == "kong-file-edited":
        edit_in_place(sandbox_spec.kong_config_path, b"# edited in Dokploy's file mount\n")
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
