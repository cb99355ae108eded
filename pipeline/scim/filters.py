"""SCIM filter expressions (RFC 7644 §3.4.2.2): AST, parser and canonical renderer.
See docs/ARCHITECTURE.md ("The protocol (`pipeline/scim/`)").

Grammar (RFC 7644 §3.4.2.2 Figure 1, with errata 4690/7322 for valFilter):

    FILTER    = attrExp / logExp / valuePath / *1"not" "(" FILTER ")"
    valuePath = attrPath "[" valFilter "]"      ; no valuePath nested inside valFilter
    valFilter = attrExp / logExp / *1"not" "(" valFilter ")"
    attrExp   = (attrPath SP "pr") / (attrPath SP compareOp SP compValue)
    logExp    = FILTER SP ("and" / "or") SP FILTER
    compValue = false / null / true / number / string   ; JSON (RFC 7159)
    compareOp = "eq" / "ne" / "co" / "sw" / "ew" / "gt" / "lt" / "ge" / "le"

Precedence: grouping, then `not` over `and` over `or`; `and`/`or` are left-associative.
Attribute names, operators and keywords are case-insensitive (RFC 7644 §3.4.2.2); operators
are stored lower-case, names as written. Whitespace between tokens is free-form (any amount,
also none where tokens are self-delimiting) because clients vary.

Paths inside a valuePath's brackets are relative to it and bare sub-attribute names (no URN, no
'.'): `emails[type eq "work"]` holds `AttrPath(None, "type", None)`. Entra's
`emails[type eq "work"].value eq "x"` is folded into the bracket,
`ValuePath(emails, And(<bracket filter>, Compare(value eq "x")))`: it means the same ("some
email has type work and value x") and renders back as `emails[type eq "work" and value eq "x"]`,
which parses to the same AST.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Final, Literal, NamedTuple, TypeAlias, cast

from scimflow.pipeline.errors import InvalidFilter
from scimflow.pipeline.scim.paths import (
    ATTR_PATH_PATTERN,
    ATTRNAME_PATTERN,
    AttrPath,
    render_attr_path,
)
from scimflow.pipeline.scim.unicode import is_storable_text

CompareOp = Literal["eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"]
Value: TypeAlias = str | int | float | bool | None

MAX_FILTER_LENGTH: Final = 4096
MAX_NESTING_DEPTH: Final = 50

COMPARE_OPS: Final[frozenset[str]] = frozenset(
    ("eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le")
)


@dataclass(frozen=True, slots=True)
class Compare:
    """`attrPath compareOp compValue`."""

    path: AttrPath
    op: CompareOp
    value: Value


@dataclass(frozen=True, slots=True)
class Present:
    """`attrPath pr`."""

    path: AttrPath


@dataclass(frozen=True, slots=True)
class And:
    left: Filter
    right: Filter


@dataclass(frozen=True, slots=True)
class Or:
    left: Filter
    right: Filter


@dataclass(frozen=True, slots=True)
class Not:
    """`not ( FILTER )`."""

    inner: Filter


@dataclass(frozen=True, slots=True)
class ValuePath:
    """`attrPath [ valFilter ]`; the paths in `filter` are relative to `path`."""

    path: AttrPath
    filter: Filter


Filter: TypeAlias = Compare | Present | And | Or | Not | ValuePath


def parse_filter(text: str) -> Filter:
    """Parse a filter (RFC 7644 §3.4.2.2); raise InvalidFilter, and nothing else, if invalid."""
    return _Parser(text, in_value_path=False).parse()


def parse_value_filter(text: str) -> Filter:
    """Parse a valFilter, the text between a valuePath's brackets, with relative paths.

    Used for PATCH paths (RFC 7644 §3.5.2); raises InvalidFilter if invalid.
    """
    return _Parser(text, in_value_path=True).parse()


def render_filter(f: Filter) -> str:
    """Render canonical filter text: lower-case keywords, single spaces, minimal parentheses.

    `parse_filter(render_filter(f)) == f` for every AST the grammar can express. Raises
    ValueError for a non-finite number, which JSON (and so a filter) cannot express.
    """
    if isinstance(f, And | Or):
        return _render_chain(f)
    if isinstance(f, Not):
        return f"not ({render_filter(f.inner)})"
    if isinstance(f, Present):
        return f"{render_attr_path(f.path)} pr"
    if isinstance(f, Compare):
        return f"{render_attr_path(f.path)} {f.op} {render_value(f.value)}"
    return f"{render_attr_path(f.path)}[{render_filter(f.filter)}]"


def render_value(value: Value) -> str:
    """Render a comparison value as a JSON literal (RFC 7159)."""
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value!r} cannot be expressed in a SCIM filter")
        return repr(value)  # shortest text that reads back as the same float
    return json.dumps(value, ensure_ascii=False)


def chain_operands(f: And | Or) -> list[Filter]:
    """Flatten a left-associative chain `a and b and c` into `[a, b, c]` without recursion.

    A chain of a few hundred terms fits in MAX_FILTER_LENGTH, deeper than Python's recursion
    limit allows if walked recursively, so evaluators and the renderer walk it with this.
    """
    kind = type(f)
    rights: list[Filter] = []
    node: Filter = f
    while isinstance(node, kind):
        rights.append(node.right)
        node = node.left
    return [node, *reversed(rights)]


def _render_chain(f: And | Or) -> str:
    keyword = " and " if isinstance(f, And) else " or "
    first, *rest = chain_operands(f)
    # Left operand: only a looser operator needs parentheses. Right operands: a chain of the
    # same kind needs them too, or it would re-parse left-associated.
    parts = [_render_operand(first, f, is_right=False)]
    parts.extend(_render_operand(operand, f, is_right=True) for operand in rest)
    return keyword.join(parts)


def _render_operand(operand: Filter, parent: And | Or, *, is_right: bool) -> str:
    text = render_filter(operand)
    looser = isinstance(parent, And) and isinstance(operand, Or)
    same_kind_on_right = is_right and type(operand) is type(parent)
    return f"({text})" if looser or same_kind_on_right else text


# --- Tokenizer -------------------------------------------------------------------------------

_TOKEN_RE: Final = re.compile(
    rf"""
      (?P<space>\s+)
    | (?P<string>"(?:[^"\\\x00-\x1f]|\\(?:["\\/bfnrt]|u[0-9A-Fa-f]{{4}}))*")
    | (?P<number>-?(?:0|[1-9][0-9]*)(?P<fraction>\.[0-9]+)?(?P<exponent>[eE][+-]?[0-9]+)?)
    | (?P<word>{ATTR_PATH_PATTERN})
    | (?P<subattr>\.{ATTRNAME_PATTERN})
    | (?P<punct>[()\[\]])
    | (?P<bad>.)
    """,
    re.VERBOSE | re.DOTALL,
)


class _Token(NamedTuple):
    kind: str  # "string", "number", "word", "subattr", "(", ")", "[", "]", or "end"
    text: str
    start: int
    match: re.Match[str] | None


def _tokenize(text: str) -> list[_Token]:
    """Split filter text into tokens with one compiled-regex scan (hot path for IdP lookups)."""
    tokens: list[_Token] = []
    for match in _TOKEN_RE.finditer(text):
        kind = cast(str, match.lastgroup)
        if kind == "space":
            continue
        if kind == "bad":
            raise InvalidFilter(_unexpected(match.group(), match.start()))
        if kind == "punct":
            kind = match.group()
        tokens.append(_Token(kind, match.group(), match.start(), match))
    tokens.append(_Token("end", "", len(text), None))
    return tokens


def _unexpected(text: str, position: int) -> str:
    if text == '"':
        return f"Unterminated or invalid string at position {position}."
    shown = text if len(text) <= 40 else text[:40] + "..."
    return f"Unexpected {shown!r} at position {position}."


# --- Parser ----------------------------------------------------------------------------------


class _Parser:
    """Recursive descent over the RFC 7644 §3.4.2.2 grammar, one method per precedence level.

    Recursion happens only at '(' and '[' and is capped by MAX_NESTING_DEPTH, and the input is
    capped by MAX_FILTER_LENGTH, so no input can exhaust the interpreter's stack.
    """

    __slots__ = ("_depth", "_in_value_path", "_index", "_tokens")

    def __init__(self, text: str, *, in_value_path: bool) -> None:
        if not isinstance(text, str):
            raise InvalidFilter("The filter must be a string.")
        if len(text) > MAX_FILTER_LENGTH:
            raise InvalidFilter(f"The filter is longer than {MAX_FILTER_LENGTH} characters.")
        self._tokens = _tokenize(text)
        self._index = 0
        self._depth = 0
        self._in_value_path = in_value_path

    def parse(self) -> Filter:
        if self._peek().kind == "end":
            raise InvalidFilter("The filter is empty.")
        result = self._or_expression()
        self._expect("end")
        return result

    def _or_expression(self) -> Filter:
        result = self._and_expression()
        while self._at_keyword("or"):
            self._index += 1
            result = Or(result, self._and_expression())
        return result

    def _and_expression(self) -> Filter:
        result = self._unary()
        while self._at_keyword("and"):
            self._index += 1
            result = And(result, self._unary())
        return result

    def _unary(self) -> Filter:
        # "not" is a keyword only before "("; otherwise it is an attribute named "not".
        if self._at_keyword("not") and self._peek(1).kind == "(":
            self._index += 1
            return Not(self._group())
        if self._peek().kind == "(":
            return self._group()
        return self._attribute_expression()

    def _group(self) -> Filter:
        self._expect("(")
        self._enter()
        inner = self._or_expression()
        self._expect(")")
        self._depth -= 1
        return inner

    def _attribute_expression(self) -> Filter:
        path = self._attr_path()
        if self._peek().kind != "[":
            return self._condition(path)
        if self._in_value_path:
            raise InvalidFilter(self._error("A value path cannot be nested in another"))
        if path.sub is not None:
            raise InvalidFilter(self._error("Only a multi-valued attribute can be filtered"))
        return self._value_path(path)

    def _value_path(self, path: AttrPath) -> Filter:
        self._expect("[")
        self._enter()
        self._in_value_path = True
        inner = self._or_expression()
        self._in_value_path = False
        self._expect("]")
        self._depth -= 1
        if self._peek().kind == "subattr":
            # emails[type eq "work"].value eq "x": fold the comparison into the bracket.
            sub = AttrPath(None, self._advance().text[1:], None)
            inner = And(inner, self._condition(sub))
        return ValuePath(path, inner)

    def _attr_path(self) -> AttrPath:
        token = self._expect("word")
        match = cast(re.Match[str], token.match)
        path = AttrPath(match["urn"], match["name"], match["sub"])
        if self._in_value_path and (path.urn is not None or path.sub is not None):
            raise InvalidFilter(
                f"Inside [...] only sub-attribute names are allowed, got {token.text!r} "
                f"at position {token.start}."
            )
        return path

    def _condition(self, path: AttrPath) -> Filter:
        token = self._expect("word")
        op = token.text.lower()
        if op == "pr":
            return Present(path)
        if op not in COMPARE_OPS:
            raise InvalidFilter(f"Unknown operator {token.text!r} at position {token.start}.")
        return Compare(path, cast(CompareOp, op), self._value())

    def _value(self) -> Value:
        token = self._advance()
        if token.kind == "string":
            # The token regex admits only valid JSON strings; most have no escapes to decode.
            body = token.text[1:-1]
            if "\\" not in body:
                return body
            decoded = cast(str, json.loads(token.text))
            if not is_storable_text(decoded):
                raise InvalidFilter(
                    f"The string at position {token.start} holds NUL or a lone surrogate."
                )
            return decoded
        if token.kind == "number":
            return _number(token)
        literal = token.text.lower() if token.kind == "word" else ""
        if literal in _LITERALS:
            return _LITERALS[literal]
        raise InvalidFilter(_expected("a value", token))

    def _enter(self) -> None:
        self._depth += 1
        if self._depth > MAX_NESTING_DEPTH:
            raise InvalidFilter(f"The filter nests deeper than {MAX_NESTING_DEPTH} levels.")

    def _at_keyword(self, keyword: str) -> bool:
        token = self._peek()
        return token.kind == "word" and token.text.lower() == keyword

    def _peek(self, ahead: int = 0) -> _Token:
        # The index never passes the final "end" token, so only look-ahead needs clamping.
        if ahead:
            return self._tokens[min(self._index + ahead, len(self._tokens) - 1)]
        return self._tokens[self._index]

    def _advance(self) -> _Token:
        token = self._peek()
        if token.kind != "end":
            self._index += 1
        return token

    def _expect(self, kind: str) -> _Token:
        token = self._peek()
        if token.kind != kind:
            raise InvalidFilter(_expected(_DESCRIPTIONS[kind], token))
        return self._advance()

    def _error(self, message: str) -> str:
        return f"{message} (position {self._peek().start})."


_LITERALS: Final[dict[str, Value]] = {"true": True, "false": False, "null": None}

_DESCRIPTIONS: Final = {
    "word": "an attribute name or operator",
    "(": "'('",
    ")": "')'",
    "[": "'['",
    "]": "']'",
    "end": "the end of the filter",
}


def _expected(what: str, token: _Token) -> str:
    found = "the end of the filter" if token.kind == "end" else repr(token.text[:40])
    return f"Expected {what} at position {token.start}, found {found}."


def _number(token: _Token) -> int | float:
    """JSON number: integers become int, a fraction or exponent makes a float (RFC 7159 §6)."""
    match = cast(re.Match[str], token.match)
    if match["fraction"] is None and match["exponent"] is None:
        return int(token.text)
    value = float(token.text)
    if not math.isfinite(value):
        raise InvalidFilter(f"Number {token.text[:40]!r} at position {token.start} is too large.")
    return value
