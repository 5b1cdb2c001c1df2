"""A real parser of the OData `$filter` subset Acumatica accepts, compiled to a row predicate.

Dialect "v3" (contract-based REST): eq ne gt ge lt le, and or not, parentheses, substringof/startswith/
endswith, literals datetimeoffset'..', datetime'..', date'..', guid'..', 'strings' ('' escapes a quote),
numbers, true/false/null. Dialect "v4" (DAC OData): the same operators, contains/startswith/endswith, and
bare ISO date-times, dates and GUIDs (v3's typed literals are refused, as Acumatica's v4 service does). Anything else raises FilterError (the server answers 400).
Comparisons follow SQL: a null field matches only `eq null` / `ne` nothing; strings compare ignoring case.
"""

from __future__ import annotations

import operator as _op
import re
import uuid
from collections.abc import Callable
from datetime import date, datetime

from airflow_provider_acumatica.sandbox.rendering import ValueCodec, parse_duration

Resolver = Callable[[str], "tuple[Callable, str]"]

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<typed>(?:datetimeoffset|datetime|date|guid|time)'[^']*')
    | (?P<string>'(?:[^']|'')*')
    | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})?)
    | (?P<guidbare>[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})
    | (?P<datebare>\d{4}-\d{2}-\d{2})
    | (?P<number>-?\d+(?:\.\d+)?)[mMdDlLfF]?
    | (?P<name>[A-Za-z_][A-Za-z0-9_./]*)
    | (?P<punct>[(),])
    )""",
    re.VERBOSE,
)
_OPERATORS = {"eq": _op.eq, "ne": _op.ne, "gt": _op.gt, "ge": _op.ge, "lt": _op.lt, "le": _op.le}
_COMPARISONS = set(_OPERATORS)
_RANGE_OPERATORS = frozenset({"gt", "ge", "lt", "le"})
_FUNCTIONS = {"v3": {"substringof", "startswith", "endswith"}, "v4": {"contains", "startswith", "endswith"}}
_MISSING = object()


class FilterError(ValueError):
    """A $filter the server refuses (HTTP 400)."""


class _Literal:
    def __init__(self, kind: str, value) -> None:
        self.kind, self.value = kind, value


def _tokens(text: str, dialect: str) -> list[tuple[str, object]]:
    tokens, position = [], 0
    text = text.rstrip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if not match or match.end() == position:
            raise FilterError(f"$filter: cannot read {text[position : position + 20]!r} at position {position}")
        position = match.end()
        kind = match.lastgroup
        raw = match.group(kind)
        if kind == "typed" and dialect == "v4":
            raise FilterError(
                f"$filter: {raw!r} is an OData v3 literal; OData v4 writes date-times, dates and GUIDs "
                "bare (2024-11-01T00:00:00Z, 2024-11-01, 8f0e...)"
            )
        if kind == "typed":
            prefix, _, rest = raw.partition("'")
            tokens.append(("literal", _Literal(prefix, rest[:-1])))
        elif kind == "string":
            tokens.append(("literal", _Literal("string", raw[1:-1].replace("''", "'"))))
        elif kind in ("datetime", "datebare", "guidbare"):
            if dialect != "v4":
                raise FilterError(
                    f"$filter: bare literal {raw!r}; OData v3 needs datetimeoffset'...', date'...' or guid'...'"
                )
            tokens.append(
                ("literal", _Literal({"datetime": "datetimeoffset", "datebare": "date", "guidbare": "guid"}[kind], raw))
            )
        elif kind == "number":
            tokens.append(("literal", _Literal("number", float(raw) if "." in raw else int(raw))))
        elif kind == "name" and raw in ("true", "false"):
            tokens.append(("literal", _Literal("bool", raw == "true")))
        elif kind == "name" and raw == "null":
            tokens.append(("literal", _Literal("null", None)))
        else:
            tokens.append((kind, raw))
    return tokens


class _Parser:
    """Recursive descent: or < and < not < comparison < primary."""

    def __init__(self, text: str, dialect: str, resolve: Resolver, codec: ValueCodec) -> None:
        self.text, self.dialect, self.resolve, self.codec = text, dialect, resolve, codec
        self.tokens = _tokens(text, dialect)
        self.index = 0

    def peek(self, offset: int = 0):
        index = self.index + offset
        return self.tokens[index] if index < len(self.tokens) else ("end", None)

    def take(self, kind: str, value=_MISSING):
        token = self.peek()
        if token[0] != kind or (value is not _MISSING and token[1] != value):
            wanted = value if value is not _MISSING else kind
            raise FilterError(f"$filter: expected {wanted!r} but found {token[1]!r} in {self.text!r}")
        self.index += 1
        return token[1]

    def parse(self) -> Callable[[tuple], bool]:
        predicate = self.or_expression()
        if self.peek()[0] != "end":
            raise FilterError(f"$filter: unexpected {self.peek()[1]!r} in {self.text!r}")
        return predicate

    def or_expression(self):
        left = self.and_expression()
        while self.peek() == ("name", "or"):
            self.index += 1
            right = self.and_expression()
            left = (lambda a, b: lambda row: a(row) or b(row))(left, right)
        return left

    def and_expression(self):
        left = self.not_expression()
        while self.peek() == ("name", "and"):
            self.index += 1
            right = self.not_expression()
            left = _conjunction(left, right)
        return left

    def not_expression(self):
        if self.peek() == ("name", "not"):
            self.index += 1
            inner = self.not_expression()
            return lambda row: not inner(row)
        return self.comparison()

    def comparison(self):
        if self.peek() == ("punct", "("):
            self.index += 1
            inner = self.or_expression()
            self.take("punct", ")")
            return self._maybe_compared_boolean(inner)
        kind, word = self.peek()
        if kind == "name" and self.peek(1) == ("punct", "("):
            return self._maybe_compared_boolean(self.function())
        if kind != "name":
            raise FilterError(f"$filter: expected a field name but found {word!r} in {self.text!r}")
        self.index += 1
        getter, type_name = self._field(word)
        operator = self.take("name") if self.peek()[0] == "name" else None
        if operator not in _COMPARISONS:
            raise FilterError(
                f"$filter: unsupported operator {operator!r} after {word!r}; use one of eq ne gt ge lt le"
            )
        literal = self.take("literal")
        expected = self._value(literal, type_name, word)
        predicate = _compare(getter, operator, expected)
        if operator in _RANGE_OPERATORS and expected is not None:
            predicate.bounds = ((word, operator, expected),)
            predicate.only_bounds = True
        return predicate

    def _maybe_compared_boolean(self, predicate):
        """`startswith(A,'x') eq true` is the v3 way to write a function test."""
        if self.peek()[0] == "name" and self.peek()[1] in ("eq", "ne"):
            operator = self.take("name")
            literal = self.take("literal")
            if literal.kind != "bool":
                raise FilterError(f"$filter: a function result compares only with true or false in {self.text!r}")
            expected = literal.value == (operator == "eq")
            return lambda row: predicate(row) == expected
        return predicate

    def function(self):
        name = self.take("name")
        if name not in _FUNCTIONS[self.dialect]:
            allowed = ", ".join(sorted(_FUNCTIONS[self.dialect]))
            raise FilterError(f"$filter: the function {name!r} is not supported; supported functions: {allowed}")
        self.take("punct", "(")
        first = self._argument()
        self.take("punct", ",")
        second = self._argument()
        self.take("punct", ")")
        field, text = (second, first) if name == "substringof" else (first, second)
        if not callable(field) or callable(text):
            raise FilterError(f"$filter: {name} takes a field and a string literal in {self.text!r}")
        test = {"startswith": str.startswith, "endswith": str.endswith}.get(name, str.__contains__)
        needle = text.casefold()
        return lambda row: (value := field(row)) is not None and test(value.casefold(), needle)

    def _argument(self):
        kind, word = self.peek()
        self.index += 1
        if kind == "literal" and word.kind == "string":
            return word.value
        if kind == "name":
            getter, type_name = self._field(word)
            if type_name != "str":
                raise FilterError(f"$filter: string functions apply to text fields; {word!r} is not text")
            return getter
        raise FilterError(f"$filter: expected a field or a string but found {getattr(word, 'value', word)!r}")

    def _field(self, name: str):
        if name in _COMPARISONS or name in ("and", "or", "not"):
            raise FilterError(f"$filter: expected a field name but found {name!r} in {self.text!r}")
        if name == "in" or name in ("tolower", "toupper", "contains", "length", "substring", "indexof"):
            raise FilterError(f"$filter: {name!r} is not supported")
        try:
            return self.resolve(name)
        except KeyError:
            raise FilterError(f"$filter: unknown field {name!r}") from None

    def _value(self, literal: _Literal, type_name: str, field: str):
        """The literal as a value comparable with the field's (see the module docstring)."""
        if literal.kind == "null":
            return None
        try:
            return _COERCE[type_name](self.codec, literal)
        except (ValueError, TypeError, KeyError) as error:
            raise FilterError(
                f"$filter: {literal.kind} literal {literal.value!r} does not fit field {field!r}: {error}"
            ) from None


