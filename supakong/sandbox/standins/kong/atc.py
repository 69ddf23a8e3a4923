"""Kong's router expressions (``router_flavor = expressions``, 3.x): parse, check, evaluate.

The language is Kong's ATC router (Kong/kong@3.9.3 pins Kong/atc-router v1.6.2,
``.requirements``): ``field op value`` predicates joined with ``&&`` and ``||``, grouped
with parentheses, ``!(...)`` negates a group (Kong/atc-router@v1.6.2:src/atc_grammar.pest).
Operators and fields: https://docs.konghq.com/gateway/3.10.x/reference/expressions-language
(``==`` ``!=`` ``~`` regex, ``^=`` prefix, ``=^`` suffix, ``in``/``not in`` CIDR,
``contains``, integer comparisons; ``lower()`` and ``any()`` transformations).

Precedence follows atc-router's parser, not intuition: its Pratt parser registers ``&&``
before ``||`` (Kong/atc-router@v1.6.2:src/parser.rs:56-58), so ``||`` binds tighter
and ``a && b || c`` means ``a && (b || c)``. A predicate on a field with several values
(repeated headers) must hold for all of them unless wrapped in ``any()``
(src/interpreter.rs:21-30); a field the request does not have makes it false.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

# Field types (Kong/kong@3.9.3:kong/router/fields.lua:20-45)
STRING_FIELDS = ("net.protocol", "tls.sni", "http.method", "http.host", "http.path")
STRING_PREFIXES = ("http.path.segments.", "http.headers.", "http.queries.")
INT_FIELDS = ("net.src.port", "net.dst.port", "net.port", "http.path.segments.len")
IP_FIELDS = ("net.src.ip", "net.dst.ip")
OPERATORS = ("==", "!=", "~", "^=", "=^", ">=", ">", "<=", "<", "not in", "in", "contains")
_TOKEN = re.compile(
    r"""\s*(?:
        (?P<raw>r\#"(?P<raw_body>.*?)"\#)
      | (?P<str>"(?P<str_body>(?:[^"\\]|\\["\\nrt])*)")
      | (?P<op>&&|\|\||==|!=|\^=|=\^|>=|<=|>|<|~|!|\(|\)|not\s+in\b|in\b|contains\b)
      | (?P<ip>\d{1,3}(?:\.\d{1,3}){3}(?:/\d{1,2})?|[0-9A-Fa-f:]*:[0-9A-Fa-f:]+(?:/\d{1,3})?)
      | (?P<int>-?(?:0x[0-9A-Fa-f]+|\d+))
      | (?P<ident>[A-Za-z][A-Za-z0-9_.]*)
    )""",
    re.VERBOSE | re.DOTALL,
)


class ExpressionError(ValueError):
    """The expression does not parse or does not type-check."""


@dataclass(frozen=True)
class Predicate:
    field: str
    transforms: tuple[str, ...]  # "lower" and/or "any", innermost first
    op: str
    value: object  # str, int, ip network, or compiled regex


@dataclass(frozen=True)
class Logical:
    op: str  # "&&", "||" or "!"
    left: Node
    right: Node | None = None


Node = Predicate | Logical


def parse(source: str) -> Node:
    """Parse and type-check one expression; raises :class:`ExpressionError`."""
    tokens = _tokenize(source)
    parser = _Parser(tokens)
    node = parser.expression(0)
    if parser.position != len(tokens):
        raise ExpressionError(f"unexpected {tokens[parser.position][1]!r}")
    return node


def _tokenize(source: str) -> list[tuple[str, str]]:
    tokens, position = [], 0
    while position < len(source):
        if source[position:].strip() == "":
            break
        match = _TOKEN.match(source, position)
        if match is None or match.end() == position:
            raise ExpressionError(f"cannot parse at position {position + 1}: {source[position : position + 20]!r}")
        kind = next(k for k in ("raw", "str", "op", "ip", "int", "ident") if match.group(k) is not None)
        text = (
            match.group("raw_body")
            if kind == "raw"
            else match.group("str_body")
            if kind == "str"
            else match.group(kind)
        )
        if kind == "str":
            text = re.sub(r"\\(.)", lambda m: {"n": "\n", "r": "\r", "t": "\t"}.get(m.group(1), m.group(1)), text)
            kind = "raw"
        tokens.append((kind, re.sub(r"\s+", " ", text) if kind == "op" else text))
        position = match.end()
    return tokens


# Binding powers: `&&` (registered first) binds loosest, then `||`.
_INFIX = {"&&": 1, "||": 2}


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.tokens = tokens
        self.position = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise ExpressionError("unexpected end of expression")
        self.position += 1
        return token

    def expression(self, min_power: int) -> Node:
        left = self.term()
        while (token := self.peek()) is not None and token[0] == "op" and token[1] in _INFIX:
            power = _INFIX[token[1]]
            if power <= min_power:
                break
            self.take()
            left = Logical(token[1], left, self.expression(power))
        return left

    def term(self) -> Node:
        kind, text = self.take()
        if (kind, text) == ("op", "!"):
            if self.peek() != ("op", "("):
                raise ExpressionError("'!' must be followed by a parenthesised expression")
            return Logical("!", self.term())
        if (kind, text) == ("op", "("):
            node = self.expression(0)
            if self.take() != ("op", ")"):
                raise ExpressionError("missing ')'")
            return node
        if kind != "ident":
            raise ExpressionError(f"expected a field, got {text!r}")
        return self.predicate(text)

    def lhs(self, ident: str) -> tuple[str, tuple[str, ...]]:
        if self.peek() != ("op", "("):
            return ident, ()
        if ident not in ("lower", "any"):
            raise ExpressionError(f"unknown transformation function: {ident}")
        self.take()
        kind, inner = self.take()
        if kind != "ident":
            raise ExpressionError(f"expected a field, got {inner!r}")
        field, transforms = self.lhs(inner)
        if self.take() != ("op", ")"):
            raise ExpressionError("missing ')'")
        return field, (*transforms, ident)

    def predicate(self, ident: str) -> Predicate:
        field, transforms = self.lhs(ident)
        kind, op = self.take()
        if kind != "op" or op not in OPERATORS:
            raise ExpressionError(f"expected an operator after {field}, got {op!r}")
        kind, text = self.take()
        if kind == "raw":
            value: object = text
        elif kind == "int":
            value = int(text, 16) if text.lower().startswith(("0x", "-0x")) else int(text, 10)
        elif kind == "ip":
            value = ipaddress.ip_network(text, strict=False)
        else:
            raise ExpressionError(f"expected a value after {op}, got {text!r}")
        return check_types(Predicate(field, transforms, op, value))


def field_type(field: str) -> str | None:
    """``String``, ``Int``, ``IpAddr`` or None for a field Kong's HTTP router does not have."""
    if field in STRING_FIELDS or (field.startswith(STRING_PREFIXES) and field not in INT_FIELDS):
        return "String"
    if field in INT_FIELDS:
        return "Int"
    if field in IP_FIELDS:
        return "IpAddr"
    return None


def check_types(predicate: Predicate) -> Predicate:
    """atc-router's semantic checks (Kong/atc-router@v1.6.2:src/semantics.rs:80-160)."""
    kind = field_type(predicate.field)
    op, value = predicate.op, predicate.value
    if kind is None:
        raise ExpressionError("Unknown LHS field")
    if "lower" in predicate.transforms and kind != "String":
        raise ExpressionError("lower-case transformation function only supported with String type fields")
    value_kind = "String" if isinstance(value, str) else "Int" if isinstance(value, int) else "IpAddr"
    if op in ("==", "!=") and value_kind != kind:
        raise ExpressionError("Type mismatch between the LHS and RHS values of predicate")
    if op in ("~", "^=", "=^", "contains") and (kind, value_kind) != ("String", "String"):
        raise ExpressionError("Regex/Prefix/Postfix operators only supports string operands")
    if op in (">", ">=", "<", "<=") and (kind, value_kind) != ("Int", "Int"):
        raise ExpressionError("Greater/GreaterOrEqual/Lesser/LesserOrEqual operators only supports integer operands")
    if op in ("in", "not in") and (kind, value_kind) != ("IpAddr", "IpAddr"):
        raise ExpressionError("In/NotIn operators only supports IP in CIDR")
    if op == "~":
        try:
            value = re.compile(str(value))
        except re.error as exc:
            raise ExpressionError(f"invalid regex: {exc}") from None
        return Predicate(predicate.field, predicate.transforms, op, value)
    return predicate


Values = Callable[[str], Sequence[object] | None]

_COMPARE: Mapping[str, Callable[[object, object], bool]] = {
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "^=": lambda a, b: str(a).startswith(str(b)),
    "=^": lambda a, b: str(a).endswith(str(b)),
    "contains": lambda a, b: str(b) in str(a),
    "~": lambda a, b: b.search(str(a)) is not None,  # type: ignore[attr-defined]
    ">": lambda a, b: a > b,  # type: ignore[operator]
    ">=": lambda a, b: a >= b,  # type: ignore[operator]
    "<": lambda a, b: a < b,  # type: ignore[operator]
    "<=": lambda a, b: a <= b,  # type: ignore[operator]
    "in": lambda a, b: ipaddress.ip_address(str(a)) in b,  # type: ignore[operator]
    "not in": lambda a, b: ipaddress.ip_address(str(a)) not in b,  # type: ignore[operator]
}


def evaluate(node: Node, values: Values, matches: dict[str, str] | None = None) -> bool:
    """Does the request whose fields ``values`` returns match the expression? ``matches``
    receives what each matching ``==``, ``^=``, ``=^`` or ``~`` predicate matched (the
    router strips the matched ``http.path`` for ``strip_path``, src/interpreter.rs:48-140)."""
    if isinstance(node, Logical):
        if node.op == "!":
            return not evaluate(node.left, values, None)
        assert node.right is not None
        if node.op == "&&":
            return evaluate(node.left, values, matches) and evaluate(node.right, values, matches)
        return evaluate(node.left, values, matches) or evaluate(node.right, values, matches)
    found = values(node.field)
    if not found:
        return False
    compare = _COMPARE[node.op]
    results = [compare(str(v).lower() if "lower" in node.transforms else v, node.value) for v in found]
    matched = any(results) if "any" in node.transforms else all(results)
    if matched and matches is not None and node.op in ("==", "^=", "=^", "~"):
        if node.op == "~":
            hit = node.value.search(str(found[0]))  # type: ignore[attr-defined]
            matches[node.field] = hit.group(0) if hit else ""
        else:
            matches[node.field] = str(node.value)
    return matched
