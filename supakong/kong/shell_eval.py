"""What the ``eval`` entrypoint of Supabase's Kong 2.8.1 compose does to the file.

That entrypoint runs ``eval "echo \\"$(cat ~/temp.yml)\\"" > ~/kong.yml``
(supabase/supabase:docker/docker-compose.yml until 2026-03): bash expands the whole file
inside double quotes. So `$VAR`, `${VAR}`, `$(cmd)` and backticks are expanded, double quotes
disappear (a double-quoted YAML scalar loses its quotes and may change type) and a backslash
before $ ` " or \\ is removed. Only targets whose expansion is ``eval`` get these checks;
the variables the container has (the target's ``env_names``) are meant to be expanded.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from .findings import Finding, error, warning
from .yaml_source import ScalarSpan
from .yamlpath import child, item

_SHELL_RE = re.compile(
    r"\$\{(?P<braced>[^}]*)\}?"  # ${VAR}, ${VAR:-x}
    r"|\$(?P<name>[A-Za-z_][A-Za-z0-9_]*)"  # $VAR
    r"|\$(?P<special>[0-9@*#?$!-])"  # $1, $$, ...
    r"|(?P<command>\$\(|`)"  # $(cmd), `cmd`
    r"|(?P<quote>\")"
    r"|(?P<backslash>\\[\\$`\"\n])"
)
_REASONS = {
    "variable": "{token} becomes the kong container's variable of that name, or nothing if it has none",
    "modern": "{token} is set only by Supabase's kong-entrypoint.sh of Kong 3.9, so here it becomes empty",
    "command": "{token} runs a shell command",
    "special": "{token} is a shell parameter",
    "quote": "double quotes are removed",
    "backslash": "the backslash of {token!r} is removed",
}
_HINT = (
    "use single-quoted YAML scalars instead of double quotes, avoid backticks and write a "
    "literal $ as \\$; or move to Supabase's kong-entrypoint.sh (docker/volumes/api/ in "
    "supabase/supabase), which only substitutes $NAMES"
)


@dataclass(frozen=True)
class ShellIssue:
    """One place the entrypoint's shell expansion would change the text."""

    offset: int
    kind: str
    token: str


def shell_issues(text: str, known: frozenset[str]) -> list[ShellIssue]:
    """Find everything bash would expand or strip in `text`, except the `known` variables."""
    issues = []
    for match in _SHELL_RE.finditer(text):
        kind = _issue_kind(match, known)
        if kind is not None:
            issues.append(ShellIssue(match.start(), kind, match.group(0)))
    return issues


def _issue_kind(match: re.Match[str], known: frozenset[str]) -> str | None:
    braced, name = match.group("braced"), match.group("name")
    if braced is not None:  # a known variable only as ${NAME} (${NAME:+x} is another value)
        variable = re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", braced)
        if variable and variable.group(0) in known and match.group(0).endswith("}"):
            return None
        return "variable"
    if name is not None:
        return None if name in known else "variable"
    for kind in ("special", "command", "quote", "backslash"):
        if match.group(kind) is not None:
            return kind
    return None


# Names only the 2026 stack defines (docker-compose.kong.yml and kong-entrypoint.sh).
_MODERN_NAMES = re.compile(
    r"\$\{?(LUA_\w+|WELL_KNOWN_OAUTH_PATH|SUPABASE_(PUBLISHABLE|SECRET)_KEY|\w+_KEY_ASYMMETRIC|JWT_ISSUER)\b"
)


def _reason(issue: ShellIssue) -> str:
    kind = "modern" if issue.kind == "variable" and _MODERN_NAMES.match(issue.token) else issue.kind
    return _REASONS[kind].format(token=issue.token)


def _message(what: str, issues: list[ShellIssue]) -> str:
    reasons = dict.fromkeys(_reason(i) for i in issues)
    return (
        f"{what} will be changed by the kong container's entrypoint, which expands the file with "
        f"a shell eval: {'; '.join(reasons)}"
    )


def _whole_file(text: str, source: str) -> list[Finding]:
    """What the entrypoint's `echo "$(cat …)"` does to the file as a whole: a last odd
    backslash escapes the closing quote (the eval fails, Kong does not start); a file that
    is only `-n`/`-e`/`-E` is taken as echo's option (Kong gets an empty file)."""
    body = text.rstrip("\n")
    where = f"{source}:{body.count(chr(10)) + 1}:{len(body) - body.rfind(chr(10))}"
    if (len(body) - len(body.rstrip("\\"))) % 2:
        return [
            error(
                where,
                "the file ends with a backslash: it escapes the closing quote of the eval in Supabase's kong"
                " entrypoint, which then fails, and Kong does not start",
                "remove the last backslash (a newline after it does not help: $(cat) drops it)",
            )
        ]
    if re.fullmatch(r"-[neE]+", body):
        return [error(where, f"the whole file is {body!r}: the entrypoint's echo takes it as its option", "")]
    return []


