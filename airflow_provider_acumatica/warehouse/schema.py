"""Table and column naming, and the layout of one warehouse table as a load discovers it.

Names: snake_case of the source names (``PMTask`` -> ``pm_task``, ``WCCCode`` -> ``wcc_code``);
characters other than letters, digits and ``_`` become ``_``; names with a leading underscore (the
system columns) pass through; names too long for PostgreSQL (63 bytes) are shortened with a hash.
Identifiers are always quoted by SQLAlchemy when used, so no name can inject SQL.

Columns get their kind from, in order: the existing table, the declared Edm types, the first
non-None value of the field. A field that has only had None values and has no declared type gets no
column yet (as in dlt): its NULLs are what the column will hold for those rows once a value arrives.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy.types import TypeEngine

from airflow_provider_acumatica.warehouse.columns import (
    CANONICAL_TYPES,
    CONVERTERS,
    Kind,
    are_utc_datetimes,
    kind_of_edm,
    kind_of_sql_type,
    kind_of_value,
    sql_type_of,
)
from airflow_provider_acumatica.warehouse.errors import SchemaConflictError, ValueMisfitError

TENANT = "_tenant"
ACUMATICA_ID = "_acumatica_id"
LAST_MODIFIED = "_last_modified"
SYNCED_AT = "_synced_at"
DELETED_AT = "_deleted_at"
CALLER_SYSTEM_COLUMNS = {ACUMATICA_ID: Kind.TEXT, LAST_MODIFIED: Kind.TIMESTAMP}
"""System columns the caller fills in each row."""
LOADER_SYSTEM_COLUMNS = {TENANT: Kind.TEXT, SYNCED_AT: Kind.TIMESTAMP, DELETED_AT: Kind.TIMESTAMP}
"""System columns the loader fills; a row must not carry them."""
STAGED_ORDER = "_staged_order"
"""Staging-only column: the order rows arrived in, so that of copies of a key with one timestamp the last wins."""

Columns = Mapping[str, Sequence[Any]]
"""A batch of rows held by field: each field's values, one per row (None: no value), all of one length."""
BatchConverter = Callable[[Columns, int, int], list[Sequence[Any]]]
"""(batch, its row count, the arrival order of its first row) -> the staging columns (see ``batch_converter``)."""

MAX_IDENTIFIER_BYTES = 63
_ACRONYM_END = re.compile(r"([A-Z]+)([A-Z][a-z])")
_WORD_START = re.compile(r"([a-z0-9])([A-Z])")
_NOT_WORD = re.compile(r"\W+")


def _snake_case(name: str) -> str:
    if not isinstance(name, str) or not name:
        raise ValueError(f"a table or field name must be a non-empty string, got {name!r}")
    spaced = _WORD_START.sub(r"\1_\2", _ACRONYM_END.sub(r"\1_\2", name))
    return _fit_length(_NOT_WORD.sub("_", spaced).lower(), name)


def _fit_length(identifier: str, original: str) -> str:
    """Shorten an identifier PostgreSQL would truncate, keeping it unique with a hash of the original name."""
    if len(identifier.encode()) <= MAX_IDENTIFIER_BYTES:
        return identifier
    digest = hashlib.sha1(original.encode()).hexdigest()[:8]
    head = identifier.encode()[: MAX_IDENTIFIER_BYTES - 9].decode(errors="ignore")
    return f"{head}_{digest}"


def table_name(entity: str) -> str:
    """The warehouse table of a source table: ``TimeEntry`` -> ``time_entry``, ``PMTask`` -> ``pm_task``."""
    return _snake_case(entity)


def column_name(field: str) -> str:
    """The column of a source field: ``ProjectID`` -> ``project_id``; ``_system`` names pass through."""
    if isinstance(field, str) and field.startswith("_"):
        return _fit_length(field, field)
    return _snake_case(field)


@dataclass
class LayoutColumn:
    """One column of the table: its name, the row key it is filled from, its kind and SQL type."""

    name: str
    field: str
    kind: Kind
    sql_type: TypeEngine
    key: bool = False


