"""The host's own kong file as its template: byte for byte, except that secret values become
``$NAME`` references and Jinja's syntax is escaped, so that rendering the template gives the
file back exactly (checked, not assumed).

Escaping writes each ``{{``, ``{%`` and ``{#`` of the file as an expression that prints it
(``{{ '{%' }}``): the rest of the text, ``}}`` included, is plain template text, and
``trim_blocks``/``lstrip_blocks`` only touch block tags, of which an imported file has none.
"""

from __future__ import annotations

import re

from ..errors import InventoryError
from ..render import render_string

_JINJA_OPENER = re.compile(r"\{[{%#]")


def escape_jinja(text: str) -> str:
    """``text`` as a template that renders back to ``text``."""
    return _JINJA_OPENER.sub(lambda m: "{{ '" + m.group(0) + "' }}", text)


def as_template(text: str, source: str) -> str:
    """``text`` escaped, after checking that it renders back to ``text`` byte for byte;
    :class:`InventoryError` naming ``source`` and the first line that would differ."""
    if "\r" in text:
        raise InventoryError(
            f"{source}: the file has Windows line endings (CRLF), which a template cannot give back byte for"
            " byte; convert it to LF on the host (dos2unix) and run init again"
        )
    template = escape_jinja(text)
    rendered = render_string(template)
    if rendered != text:
        mine, theirs = rendered.splitlines(), text.splitlines()
        line = next((i for i, (a, b) in enumerate(zip(mine, theirs, strict=False), 1) if a != b), len(mine) + 1)
        raise InventoryError(f"{source}:{line}: the imported template would not render back to this line exactly")
    return template