def _temporal(codec: ValueCodec, literal: _Literal) -> datetime:
    if literal.kind in ("datetimeoffset", "datetime"):
        return codec.parse_datetime(literal.value)
    if literal.kind == "date":
        return codec.local_midnight(date.fromisoformat(literal.value))
    raise TypeError("expected datetimeoffset'...' or date'...'")


def _number(_codec, literal: _Literal):
    if literal.kind != "number":
        raise TypeError("expected a number")
    return literal.value


def _text(_codec, literal: _Literal) -> str:
    if literal.kind != "string":
        raise TypeError("expected a quoted string")
    return literal.value.casefold()


def _boolean(_codec, literal: _Literal) -> bool:
    if literal.kind != "bool":
        raise TypeError("expected true or false")
    return literal.value


def _guid(_codec, literal: _Literal) -> str:
    if literal.kind not in ("guid", "string"):
        raise TypeError("expected guid'...'")
    return str(uuid.UUID(literal.value))


def _minutes(_codec, literal: _Literal) -> int:
    if literal.kind not in ("string", "number"):
        raise TypeError("expected a time span like '08:30'")
    return parse_duration(literal.value)


_COERCE = {
    "dt": _temporal,
    "date": _temporal,
    "int": _number,
    "dec": _number,
    "str": _text,
    "bool": _boolean,
    "guid": _guid,
    "dur": _minutes,
}