class TableLayout:
    """The columns of one table during a load: existing, declared, and those new fields bring (schema evolution)."""

    def __init__(self, table: str, key_fields: Sequence[str], declared_types: Mapping[str, str] | None) -> None:
        self.table = table
        self.key_fields = list(key_fields) or [ACUMATICA_ID]
        self.key_columns = [column_name(field) for field in self.key_fields]
        self.columns: dict[str, LayoutColumn] = {}
        self.existing: set[str] = set()
        self._declared = {field: kind_of_edm(edm, field) for field, edm in (declared_types or {}).items()}
        self._staged: list[str] = []
        for name, kind in CALLER_SYSTEM_COLUMNS.items():
            self._add(name, kind)
        for field, kind in self._declared.items():
            self._add(field, kind)

    # -- what the table looks like -------------------------------------------------------------------

    def adopt_existing(self, reflected: Iterable[Mapping[str, Any]], primary_key: Sequence[str]) -> None:
        """Take the columns and types of the table already in the warehouse; its key must be this load's."""
        expected_key = [TENANT, *self.key_columns]
        if list(primary_key) != expected_key:
            raise SchemaConflictError(
                f"table {self.table!r} exists with primary key {list(primary_key)} but this load's key is "
                f"{expected_key} (key fields {self.key_fields}): use the key fields the table was built with, "
                f"or drop the table to rebuild it"
            )
        for column in reflected:
            name = column["name"]
            self.existing.add(name)
            kind = kind_of_sql_type(column["type"])
            if name in self.columns:
                self.columns[name].kind, self.columns[name].sql_type = kind, column["type"]
            elif name not in LOADER_SYSTEM_COLUMNS:
                self.columns[name] = LayoutColumn(name, "", kind, column["type"], name in self.key_columns)
        for field, name in zip(self.key_fields, self.key_columns):
            self._add(field, self.columns[name].kind)  # key columns are always staged

    def staged_columns(self) -> list[LayoutColumn]:
        """The columns the staging table holds, in order: those with a known kind and a field of this load."""
        return [self.columns[name] for name in self._staged]

    def new_columns(self) -> list[LayoutColumn]:
        """Staged columns the warehouse table does not have yet."""
        return [column for column in self.staged_columns() if column.name not in self.existing]

    def kind_of_key(self, position: int, sample: Any) -> Kind:
        """The kind of a key column, from the layout when known, else from a sample value."""
        column = self.columns.get(self.key_columns[position])
        return column.kind if column else (kind_of_value(sample) or Kind.TEXT)

    # -- discovering fields ---------------------------------------------------------------------------

    def discover(self, columns: Columns) -> list[LayoutColumn]:
        """Give a column to each new field of the batch whose kind is known (from its existing column, else from its
        first value that is not None); returns the columns added."""
        known = {column.field for column in self.staged_columns()}
        added = []
        for field in sorted(columns.keys() - known):
            kind = self._kind_from_values(field, columns[field])
            if kind is not None:
                added.append(self._add(field, kind))
        return added

    def _kind_from_values(self, field: str, values: Sequence[Any]) -> Kind | None:
        if field in LOADER_SYSTEM_COLUMNS or field == STAGED_ORDER:
            raise SchemaConflictError(
                f"table {self.table!r}: rows carry field {field!r}, which the loader fills itself; "
                f"remove it from the rows"
            )
        existing = self.columns.get(column_name(field))
        if existing is not None and not existing.field:
            return existing.kind
        return next((kind_of_value(value) for value in values if value is not None), None)

    def _add(self, field: str, kind: Kind) -> LayoutColumn:
        name = column_name(field)
        column = self.columns.get(name)
        if column is not None and column.field and column.field != field:
            raise SchemaConflictError(
                f"table {self.table!r}: fields {column.field!r} and {field!r} both map to column {name!r}; "
                f"drop or rename one of them in the source (for example with $select)"
            )
        if column is None:
            column = LayoutColumn(name, field, kind, sql_type_of(kind, key=name in self.key_columns))
            column.key = name in self.key_columns
            self.columns[name] = column
        column.field = field
        if name not in self._staged:
            self._staged.append(name)
        return column

    # -- converting rows ------------------------------------------------------------------------------

    def batch_converter(self, adapters: Mapping[Kind, Callable[[Any], Any]]) -> BatchConverter:
        """A function turning a batch held by field into the staging columns (in the staging table's order, arrival
        order first), values fitted to their kinds; it never changes the batch's sequences.

        ``adapters`` turn a kind's canonical value into what the database driver takes (per dialect).
        Values already of their canonical type pass untouched (a column of them passes as it is).
        """
        plan = [
            (
                column,
                None if column.kind in adapters else CANONICAL_TYPES.get(column.kind),
                _compose(CONVERTERS[column.kind], adapters.get(column.kind)),
            )
            for column in self.staged_columns()
        ]

        def convert(columns: Columns, count: int, first_order: int) -> list[Sequence[Any]]:
            staged: list[Sequence[Any]] = [range(first_order, first_order + count)]
            for column, canonical, fit in plan:
                values = columns.get(column.field)
                if values is None:  # a field no row of this batch has
                    values = [None] * count
                if column.key and None in values:
                    raise self._missing_key(columns, values.index(None), column)
                try:
                    staged.append(_fitted(values, canonical, fit))
                except (ValueError, TypeError, ArithmeticError):
                    raise self._first_misfit(columns, values, column, fit) from None
            return staged

        return convert

    def _missing_key(self, columns: Columns, row: int, column: LayoutColumn) -> ValueMisfitError:
        return ValueMisfitError(
            f"table {self.table!r}: a row has no value for key field {column.field!r} "
            f"(row key {self.describe_key(columns, row)}); every row needs all key fields {self.key_fields}"
        )

    def _first_misfit(
        self, columns: Columns, values: Sequence[Any], column: LayoutColumn, fit: Callable[[Any], Any]
    ) -> ValueMisfitError:
        for row, value in enumerate(values):
            try:
                if value is not None:
                    fit(value)
            except (ValueError, TypeError, ArithmeticError) as error:
                return self._misfit(columns, row, column, value, error)
        raise AssertionError("a conversion failed, then succeeded on every row")

    def describe_key(self, columns: Columns, row: int) -> str:
        """The key of the batch's ``row``-th row as text for messages, e.g. ``TimeEntryID='abc'``."""
        return ", ".join(f"{field}={_value_of(columns, field, row)!r}" for field in self.key_fields)

    def _misfit(
        self, columns: Columns, row: int, column: LayoutColumn, value: Any, error: Exception
    ) -> ValueMisfitError:
        shown = repr(value)
        shown = shown if len(shown) <= 80 else shown[:77] + "..."
        return ValueMisfitError(
            f"table {self.table!r}, column {column.name!r} (field {column.field!r}, {column.kind.value}), "
            f"row {self.describe_key(columns, row)}: value {shown} ({type(value).__name__}) does not fit: {error}. "
            f"Fix the value at the source, declare the field's type in declared_types, or change the "
            f"column to a wider type (e.g. text) in the warehouse"
        )


