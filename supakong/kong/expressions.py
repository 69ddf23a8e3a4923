"""Routes matched by an ``expression`` (Kong 3.x with ``router_flavor = expressions``).

Kong validates an expression with its ATC router library (Kong/kong@3.9.3 pins
Kong/atc-router v1.6.2): ``field op value`` predicates, ``&&``/``||``, parentheses, ``!(...)``,
``lower()``/``any()`` (Kong/atc-router@v1.6.2:src/atc_grammar.pest), with a type per field
(https://docs.konghq.com/gateway/3.10.x/reference/expressions-language). This module checks
the same grammar and types, so a route Kong refuses is reported before it is deployed.
"""

from __future__ import annotations

import re

STRING_FIELDS = frozenset({"net.protocol", "tls.sni", "http.method", "http.host", "http.path"})
STRING_PREFIXES = ("http.path.segments.", "http.headers.", "http.queries.")
INT_FIELDS = frozenset({"net.src.port", "net.dst.port", "net.port", "http.path.segments.len"})
IP_FIELDS = frozenset({"net.src.ip", "net.dst.ip"})
_TOKENS = re.compile(
    r"""\s*(?:
        (?P<string>r\#".*?"\#|"(?:[^"\\]|\\["\\nrt])*")
      | (?P<op>&&|\|\||==|!=|\^=|=\^|>=|<=|>|<|~|!|\(|\)|not\s+in\b|in\b|contains\b)
      | (?P<ip>\d{1,3}(?:\.\d{1,3}){3}(?:/\d{1,2})?|[0-9A-Fa-f:]*:[0-9A-Fa-f:]+(?:/\d{1,3})?)
      | (?P<int>-?(?:0x[0-9A-Fa-f]+|\d+))
      | (?P<ident>[A-Za-z][A-Za-z0-9_.]*)
    )""",
    re.VERBOSE | re.DOTALL,
)
_COMPARISONS = frozenset({"==", "!=", "~", "^=", "=^", ">=", ">", "<=", "<", "not in", "in", "contains"})


def expression_problem(expression: str) -> str | None:
    """Why Kong's router refuses ``expression`` (its wording where it has one), or None."""
    try:
        tokens = _tokenize(expression)
        position = _expression(tokens, 0)
    except ValueError as exc:
        return str(exc)
    if position != len(tokens):
        return f"unexpected {tokens[position][1]!r}"
    return None


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    position = 0
    while text[position:].strip():
        match = _TOKENS.match(text, position)
        if match is None or match.end() == position:
            raise ValueError(f"cannot parse the expression at {text[position : position + 20].strip()!r}")
        kind = next(k for k in ("string", "op", "ip", "int", "ident") if match.group(k) is not None)
        tokens.append((kind, " ".join(match.group(kind).split()) if kind == "op" else match.group(kind)))
        position = match.end()
    return tokens


def _expression(tokens: list[tuple[str, str]], position: int) -> int:
    position = _term(tokens, position)
    while position < len(tokens) and tokens[position] in (("op", "&&"), ("op", "||")):
        position = _term(tokens, position + 1)
    return position


def _term(tokens: list[tuple[str, str]], position: int) -> int:
    if position >= len(tokens):
        raise ValueError("the expression ends where a predicate was expected")
    token = tokens[position]
    negated = token == ("op", "!")
    if negated:
        position += 1
        if position >= len(tokens) or tokens[position] != ("op", "("):
            raise ValueError("'!' must be followed by a parenthesised expression")
    if tokens[position] == ("op", "("):
        position = _expression(tokens, position + 1)
        if position >= len(tokens) or tokens[position] != ("op", ")"):
            raise ValueError("missing ')'")
        return position + 1
    return _predicate(tokens, position)


def _predicate(tokens: list[tuple[str, str]], position: int) -> int:
    field, transforms, position = _lhs(tokens, position)
    if position + 1 >= len(tokens) or tokens[position][0] != "op" or tokens[position][1] not in _COMPARISONS:
        raise ValueError(f"expected an operator and a value after {field}")
    op, (kind, value) = tokens[position][1], tokens[position + 1]
    if kind not in ("string", "int", "ip"):
        raise ValueError(f"expected a value after {op}, got {value!r}")
    _check_types(field, transforms, op, kind, value)
    return position + 2


def _lhs(tokens: list[tuple[str, str]], position: int) -> tuple[str, list[str], int]:
    kind, name = tokens[position]
    if kind != "ident":
        raise ValueError(f"expected a field, got {name!r}")
    if position + 1 < len(tokens) and tokens[position + 1] == ("op", "("):
        if name not in ("lower", "any"):
            raise ValueError(f"unknown transformation function: {name}")
        field, transforms, position = _lhs(tokens, position + 2)
        if position >= len(tokens) or tokens[position] != ("op", ")"):
            raise ValueError("missing ')'")
        return field, [*transforms, name], position + 1
    return name, [], position + 1


def field_type(field: str) -> str | None:
    """The ATC type of a field of Kong's HTTP router (Kong/kong@3.9.3:kong/router/fields.lua:20-45)."""
    if field in INT_FIELDS:
        return "int"
    if field in STRING_FIELDS or field.startswith(STRING_PREFIXES):
        return "string"
    return "ip" if field in IP_FIELDS else None


def _check_types(field: str, transforms: list[str], op: str, kind: str, value: str) -> None:
    """atc-router's semantic checks (Kong/atc-router@v1.6.2:src/semantics.rs)."""
    expected = field_type(field)
    if expected is None:
        raise ValueError("Unknown LHS field")
    if "lower" in transforms and expected != "string":
        raise ValueError("lower-case transformation function only supported with String type fields")
    if op in ("==", "!=") and kind != expected:
        raise ValueError("Type mismatch between the LHS and RHS values of predicate")
    if op in ("~", "^=", "=^", "contains") and (expected, kind) != ("string", "string"):
        raise ValueError("Regex/Prefix/Postfix operators only supports string operands")
    if op in (">", ">=", "<", "<=") and (expected, kind) != ("int", "int"):
        raise ValueError("Greater/GreaterOrEqual/Lesser/LesserOrEqual operators only supports integer operands")
    if op in ("in", "not in") and (expected, kind) != ("ip", "ip"):
        raise ValueError("In/NotIn operators only supports IP in CIDR")
    if op == "~":
        pattern = value[3:-2] if value.startswith("r#") else value[1:-1]
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"invalid regex {pattern!r}: {exc}") from None
