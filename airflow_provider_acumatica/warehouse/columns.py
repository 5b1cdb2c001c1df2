"""Column kinds: from declared Edm types, from values, from existing columns; their SQL types; fitting values to them.

A *kind* is the small set of logical types the warehouse stores. Each kind has one SQL type for
new columns and one converter that turns an incoming value into the canonical Python value of the
kind (aware UTC datetimes, Decimals, JSON text for dicts and lists) or refuses it.
"""

from __future__ import annotations

import enum
import json
import logging
import math
import uuid
from collections.abc import Callable, Sequence
from datetime import date, datetime, timezone
from decimal import Decimal
from operator import attrgetter
from typing import Any

from sqlalchemy import BigInteger, Boolean, Date, DateTime, Double, Float, Integer, Numeric, String, Text
from sqlalchemy.types import JSON, TypeDecorator, TypeEngine, UserDefinedType

log = logging.getLogger(__name__)

KEY_TEXT_LENGTH = 450
"""Key columns of text kind are VARCHAR of this length, so every dialect can index them."""


class Kind(enum.Enum):
    """The logical type of a warehouse column."""

    TEXT = "text"
    INTEGER = "integer"
    DECIMAL = "decimal"
    FLOAT = "float"
    BOOLEAN = "boolean"
    TIMESTAMP = "timestamp"
    DATE = "date"
    OTHER = "other"
    """A column someone else created with a type we do not know: values pass through unchanged."""


EDM_KINDS: dict[str, Kind] = {
    "Edm.String": Kind.TEXT,
    "Edm.Guid": Kind.TEXT,
    "Edm.Binary": Kind.TEXT,
    "Edm.Duration": Kind.TEXT,
    "Edm.Time": Kind.TEXT,
    "Edm.TimeOfDay": Kind.TEXT,
    "Edm.Byte": Kind.INTEGER,
    "Edm.SByte": Kind.INTEGER,
    "Edm.Int16": Kind.INTEGER,
    "Edm.Int32": Kind.INTEGER,
    "Edm.Int64": Kind.INTEGER,
    "Edm.Decimal": Kind.DECIMAL,
    "Edm.Double": Kind.FLOAT,
    "Edm.Single": Kind.FLOAT,
    "Edm.Boolean": Kind.BOOLEAN,
    "Edm.DateTimeOffset": Kind.TIMESTAMP,
    "Edm.DateTime": Kind.TIMESTAMP,
    "Edm.Date": Kind.DATE,
}


class UtcDateTime(TypeDecorator):
    """A date-time stored as UTC (timestamptz on PostgreSQL) and always read back as an aware UTC datetime."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        value = to_timestamp(value)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


class DecimalText(UserDefinedType):
    """An exact decimal on SQLite: the number's plain text (``12.3456``) in a column declared ``DECIMAL_TEXT``.

    SQLite has no exact decimal type: a NUMERIC column turns such text into an 8-byte float (approximate money).
    The declared name has TEXT affinity, so SQLite keeps the text as written; read through this type it comes
    back as a ``Decimal``. SQL arithmetic on it (``SUM``) still converts to floating point: sum in ``Decimal``,
    or cast where an approximation is fine."""

    cache_ok = True
    SQL_NAME = "DECIMAL_TEXT"

    def get_col_spec(self, **_kw: Any) -> str:
        return self.SQL_NAME

    def bind_processor(self, dialect: Any) -> Callable[[Any], Any]:
        return lambda value: None if value is None else decimal_text(to_decimal(value))

    def result_processor(self, dialect: Any, coltype: Any) -> Callable[[Any], Any]:
        return lambda value: None if value is None else to_decimal(value)


def read_exact_decimals(engine: Any) -> Any:
    """Make a SQLite engine reflect ``DECIMAL_TEXT`` columns as ``DecimalText`` (values read as Decimals, not text);
    returns the engine. Other engines are left as they are. For anyone reading the warehouse with SQLAlchemy."""
    if engine.dialect.name == "sqlite":
        engine.dialect.ischema_names = {**engine.dialect.ischema_names, DecimalText.SQL_NAME: DecimalText}
    return engine


def decimal_text(value: Decimal) -> str:
    """A Decimal's plain text, never in exponent form: ``Decimal("1E-7")`` -> ``0.0000001``."""
    return format(value, "f")


