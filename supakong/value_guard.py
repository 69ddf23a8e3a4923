"""Which rendered values the Kong container's entrypoint would run or change (pure).

Supabase's 2.8-era compose starts Kong with ``eval "echo \\"$(cat ~/temp.yml)\\""``
(``supabase/supabase@00069a4c:docker/docker-compose.yml``): a value with ``$(`` or a backtick
runs a command; a double quote ends the eval's quoting, so the rest of the value is shell
code (``x"; touch /pwn; echo "``); a backslash escapes that quoting; ``$NAME`` becomes the
container's variable or nothing (``pa$word`` → ``pa``). Only the ``$NAME`` references we
render for the credentials Kong holds are meant.

The 2026 ``kong-entrypoint.sh`` (``supabase/supabase:docker/volumes/api/``) only replaces each
``$NAME`` the container knows: a value is changed only by such a name, nothing runs.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass

EVAL, AWK = "eval", "awk"
_COMMAND = re.compile(r"\$\(|`")
_DOLLAR = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*)|([{0-9@*#?$!-]))")


@dataclass(frozen=True)
class EntrypointRules:
    """How the host's entrypoint treats the file: ``expansion`` (eval, awk, none), the
    ``$NAME`` references rendered on purpose (``meant``), and the names awk replaces."""

    expansion: str
    meant: frozenset[str] = frozenset()
    substituted: frozenset[str] = frozenset()

    def refusal(self, value: str) -> str:
        """Why ``value`` cannot be written into the file for this entrypoint ('' if it can)."""
        if self.expansion == EVAL:
            return self._eval_refusal(value)
        if self.expansion == AWK:
            for match in _DOLLAR.finditer(value):
                name = match.group(1) or match.group(2)
                if name and name not in self.meant and name in self.substituted and not match.group(1):
                    return f"${name} would be replaced by the Kong container's variable of that name"
        return ""

    def _eval_refusal(self, value: str) -> str:
        if _COMMAND.search(value):
            return "it contains $( or a backtick, which the entrypoint's shell eval would run as a command"
        if '"' in value:
            return (
                "it contains a double quote, which ends the quoting of the entrypoint's shell eval:"
                " the rest would run as shell code"
            )
        if "\\" in value:
            return (
                "it contains a backslash, which the entrypoint's shell eval would remove or use to escape its quoting"
            )
        for match in _DOLLAR.finditer(value):
            name = match.group(1) or match.group(2)
            if name not in self.meant:
                token = match.group(0)
                return f"it contains {token}, which the entrypoint's shell eval would expand (to nothing if unset)"
        return ""


def secrets_in(value: str, secrets: dict[str, str], rules: EntrypointRules) -> list[str]:
    """The names of the secrets whose value, in ``value``, is itself refused by ``rules``."""
    return sorted(name for name, secret in secrets.items() if secret and secret in value and rules.refusal(secret))


def rules_for(expansion: str, meant: Collection[str], substituted: Collection[str] = ()) -> EntrypointRules:
    """The rules of one expansion (see :class:`EntrypointRules`)."""
    return EntrypointRules(expansion, frozenset(meant), frozenset(substituted))