_UTC = timezone.utc  # a global: looking up timezone.utc for each value doubled _fitted's check (79 -> 39 ns)


def _value_of(columns: Columns, field: str, row: int) -> Any:
    """The ``row``-th row's value of ``field`` (None when the batch has no such field)."""
    values = columns.get(field)
    return None if values is None else values[row]


def _fitted(values: Sequence[Any], canonical: type | None, fit: Callable[[Any], Any]) -> Sequence[Any]:
    """`values` fitted to their column; those already canonical pass untouched. For timestamps these are
    the aware UTC datetimes the hook delivers (to_timestamp would return them as they are)."""
    if canonical is datetime:
        if are_utc_datetimes(values):
            return values  # checked in C; and a list shared by two fields stays shared (formatted once for SQLite)
        return [v if v is None or (v.__class__ is datetime and v.tzinfo is _UTC) else fit(v) for v in values]
    types = set(map(type, values))
    if canonical is not None and types <= {canonical, type(None)}:
        return values  # all canonical already: checked in C, no per-value Python step
    if canonical is str and types <= {dict, type(None)} and not any(values):  # custom fields of an entity with none
        return [None if value is None else "{}" for value in values]
    return [v if v is None or type(v) is canonical else fit(v) for v in values]


def _compose(convert: Callable[[Any], Any], adapt: Callable[[Any], Any] | None) -> Callable[[Any], Any]:
    if adapt is None:
        return convert
    return lambda value: adapt(convert(value))
