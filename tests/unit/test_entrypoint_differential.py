"""The Python imitations of Supabase's 2.8-era Kong entrypoint, held to the real thing.

The entrypoint's own line (supabase/supabase@00069a4c, docker/docker-compose.yml, the kong
service's command up to ``&& /docker-entrypoint.sh kong docker-start``) runs here in bash,
the shell the compose file names, and in busybox sh, the shell of the sandbox's Kong
container and of the deploy's preflight; on a table of tricky inputs and on generated ones.
Two imitations are compared with what the shell wrote to ~/kong.yml:

* the validator's warnings (supakong.kong.shell_eval): a file it says nothing about comes
  out as it went in, and a file it warns about does not;
* doctor's expansion (supakong.eval_expansion): it answers exactly what the shell wrote,
  or None where it cannot tell; and it does answer for the files that are only text and
  ``$VARS``.

The shells run with a PATH holding ``cat`` alone, in a directory of their own, and the
generated inputs are built from tokens that name no command: the command substitutions the
entrypoint runs find nothing to run. (The 2026 entrypoint, an awk script, is not covered
here yet.)
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from supakong.eval_expansion import expand_like_eval
from supakong.kong.shell_eval import findings_for_text

ENTRYPOINT = 'eval "echo \\"$(cat ~/temp.yml)\\"" > ~/kong.yml'
SHELLS = {
    "bash": [shutil.which("bash") or "/bin/bash"],
    "busybox sh": [shutil.which("busybox") or "/bin/busybox", "sh"],
}
#: Supabase's placeholders as the container has them: values the shell must insert as they
#: are (quotes, $, backslashes and backticks in a value are not expanded again).
ENV = {
    "SUPABASE_ANON_KEY": 'eyJ.anon.$HOME`x`"q"\\n',
    "SUPABASE_SERVICE_KEY": "eyJ.service",
    "DASHBOARD_PASSWORD": "p'a$$w\"rd",
    "LUA_AUTH_EXPR": "$((headers.apikey))",
}
#: Each placeholder standing for a marker of its own: the file comes out as it went in, but
#: for the placeholders (the expansions the entrypoint is there for), replaced by markers.
SELF = {name: f"<{name}>" for name in ENV}
_NAMES = "|".join(ENV)
_PLACEHOLDER = re.compile(rf"\$(?:\{{({_NAMES})\}}|({_NAMES})(?![A-Za-z0-9_]))")

TRICKY = [
    "_format_version: '2.1'\nconsumers:\n  - username: anon\n",
    # a backslash-newline goes before any expansion: $\<newline>NAME is $NAME (found by hypothesis)
    "$\\\na",
    "key: a$\\\nSUPABASE_ANON_KEY",
    'a: "double quoted"',
    'a: "b  c" # x > y',
    "a: 'single quoted with \"inner\" quotes'",
    "a: 'it''s'",
    "a: $SUPABASE_ANON_KEY",
    "a: ${SUPABASE_SERVICE_KEY}\nb: $DASHBOARD_PASSWORD",
    "a: $LUA_AUTH_EXPR",
    "a: $UNSET_VARIABLE.",
    "a: ${UNSET_VARIABLE}",
    "a: ${UNSET:-default}",
    "a: ${SUPABASE_ANON_KEY:+set}",
    "a: ${",
    "a: ${}",
    "a: $ {x}",
    "a: $",
    "a: price in $ and $.",
    "a: '~/rest/v1/items$'",
    "a: $'x'",
    'a: $"x"',
    "a: $1 $# $? $@",
    "a: $$",
    "a: $HOME $PWD $SHLVL",
    "a: `x`",
    "a: $(x)",
    "# key-auth's `anonymous` fallback\na: b",
    "a: \\$x",
    "a: \\x \\t \\n",
    "a: 'a\\\\b'",
    'a: \\"q\\"',
    "a: \\`x\\`",
    "a: line\\\ncontinued",
    "a: ends with a backslash\\",
    "trailing newlines\n\n\n",
    "\n\nleading newlines",
    "-n",
    "-e",
    "-nE",
    "-n and more",
    "tab\tand  spaces  ",
    "unicode: héllo ✓",
]


@dataclass(frozen=True)
class Written:
    """What the entrypoint's line did with one file: its exit status and ~/kong.yml."""

    status: int
    kong_yml: str | None


