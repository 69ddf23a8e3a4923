"""The README and docs/ as the docs test reads them: every command shown is run or listed,
links resolve, and the README stays a page (issue #22)."""

from __future__ import annotations

import re

import pytest
from docs_console import (
    NOT_RUN,
    REPO,
    all_blocks,
    commands_outside_console_blocks,
    doc_files,
    missing_lines,
    parse_console_blocks,
)

#: Pages other branches add (zero-downtime reload, the 2026 stack, Dokploy, security); linked
#: already, they exist once those branches are merged.
PENDING_PAGES: set[str] = set()  # pages linked before they exist (none now)


def commands():
    return [command for block in all_blocks() for command in block.commands]


def test_every_command_in_a_console_block_is_run_or_listed_with_a_reason():
    strays = [f"{c.where}: {c.text}" for c in commands() if not c.runnable() and c.text not in NOT_RUN]
    assert not strays, "commands the docs test neither runs nor lists in docs_console.NOT_RUN:\n" + "\n".join(strays)


def test_commands_are_shown_in_console_blocks_only():
    found = [
        line
        for path in doc_files()
        for line in commands_outside_console_blocks(path.read_text(encoding="utf-8"), path.name)
    ]
    assert not found, "commands in a fence the docs test does not run (use ```console):\n" + "\n".join(found)
    assert commands_outside_console_blocks("```\n$ fab hosts\n```\n```sh\nfab doctor -H a\n```\n", "t.md") == [
        "t.md:2: $ fab hosts",
        "t.md:5: fab doctor -H a",
    ]


def test_every_not_run_entry_is_still_shown_somewhere():
    shown = {c.text for c in commands()}
    assert not set(NOT_RUN) - shown, f"stale NOT_RUN entries: {sorted(set(NOT_RUN) - shown)}"


def test_the_docs_show_the_adopt_walkthrough_and_the_two_commands():
    readme = [c.text for c in commands() if c.doc == "README.md"]
    for shown in ("make demo", "make test", "cd ~/gateway", "supakong deploy-kong -H my-server --check"):
        assert shown in readme
    order = [next(i for i, t in enumerate(readme) if t.startswith(p)) for p in (
        "supakong init", "supakong doctor", "supakong deploy-kong -H my-server --check",
        "supakong deploy-kong -H my-server", "supakong schedule-redeploy",
    )]  # fmt: skip
    assert order == sorted(order)


def test_the_inventory_examples_load(tmp_path):
    from supakong.inventory import load_inventory

    text = (REPO / "docs" / "inventory.md").read_text(encoding="utf-8")
    examples = re.findall(r"^```yaml\n(.*?)^```", text, flags=re.M | re.S)
    assert examples
    for index, example in enumerate(examples):
        path = tmp_path / str(index) / "inventory" / "hosts.yml"
        path.parent.mkdir(parents=True)
        path.write_text(example, encoding="utf-8")
        assert load_inventory(path).hosts, example


def test_readme_is_a_page_under_15000_characters():
    assert len((REPO / "README.md").read_text(encoding="utf-8")) < 15_000


@pytest.mark.parametrize("path", doc_files(), ids=lambda p: p.name)
def test_relative_links_point_at_files_that_exist(path):
    text = path.read_text(encoding="utf-8")
    broken = []
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
        if "://" in target:
            continue
        resolved = (path.parent / target).resolve()
        relative = str(resolved.relative_to(REPO)) if resolved.is_relative_to(REPO) else str(resolved)
        if not resolved.exists() and relative not in PENDING_PAGES:
            broken.append(target)
    assert not broken, f"{path.name}: links to missing files: {broken}"


def github_anchors(text: str) -> set[str]:
    """The anchors GitHub makes of a page's headings: lower case, punctuation dropped,
    spaces as hyphens."""
    headings = re.findall(r"^#+ (.+)$", re.sub(r"```.*?```", "", text, flags=re.S), flags=re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


@pytest.mark.parametrize("path", doc_files(), ids=lambda p: p.name)
def test_anchors_in_links_name_headings_that_exist(path):
    text = path.read_text(encoding="utf-8")
    broken = []
    for target, anchor in re.findall(r"\]\(([^)#\s]*)#([^)\s]+)\)", text):
        page = (path.parent / target).resolve() if target else path
        if page.exists() and anchor not in github_anchors(page.read_text(encoding="utf-8")):
            broken.append(f"{target}#{anchor}")
    assert not broken, f"{path.name}: links to missing headings: {broken}"


def test_output_lines_match_in_order_with_the_ellipsis_as_any_text():
    output = "deploy-kong edge-1\n  plan: replace file   + restart Kong\n  SUBSCRIBED\nRECAP\n  edge-1  changed 0.8s\n"
    assert missing_lines(["  plan: replace … Kong", "SUBSCRIBED", "edge-1 changed …"], output) == []
    assert missing_lines(["SUBSCRIBED", "plan: replace"], output) == ["plan: replace"]  # order counts
    assert missing_lines(["edge-1 … 0.8s"], "  edge-1 0.8s") == []  # the ellipsis may stand for nothing
    assert missing_lines(["CHANNEL_ERROR"], output) == ["CHANNEL_ERROR"]
    assert missing_lines(["plan: (file differs)"], output) == ["plan: (file differs)"]  # no regex


def test_a_block_parses_into_commands_with_exit_codes_and_the_reset_marker():
    text = "x\n<!-- docs-test: reset -->\n```console\n$ fab doctor -H a    # exit 1\n  ✗ x\n$ cd ~/p\n```\n"
    (block,) = parse_console_blocks(text, "t.md")
    assert block.setup == "reset" and [c.text for c in block.commands] == ["fab doctor -H a", "cd ~/p"]
    assert block.commands[0].exit_code == 1 and block.commands[0].expected == ("  ✗ x",)
    assert block.commands[0].where == "t.md:4"
    with pytest.raises(ValueError, match="t.md:1: unknown docs-test setup 'nap'"):
        parse_console_blocks("<!-- docs-test: nap -->\n```console\n$ fab hosts\n```\n", "t.md")
    with pytest.raises(ValueError, match="t.md:2: output before any"):
        parse_console_blocks("```console\norphan\n```\n", "t.md")
