"""What Supabase's 2.8-era Kong entrypoint writes, where Python can tell without a shell.

The compose file starts Kong with ``bash -c 'eval "echo \\"$(cat ~/temp.yml)\\"" >
~/kong.yml && /docker-entrypoint.sh kong docker-start'`` (supabase/supabase@00069a4c,
docker/docker-compose.yml): the mounted file goes through ``$(cat …)`` (trailing newlines
dropped), then into the double-quoted argument of ``echo`` (one newline added). Inside
double quotes bash expands ``$NAME`` and ``${NAME}`` (unset: empty), removes the backslash
of ``\\$``, ``\\```, ``\\"``, ``\\\\`` and of a backslash-newline (with the newline), and
keeps every other character. :func:`expand_like_eval` does exactly that and nothing more;
where the shell would do something else (run a command, end the quoting at an unescaped
``"`` and split words, read a parameter only the shell knows) it answers None instead of a
guess. ``tests/unit/test_entrypoint_differential.py`` holds it to bash and busybox sh
running the entrypoint's own line.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BRACED = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
#: Removed before these inside double quotes (bash(1), QUOTING).
_ESCAPABLE = frozenset('$`"\\')
#: ``$`` followed by one of these is a special parameter ($1, $$, $?, …).
_SPECIAL = frozenset("0123456789@*#?$!-")
#: Variables the shell sets itself (bash and busybox ash): not in the container's env, so
#: their values cannot be told from it.
SHELL_VARIABLES = frozenset(
    "_ HOME PWD OLDPWD SHLVL UID EUID PPID HOSTNAME HOSTTYPE MACHTYPE OSTYPE RANDOM SRANDOM"
    " SECONDS LINENO IFS PS1 PS2 PS3 PS4 OPTIND OPTARG OPTERR HISTCMD HISTFILE HISTSIZE"
    " HISTFILESIZE DIRSTACK GROUPS FUNCNAME EPOCHSECONDS EPOCHREALTIME COLUMNS LINES PATH"
    " SHELL SHELLOPTS PIPESTATUS TERM MAIL MAILCHECK ENV".split()
)
#: An argument echo takes as its options (bash and busybox): the file alone would be one.
_ECHO_OPTIONS = re.compile(r"-[neE]+")


def expand_like_eval(text: str, env: Mapping[str, str]) -> str | None:
    """The file the entrypoint writes from ``text`` with the container's ``env``, or None
    where only running the shell could tell."""
    body = _join_continued_lines(text.rstrip("\n"))
    if _ECHO_OPTIONS.fullmatch(body):
        return None
    out: list[str] = []
    i = 0
    while i < len(body):
        char = body[i]
        if char == "\\":
            following = body[i + 1 : i + 2]
            if not following:
                return None  # it escapes the entrypoint's closing quote: the eval fails
            out.append(following if following in _ESCAPABLE else "\\" + following)
            i += 2
            continue
        if char in '`"':
            return None  # a command substitution, or the end of the quoted argument
        if char == "$":
            value, used = _parameter(body[i + 1 :], env)
            if value is None:
                return None
            out.append(value)
            i += 1 + used
            continue
        out.append(char)
        i += 1
    return "".join(out) + "\n"


def _join_continued_lines(body: str) -> str:
    """``body`` without its backslash-newlines: the shell removes them while it reads the
    word, before any expansion, so ``$\\<newline>NAME`` is ``$NAME`` (an escaped backslash
    before a newline is kept, with the newline)."""
    out: list[str] = []
    i = 0
    while i < len(body):
        pair = body[i : i + 2]
        if pair == "\\\n":
            i += 2
            continue
        out.append(pair if body[i] == "\\" else body[i])
        i += len(pair) if body[i] == "\\" else 1
    return "".join(out)


def _parameter(rest: str, env: Mapping[str, str]) -> tuple[str | None, int]:
    """What ``$`` followed by ``rest`` becomes, and how many characters of ``rest`` it used."""
    if match := _NAME.match(rest):
        name = match.group()
    elif match := _BRACED.match(rest):
        name = match.group(1)
    elif rest[:1] in ("{", "(") or (rest and rest[0] in _SPECIAL):
        return None, 0  # ${…} with an operator, $(…), $1, $$, …
    else:
        return "$", 0  # a lone dollar stays
    if name in env:
        return env[name], match.end()
    if name in SHELL_VARIABLES or name.startswith(("BASH", "COMP_")):
        return None, 0
    return "", match.end()