def findings_for_text(text: str, spans: tuple[ScalarSpan, ...], source: str, known: frozenset[str]) -> list[Finding]:
    """Shell-expansion warnings for raw kong.yml text, mapped to YAML paths where possible;
    outside scalars (comments), one warning per line at `<source>:line:col`; then what the
    entrypoint does to the file as a whole."""
    grouped: dict[str, list[ShellIssue]] = {}
    locations: dict[str, str] = {}
    for issue in shell_issues(text, known):
        key, location = _locate(issue.offset, text, spans, source)
        grouped.setdefault(key, []).append(issue)
        locations.setdefault(key, location)
    code_lines = {text.count("\n", 0, offset) + 1 for offset in shell_code_offsets(text)}
    findings = []
    for key, issues in grouped.items():
        if key == locations[key]:
            findings.append(_finding(key, _message("this value", issues), issues))
        else:  # a comment: Kong never reads it, only what the shell would run there matters
            line = int(key.rsplit(":", 1)[1])
            findings.append(_comment_finding(locations[key], issues, runs=line in code_lines))
    return findings + _whole_file(text, source)


#: Characters the shell takes as plain text where a double quote leaves them outside the
#: eval's quoting (anything else there is shell syntax: ``;``, ``|``, ``>``, ``(``, a newline…).
_INERT = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.,:/@%+=- ")


def shell_code_offsets(text: str) -> list[int]:
    """Offsets of the characters that the file's double quotes leave outside the eval's
    quoted argument and that the shell would act on (``x"; touch /pwn; echo "``)."""
    found, inside, i = [], True, 0
    while i < len(text):
        char = text[i]
        if char == "\\":
            i += 2  # escaped: literal inside the quotes and outside them
            continue
        if char == '"':
            inside = not inside
        elif not inside and char not in _INERT:
            found.append(i)
        i += 1
    return found


def _comment_finding(location: str, issues: list[ShellIssue], *, runs: bool) -> Finding:
    """A comment's issues: an error where the shell would run something (a command, or text
    a double quote leaves outside the quoting that is shell syntax), else a warning."""
    message = _message("this line", issues)
    if any(issue.kind == "command" for issue in issues) or runs:
        return _finding(location, message, issues)
    return warning(location, message, _HINT)


def _finding(path: str, message: str, issues: list[ShellIssue]) -> Finding:
    """Everything the entrypoint's eval would do to the file is an error: a command
    substitution ($(…) or a backtick) runs as root in the Kong container; a double quote ends
    the eval's quoting, so what follows it is shell code (``x"; touch /pwn; echo "``); a
    backslash escapes that quoting; a ``$NAME`` the container does not hold silently becomes
    empty (``pa$word`` → ``pa``). Only the container's own variables are meant."""
    if any(issue.kind == "command" for issue in issues):
        return error(path, message, "remove $( and backticks: the entrypoint would run them as a command")
    if any(issue.kind == "quote" for issue in issues):
        message += ", and the text after a double quote is run as shell code"
    return error(path, message, _HINT)


def _locate(offset: int, text: str, spans: tuple[ScalarSpan, ...], source: str) -> tuple[str, str]:
    """(grouping key, reported path) of an offset: the scalar's YAML path, else the line."""
    for span in spans:
        if span.start <= offset < span.end:
            return span.path, span.path
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return f"{source}:{line}", f"{source}:{line}:{column}"


def findings_for_document(doc: object, known: frozenset[str]) -> list[Finding]:
    """Shell-expansion warnings for an already parsed document (keys and string values)."""
    return [
        _finding(path, _message("this value", issues), issues)
        for path, value in strings_of(doc, "")
        if (issues := shell_issues(value, known))
    ]


def strings_of(value: object, path: str) -> Iterator[tuple[str, str]]:
    """Every string key and value of a parsed document with its YAML path."""
    if isinstance(value, str):
        yield path or "(document)", value
    elif isinstance(value, list):
        for index, element in enumerate(value):
            yield from strings_of(element, item(path, index))
    elif isinstance(value, Mapping):
        for key, element in value.items():
            if isinstance(key, str):
                yield child(path, key), key
            yield from strings_of(element, child(path, key))