def _conjunction(left, right):
    """`left and right`; its `bounds` (the range comparisons every match satisfies) are both sides', and
    `only_bounds` says whether they are all it tests."""
    predicate = lambda row: left(row) and right(row)  # noqa: E731
    predicate.bounds = getattr(left, "bounds", ()) + getattr(right, "bounds", ())
    predicate.only_bounds = getattr(left, "only_bounds", False) and getattr(right, "only_bounds", False)
    return predicate


def _compare(getter, operator: str, expected):
    """SQL semantics: a null field satisfies no comparison except `eq null`."""
    if expected is None:
        if operator == "eq":
            return lambda row: getter(row) is None
        if operator == "ne":
            return lambda row: getter(row) is not None
        return lambda row: False
    test = _OPERATORS[operator]
    return lambda row: (value := getter(row)) is not None and test(value, expected)


def compile_filter(text: str, dialect: str, resolve: Resolver, codec: ValueCodec) -> Callable[[tuple], bool]:
    """A predicate over rows for `$filter=text`; `resolve(field) -> (getter(row), type)` or KeyError.

    A predicate that only rows inside a range of some fields can satisfy (comparisons joined by `and`)
    carries them as `bounds`: a tuple of (field, operator, value), so that an index can narrow the scan."""
    if not text.strip():
        return lambda row: True
    return _Parser(text, dialect, resolve, codec).parse()
