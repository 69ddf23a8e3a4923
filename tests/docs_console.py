"""The commands the README and docs/ show, as data: parsed from their ``console`` blocks.

A block is fenced with ```` ```console ````; each ``$ `` line is a command, and the lines
after it (up to the next ``$ ``) are output that the command must print, in that order. In
an output line ``…`` stands for any text. A command may end with ``# exit N`` (the exit code
it must return; 0 when absent). ``<!-- docs-test: NAME -->`` on the line before a block
names what the test does to the sandbox first (:data:`SETUPS`).

Pure: ``tests/unit/test_docs_console.py`` checks that every command is either run by
``tests/integration/test_docs_commands.py`` or listed in :data:`NOT_RUN` with the reason, so
that the docs cannot show a command nobody runs.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SETUP_MARKER = re.compile(r"<!-- docs-test: ([\w-]+) -->")
#: What a block's marker does before it runs (``tests/integration/test_docs_commands.py``).
SETUPS = {
    "reset": "put the sandbox back in its before state: the seed config, fresh containers",
    "kong-file-edited": "append the line `# edited in Dokploy's file mount` to Kong's file on the host, "
    "in place (same inode), as Dokploy's mount update writes it; Kong is not reloaded",
}
#: The programs the docs test runs (from the virtualenv of the test run), and ``cd``.
RUNNABLE = ("fab", "supakong", "cd")

#: Commands shown in the docs that the test does not run, each with the reason.
NOT_RUN: dict[str, str] = {
    "make demo": "runs apt-get and uses the repository's `sandbox` host (index 1), which full test runs share; "
    "its steps are the fab commands of the README block after it, which are run",
    "make test": "the whole suite, of which this test is part",
    "make bench": "about 40 minutes on up to 30 sandboxes; its figures are kept in bench/",
    "python3 -m venv ~/supakong && ~/supakong/bin/pip install .": "reaches the package registry; "
    "tests/integration/test_adopt.py installs a wheel into a fresh virtualenv and adopts a sandbox with it",
    "supakong schedule-redeploy --every 15m --install --run-as deploy": "writes system units to /etc/systemd/system; "
    "tests/unit/test_schedule.py checks the units with systemd-analyze and installs them under --root",
    "fab sandbox-down --purge": "would tear down the sandbox the rest of the test runs on",
}

_EXIT = re.compile(r"\s+#\s*exit\s+(\d+)\s*$")
_ENV = re.compile(r"[A-Z_][A-Z0-9_]*=")


@dataclass(frozen=True)
class ConsoleCommand:
    """One ``$`` line of a console block and the output lines shown after it."""

    doc: str  # the file, relative to the repository
    line: int  # 1-based line of the ``$`` in that file
    text: str  # as written, without ``$ `` and without the ``# exit N`` comment
    exit_code: int
    expected: tuple[str, ...]

    @property
    def where(self) -> str:
        return f"{self.doc}:{self.line}"

    def program(self) -> str:
        """The program the command starts (after any ``NAME=value`` assignments)."""
        words = [w for w in shlex.split(self.text, comments=True) if not _ENV.match(w)]
        return words[0] if words else ""

    def runnable(self) -> bool:
        return self.text not in NOT_RUN and self.program() in RUNNABLE


@dataclass(frozen=True)
class ConsoleBlock:
    doc: str
    line: int
    setup: str | None  # a key of SETUPS
    commands: tuple[ConsoleCommand, ...]


def doc_files(repo: Path = REPO) -> list[Path]:
    """README.md, then docs/*.md in name order."""
    return [repo / "README.md", *sorted((repo / "docs").glob("*.md"))]


def parse_console_blocks(text: str, doc: str) -> list[ConsoleBlock]:
    """Every ``console`` block of one markdown file; an output line before any ``$`` line is an
    error (the block shows output of no command)."""
    blocks: list[ConsoleBlock] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        if lines[i].strip() != "```console":
            i += 1
            continue
        start = i + 1
        previous = next((lines[j].strip() for j in range(i - 1, -1, -1) if lines[j].strip()), "")
        i += 1
        body: list[tuple[int, str]] = []
        while i < len(lines) and lines[i].strip() != "```":
            body.append((i + 1, lines[i]))
            i += 1
        marker = SETUP_MARKER.fullmatch(previous)
        setup = marker.group(1) if marker else None
        if setup is not None and setup not in SETUPS:
            raise ValueError(f"{doc}:{start - 1}: unknown docs-test setup {setup!r} (known: {', '.join(SETUPS)})")
        blocks.append(ConsoleBlock(doc, start, setup, tuple(_commands(body, doc))))
        i += 1
    return blocks


def _commands(body: Sequence[tuple[int, str]], doc: str) -> Iterable[ConsoleCommand]:
    current: tuple[int, str, int] | None = None
    expected: list[str] = []
    for number, row in body:
        if row.startswith("$ "):
            if current is not None:
                yield ConsoleCommand(doc, current[0], current[1], current[2], tuple(expected))
            command = row[2:].strip()
            found = _EXIT.search(command)
            code = int(found.group(1)) if found else 0
            current = (number, _EXIT.sub("", command).strip(), code)
            expected = []
        elif row.strip():
            if current is None:
                raise ValueError(f"{doc}:{number}: output before any `$ ` command in a console block")
            expected.append(row)
    if current is not None:
        yield ConsoleCommand(doc, current[0], current[1], current[2], tuple(expected))


_COMMAND_LIKE = re.compile(r"^(\$ |(fab|supakong|make) )")


def commands_outside_console_blocks(text: str, doc: str) -> list[str]:
    """Lines of other fenced blocks that look like a command to type (``$ …``, ``fab …``,
    ``supakong …``, ``make …``): they belong in a console block, where the test runs them."""
    found: list[str] = []
    fence: str | None = None
    for number, row in enumerate(text.splitlines(), 1):
        if row.strip().startswith("```"):
            fence = row.strip()[3:] if fence is None else None
            continue
        if fence is not None and fence != "console" and _COMMAND_LIKE.match(row.strip()):
            found.append(f"{doc}:{number}: {row.strip()}")
    return found


def all_blocks(repo: Path = REPO) -> list[ConsoleBlock]:
    blocks: list[ConsoleBlock] = []
    for path in doc_files(repo):
        blocks.extend(parse_console_blocks(path.read_text(encoding="utf-8"), str(path.relative_to(repo))))
    return blocks


def _normal(line: str) -> str:
    return " ".join(line.split())


def line_pattern(expected: str) -> re.Pattern[str]:
    """An output line as shown: whitespace runs are one space, ``…`` is any text (with the
    spaces around it: ``a … b`` matches ``a b``)."""
    parts = [re.escape(part.strip()) for part in _normal(expected).split("…")]
    return re.compile(".*?".join(parts))


def missing_lines(expected: Sequence[str], output: str) -> list[str]:
    """The expected lines not found in ``output``, in order: each must match a line after the
    line the previous one matched."""
    rows = [_normal(row) for row in output.splitlines()]
    position = 0
    missing: list[str] = []
    for wanted in expected:
        pattern = line_pattern(wanted)
        for index in range(position, len(rows)):
            if pattern.search(rows[index]):
                position = index + 1
                break
        else:
            missing.append(wanted)
    return missing
