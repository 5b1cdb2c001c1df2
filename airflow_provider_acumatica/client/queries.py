"""Safe OData filters and query parameters for Acumatica's REST (OData v3 syntax) and OData v4 interfaces.

Build a filter from Python values instead of pasting strings together::

    from airflow_provider_acumatica.client.queries import and_, eq, ge, lt, startswith

    window = and_(ge("LastModifiedDateTime", start), lt("LastModifiedDateTime", end), eq("Status", "Active"))
    hook.iter_entity("Project", filter=window)              # rendered as OData v3 for the REST API
    hook.iter_odata("PMProject", filter=window)             # rendered as OData v4 for the DAC interface
    str(window)                                             # the OData v3 text

Literals: strings are quoted with ``'`` doubled; aware datetimes become
``datetimeoffset'2024-07-15T10:31:28.402+03:00'`` (v3) or ``2024-07-15T10:31:28.402+03:00`` (v4), always
with milliseconds and an explicit offset (naive datetimes are refused: an instant needs a zone); dates
``date'2025-06-17'`` (v3) / ``2025-06-17`` (v4); UUIDs ``guid'...'`` (v3) / bare (v4); numbers, booleans, None.
Field names must be plain identifiers (``Tasks/TaskID`` paths allowed), so a filter cannot be injected.
Only the functions Acumatica's REST API accepts exist here: ``substringof``, ``startswith``, ``endswith``.
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import re
import uuid
from collections.abc import Iterable
from typing import Any

_FIELD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(?:[./][A-Za-z_][A-Za-z0-9_]*)*$")
_COMPARISONS = ("eq", "ne", "gt", "ge", "lt", "le")


class ODataFilter:
    """A filter expression, rendered per dialect: `render(3)` for REST, `render(4)` for OData v4."""

    def render(self, version: int) -> str:
        raise NotImplementedError

    def __str__(self) -> str:
        return self.render(3)

    def __and__(self, other: ODataFilter) -> ODataFilter:
        return and_(self, other)

    def __or__(self, other: ODataFilter) -> ODataFilter:
        return or_(self, other)

    def __invert__(self) -> ODataFilter:
        return not_(self)


@dataclasses.dataclass(frozen=True)
class _Comparison(ODataFilter):
    field: str
    operator: str
    value: Any

    def render(self, version: int) -> str:
        return f"{self.field} {self.operator} {literal(self.value, version)}"


@dataclasses.dataclass(frozen=True)
class _Function(ODataFilter):
    name: str
    field: str
    text: str

    def render(self, version: int) -> str:
        text = literal(self.text, version)
        if self.name == "substringof":
            return f"substringof({text}, {self.field})" if version == 3 else f"contains({self.field}, {text})"
        return f"{self.name}({self.field}, {text})"


@dataclasses.dataclass(frozen=True)
class _Junction(ODataFilter):
    operator: str
    parts: tuple[ODataFilter, ...]

    def render(self, version: int) -> str:
        """Comparisons and functions bind tighter than and/or: only nested junctions and raw text need
        parentheses, so simple windows read as Acumatica's own examples do (`A ge x and A lt y`)."""
        return f" {self.operator} ".join(_grouped(part, version) for part in self.parts)


def _grouped(part: ODataFilter, version: int) -> str:
    text = part.render(version)
    return f"({text})" if isinstance(part, (_Junction, _Raw)) else text


@dataclasses.dataclass(frozen=True)
class _Not(ODataFilter):
    part: ODataFilter

    def render(self, version: int) -> str:
        return f"not ({self.part.render(version)})"


@dataclasses.dataclass(frozen=True)
class _Raw(ODataFilter):
    text: str

    def render(self, version: int) -> str:
        return self.text


def field_name(name: str) -> str:
    """Return `name` if it is a plain field identifier or path, else raise ValueError."""
    if not isinstance(name, str) or not _FIELD.match(name):
        raise ValueError(f"{name!r} is not a valid Acumatica field name (letters, digits, _ and / or . paths)")
    return name