def kind_of_edm(edm_type: str, field: str) -> Kind:
    """The kind of a declared OData type; unknown Edm types are stored as text, anything else is refused."""
    kind = EDM_KINDS.get(edm_type)
    if kind is not None:
        return kind
    if isinstance(edm_type, str) and edm_type.startswith("Edm."):
        log.warning("Field %r has type %s, which the warehouse stores as text", field, edm_type)
        return Kind.TEXT
    raise ValueError(
        f"declared_types[{field!r}] is {edm_type!r}: expected an OData type such as 'Edm.String', "
        f"'Edm.Int32', 'Edm.Decimal' or 'Edm.DateTimeOffset'"
    )


def kind_of_value(value: Any) -> Kind | None:
    """The kind a column gets from its first value; None for None (the column waits for a real value)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return Kind.BOOLEAN
    if isinstance(value, int):
        return Kind.INTEGER
    if isinstance(value, float):
        return Kind.FLOAT
    if isinstance(value, Decimal):
        return Kind.DECIMAL
    if isinstance(value, datetime):
        return Kind.TIMESTAMP
    if isinstance(value, date):
        return Kind.DATE
    return Kind.TEXT


def kind_of_sql_type(sql_type: TypeEngine) -> Kind:
    """The kind of an existing column, from its reflected SQL type."""
    if isinstance(sql_type, TypeDecorator):
        sql_type = sql_type.impl_instance
    for sql_class, kind in _SQL_CLASS_KINDS:
        if isinstance(sql_type, sql_class):
            return kind
    return Kind.OTHER


_SQL_CLASS_KINDS: tuple[tuple[type, Kind], ...] = (
    (DecimalText, Kind.DECIMAL),
    (Boolean, Kind.BOOLEAN),
    (Integer, Kind.INTEGER),  # every integer width
    (Float, Kind.FLOAT),  # before Numeric: Float is a Numeric
    (Numeric, Kind.DECIMAL),
    (DateTime, Kind.TIMESTAMP),
    (Date, Kind.DATE),
    (String, Kind.TEXT),
    (JSON, Kind.TEXT),
)


def sql_type_of(kind: Kind, *, key: bool = False) -> TypeEngine:
    """The SQL type of a new column of this kind; key columns of text get an indexable length."""
    if kind is Kind.TEXT:
        return String(KEY_TEXT_LENGTH) if key else Text()
    return _NEW_COLUMN_TYPES[kind]()


_NEW_COLUMN_TYPES: dict[Kind, Callable[[], TypeEngine]] = {
    Kind.INTEGER: BigInteger,
    Kind.DECIMAL: lambda: Numeric().with_variant(DecimalText(), "sqlite"),
    Kind.FLOAT: Double,
    Kind.BOOLEAN: Boolean,
    Kind.TIMESTAMP: UtcDateTime,
    Kind.DATE: Date,
}


def _json_default(value: Any) -> str:
    """JSON text of the non-JSON values custom fields and details carry."""
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, (Decimal, uuid.UUID)):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=_json_default)


def to_text(value: Any) -> str:
    """Strings as they are; dicts and lists as compact JSON; other scalars in their plain text form."""
    if isinstance(value, str):
        return value
    if isinstance(value, (dict, list, tuple)):
        if not value:  # the common case (an entity without custom fields): no encoder call per row
            return "{}" if isinstance(value, dict) else "[]"
        return _JSON.encode(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return to_timestamp(value).isoformat()
    if isinstance(value, (int, float, Decimal, date, uuid.UUID)):
        return value.isoformat() if isinstance(value, date) else str(value)
    raise TypeError(f"a {type(value).__name__} has no text form")


def to_integer(value: Any) -> int:
    """Integers, integral numbers and integer strings; never booleans."""
    if type(value) is int:
        return value
    if isinstance(value, bool):
        raise TypeError("a boolean is not an integer")
    if isinstance(value, (int, str)):
        return int(value)
    if isinstance(value, (float, Decimal)) and math.isfinite(value) and value == int(value):
        return int(value)
    raise ValueError("not an integer")


def to_decimal(value: Any) -> Decimal:
    """Exact numbers: Decimals, integers, floats (by their shortest repr) and numeric strings; finite only."""
    if isinstance(value, bool):
        raise TypeError("a boolean is not a number")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, (int, str)):
        result = Decimal(value.strip() if isinstance(value, str) else value)
    elif isinstance(value, float):
        result = Decimal(repr(value))
    else:
        raise TypeError("not a number")
    if not result.is_finite():
        raise ValueError("not a finite number")
    return result


def to_float(value: Any) -> float:
    """Floating-point numbers from any number or numeric string; never booleans."""
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal, str)):
        raise TypeError("not a number")
    return float(value)


def to_boolean(value: Any) -> bool:
    """Booleans and the strings 'true'/'false'."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise TypeError("not a boolean")