@pytest.fixture(scope="module")
def bin_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("bin")
    (directory / "cat").symlink_to(shutil.which("cat") or "/bin/cat")
    return directory


def entrypoint(shell: str, text: str, env: dict[str, str], bin_dir: Path, home: Path) -> Written:
    """Run the entrypoint's line with ``text`` as ~/temp.yml in ``home``."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "temp.yml").write_text(text)
    output = home / "kong.yml"
    output.unlink(missing_ok=True)
    done = subprocess.run(
        [*SHELLS[shell], "-c", ENTRYPOINT],
        cwd=home,
        env={"PATH": str(bin_dir), "HOME": str(home), **env},
        capture_output=True,
        timeout=20,
    )
    return Written(done.returncode, output.read_text() if output.exists() else None)


def warned(text: str) -> bool:
    """Does the validator say the entrypoint will change this file?"""
    return bool(findings_for_text(text, (), "kong.yml", frozenset(ENV)))


def unchanged(text: str, written: Written) -> bool:
    """The file came out as it went in, its placeholders aside (written with :data:`SELF`;
    the entrypoint's $(cat) and echo also trim trailing newlines to one: nothing YAML reads)."""
    marked = _PLACEHOLDER.sub(lambda m: f"<{m.group(1) or m.group(2)}>", text)
    return written.status == 0 and written.kong_yml == marked.rstrip("\n") + "\n"


def held_to(shell: str, text: str, bin_dir: Path, home: Path) -> None:
    as_is = entrypoint(shell, text, SELF, bin_dir, home / "self")
    assert warned(text) is not unchanged(text, as_is), (
        f"{shell}: validator {'warns' if warned(text) else 'is silent'} but the file came out"
        f" {'unchanged' if unchanged(text, as_is) else f'as {as_is}'}"
    )
    expanded = entrypoint(shell, text, ENV, bin_dir, home / "env")
    predicted = expand_like_eval(text, ENV)
    if predicted is not None:
        assert expanded == Written(0, predicted), f"{shell}: predicted {predicted!r}, the shell wrote {expanded}"


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize("text", TRICKY)
def test_the_imitations_agree_with_the_shell_on_tricky_inputs(shell, text, bin_dir, tmp_path):
    held_to(shell, text, bin_dir, tmp_path)


def test_doctors_expansion_answers_for_text_and_placeholders(bin_dir, tmp_path):
    """None is always safe; it must still answer for what real files hold."""
    plain = [t for t in TRICKY if not re.search(r'["`]|\$[({0-9#?@$!*-]|\$(HOME|PWD|SHLVL)|\\$|^-[neE]+$', t)]
    assert len(plain) >= 15
    assert [t for t in plain if expand_like_eval(t, ENV) is None] == []


TOKENS = ["a", "b", " ", "\n", ":", "'", '"', "$", "{", "}", "(", ")", "`", "\\", "-", "#", "1", "?", "*"]
TOKENS += ["SUPABASE_ANON_KEY", "DASHBOARD_PASSWORD", "UNSET", "_x", ":-", "$$"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.lists(st.sampled_from(TOKENS), max_size=14).map("".join))
def test_the_imitations_agree_with_the_shell_on_generated_inputs(text, bin_dir, tmp_path_factory):
    home = tmp_path_factory.mktemp("gen")
    for shell in SHELLS:
        held_to(shell, text, bin_dir, home / shell.replace(" ", "-"))