def compare(field: str, operator: str, value: Any) -> ODataFilter:
    """`field operator value` with one of eq ne gt ge lt le."""
    if operator not in _COMPARISONS:
        raise ValueError(f"{operator!r} is not an OData comparison; use one of {', '.join(_COMPARISONS)}")
    literal(value, 3)  # refuse bad values now, not when the query is sent
    return _Comparison(field_name(field), operator, value)


def eq(field: str, value: Any) -> ODataFilter:
    return compare(field, "eq", value)


def ne(field: str, value: Any) -> ODataFilter:
    return compare(field, "ne", value)


def gt(field: str, value: Any) -> ODataFilter:
    return compare(field, "gt", value)


def ge(field: str, value: Any) -> ODataFilter:
    return compare(field, "ge", value)


def lt(field: str, value: Any) -> ODataFilter:
    return compare(field, "lt", value)


def le(field: str, value: Any) -> ODataFilter:
    return compare(field, "le", value)


def startswith(field: str, prefix: str) -> ODataFilter:
    return _Function("startswith", field_name(field), _text(prefix))


def endswith(field: str, suffix: str) -> ODataFilter:
    return _Function("endswith", field_name(field), _text(suffix))


def substringof(text: str, field: str) -> ODataFilter:
    """True when `field` contains `text`: v3 `substringof(text, field)` (REST has no `contains`), v4 `contains`."""
    return _Function("substringof", field_name(field), _text(text))


def and_(*parts: ODataFilter | None) -> ODataFilter:
    """All of `parts` (None parts are skipped, so optional conditions compose)."""
    return _junction("and", parts)


def or_(*parts: ODataFilter | None) -> ODataFilter:
    return _junction("or", parts)


def not_(part: ODataFilter) -> ODataFilter:
    return _Not(_as_filter(part))


def raw(text: str) -> ODataFilter:
    """A hand-written filter, passed through unchanged in both dialects."""
    return _Raw(text)


def render_filter(value: ODataFilter | str | None, version: int) -> str | None:
    """The filter text for one dialect; strings are taken as already written for that dialect."""
    if value is None or isinstance(value, str):
        return value or None
    return value.render(version)


def literal(value: Any, version: int = 3) -> str:
    """One Python value as an OData literal of `version` 3 (REST) or 4 (DAC/GI OData)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, decimal.Decimal)):
        return str(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"{value!r} cannot be written as an OData literal")
        return repr(value)
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, datetime.datetime):
        text = _instant(value)
        return f"datetimeoffset'{text}'" if version == 3 else text
    if isinstance(value, datetime.date):
        return f"date'{value.isoformat()}'" if version == 3 else value.isoformat()
    if isinstance(value, uuid.UUID):
        return f"guid'{value}'" if version == 3 else str(value)
    raise TypeError(f"{type(value).__name__} value {value!r} cannot be used in an OData filter")


def join_names(names: str | Iterable[str] | None) -> str | None:
    """`$select`/`$expand`/`$custom` value from a comma-separated string or a list of names."""
    if names is None or isinstance(names, str):
        return names or None
    joined = ",".join(names)
    return joined or None


def query_params(**values: Any) -> dict[str, str]:
    """`{"$name": value}` for every value that is set (None and empty are left out)."""
    return {f"${name}": str(value) for name, value in values.items() if value is not None and value != ""}


def _instant(value: datetime.datetime) -> str:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(
            f"naive datetime {value.isoformat()} in a filter: give it a time zone "
            "(e.g. value.replace(tzinfo=datetime.timezone.utc)) so the instant is unambiguous"
        )
    return value.isoformat(timespec="milliseconds")


def _text(value: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"string functions need a str argument, got {type(value).__name__}")
    return value


def _as_filter(part: Any) -> ODataFilter:
    if isinstance(part, ODataFilter):
        return part
    if isinstance(part, str):
        return _Raw(part)
    raise TypeError(f"{part!r} is not a filter: build it with eq/ge/lt/... or pass a string")


def _junction(operator: str, parts: tuple[ODataFilter | None, ...]) -> ODataFilter:
    present = tuple(_as_filter(part) for part in parts if part is not None)
    if not present:
        raise ValueError(f"{operator}_() needs at least one condition")
    return present[0] if len(present) == 1 else _Junction(operator, present)
