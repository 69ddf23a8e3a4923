"""What the Kong container's entrypoint does to the file before Kong reads it.

The target's ``expansion`` decides:

- ``eval``: Supabase's Kong 2.8.1 compose expands the file with a shell ``eval`` (see
  ``shell_eval``): commands, quotes and backslashes are at stake.
- ``awk``: Supabase's ``kong-entrypoint.sh`` (supabase/supabase:docker/volumes/api/, since
  2026-03) replaces each ``$NAME`` (``\\$[A-Za-z_][A-Za-z_0-9]*``) with the container's
  variable of that name and leaves unknown names as they are; nothing else changes, double
  quotes and backticks included. A ``$NAME`` the container does not have therefore reaches
  Kong literally: a key ``$SUPABASE_ANON_KEYS`` is that text, a header
  ``Authorization: $LUA_AUTH_EXPR`` is sent as those characters.
- ``none``: the file is what Kong reads.
"""

from __future__ import annotations

import re

from .findings import Finding, error, warning
from .shell_eval import findings_for_document as eval_findings_for_document
from .shell_eval import findings_for_text as eval_findings_for_text
from .shell_eval import strings_of
from .target import SUPABASE_ENV, KongTarget
from .yaml_source import ScalarSpan

_AWK_NAME = re.compile(r"\$([A-Za-z_][A-Za-z_0-9]*)")
_ENTRYPOINT_DOC = "supabase/supabase:docker/volumes/api/kong-entrypoint.sh"


def findings_for_text(text: str, spans: tuple[ScalarSpan, ...], source: str, target: KongTarget) -> list[Finding]:
    """The expansion's findings for raw kong.yml text (values mapped to their YAML paths)."""
    known = frozenset(target.env_names or ())
    if target.expansion == "eval":
        return eval_findings_for_text(text, spans, source, known)
    if target.expansion != "awk":
        return []
    findings = []
    for span in spans:  # comments are substituted too, but nobody reads them
        value = text[span.start : span.end]
        findings.extend(_awk_findings(span.path, value, target))
    return findings


def findings_for_document(doc: object, target: KongTarget) -> list[Finding]:
    """The expansion's findings for an already parsed document."""
    known = frozenset(target.env_names or ())
    if target.expansion == "eval":
        return eval_findings_for_document(doc, known)
    if target.expansion != "awk":
        return []
    return [finding for path, value in strings_of(doc, "") for finding in _awk_findings(path, value, target)]


def _awk_findings(path: str, value: str, target: KongTarget) -> list[Finding]:
    findings = []
    for name in dict.fromkeys(_AWK_NAME.findall(value)):
        if target.substitutes(name):
            if name not in SUPABASE_ENV["awk"]:
                findings.append(
                    warning(
                        path,
                        f"${name} is a variable of the kong container: its entrypoint replaces it with "
                        f"that variable's value ({_ENTRYPOINT_DOC} substitutes every $NAME it knows)",
                        "write the $ some other way if the text is meant, e.g. move the value to a variable",
                    )
                )
            continue
        findings.append(_unknown_name(path, name, target))
    return findings


def _unknown_name(path: str, name: str, target: KongTarget) -> Finding:
    message = (
        f"${name} is not a variable of the kong container, so its entrypoint leaves it as the text "
        f"'${name}' and Kong reads those characters"
    )
    if name.startswith("LUA_"):
        return error(
            path,
            f"{message}: this Lua template cannot work",
            f"the entrypoint defines LUA_AUTH_EXPR, LUA_RT_WS_EXPR and LUA_FUNCTIONS_EXPR ({_ENTRYPOINT_DOC})",
        )
    return warning(path, message, f"set {name} in the kong service's environment, or write the value itself")