_DATETIME_OR_NONE = frozenset({datetime, type(None)})
_UTC_ONLY = frozenset({timezone.utc})
_TZINFO = attrgetter("tzinfo")


def are_utc_datetimes(values: Sequence[Any]) -> bool:
    """Whether every value is None or a plain datetime in ``timezone.utc`` (what ``to_timestamp`` returns), checked in
    C: staging passes such a column as it is, the writer's pipe packs it."""
    return set(map(type, values)) <= _DATETIME_OR_NONE and set(map(_TZINFO, filter(None, values))) <= _UTC_ONLY


def to_timestamp(value: Any) -> datetime:
    """Aware datetimes (or ISO 8601 strings with an offset) as plain datetimes in ``timezone.utc`` (a subclass's,
    such as pendulum's, too: staging formats them in C, which takes only datetimes); a naive value has no defined
    instant."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value.strip())
    if not isinstance(value, datetime):
        raise TypeError("not a date-time")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(
            "a date-time without a UTC offset (give aware datetimes, converted from the profile time zone)"
        )
    utc = value.astimezone(timezone.utc)
    if utc.__class__ is datetime and utc.tzinfo is timezone.utc:
        return utc
    return datetime(
        utc.year, utc.month, utc.day, utc.hour, utc.minute, utc.second, utc.microsecond, tzinfo=timezone.utc
    )


def to_date(value: Any) -> date:
    """Dates (not date-times) and ISO 8601 date strings."""
    if isinstance(value, str):
        return date.fromisoformat(value.strip())
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    raise TypeError("not a date")


def _unchanged(value: Any) -> Any:
    return value


CONVERTERS: dict[Kind, Callable[[Any], Any]] = {
    Kind.TEXT: to_text,
    Kind.INTEGER: to_integer,
    Kind.DECIMAL: to_decimal,
    Kind.FLOAT: to_float,
    Kind.BOOLEAN: to_boolean,
    Kind.TIMESTAMP: to_timestamp,
    Kind.DATE: to_date,
    Kind.OTHER: _unchanged,
}
"""For each kind, the function turning a value into the kind's canonical Python value (raises when it cannot)."""

CANONICAL_TYPES: dict[Kind, type] = {
    Kind.TEXT: str,
    Kind.INTEGER: int,
    Kind.FLOAT: float,
    Kind.BOOLEAN: bool,
    Kind.DECIMAL: Decimal,
    Kind.DATE: date,
    Kind.TIMESTAMP: datetime,  # only the aware UTC ones: see schema._fitted
}
"""For each kind, the type whose values are already canonical and need no converting (fast path)."""
