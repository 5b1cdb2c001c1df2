"""Lists of keys a load stages into temporary tables: keys to mark deleted at commit, keys a source still lists.

Each key is converted to its column's kind (a load's key columns, or ``_acumatica_id`` as text) and the keys are
inserted ``KEY_CHUNK`` at a time, so memory stays bounded however many keys a caller hands in.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Column, Connection, MetaData, Table

from airflow_provider_acumatica.warehouse.columns import CONVERTERS, Kind, UtcDateTime, sql_type_of
from airflow_provider_acumatica.warehouse.schema import ACUMATICA_ID, DELETED_AT, TableLayout

KEY_CHUNK = 5000
"""Keys are staged this many at a time."""


def stage_keys(
    connection: Connection,
    layout: TableLayout,
    keys: Iterable[Any],
    match: Sequence[str],
    table: Table | None = None,
    deleted_at: datetime | None = None,
) -> tuple[int, Table]:
    """Stage ``keys`` (tuples of values for the ``match`` columns, a bare value for one column) into ``table``, or into
    a temporary table made on first use, with a ``_deleted_at`` column when ``deleted_at`` is given; returns how many
    keys were staged, and the table."""
    count, chunk = 0, []
    for key in keys:
        values = tuple(key) if isinstance(key, (tuple, list)) else (key,)
        if len(values) != len(match):
            raise ValueError(f"table {layout.table!r}: key {key!r} should have {len(match)} value(s), for {match}")
        if table is None:
            table = _key_table(connection, layout, match, values, deleted_at is not None)
        chunk.append(_key_row(layout, table, values, deleted_at))
        if len(chunk) == KEY_CHUNK:
            count += _flush(connection, table, chunk)
    if table is None:
        table = _key_table(connection, layout, match, (None,) * len(match), deleted_at is not None)
    return count + _flush(connection, table, chunk), table


def _key_table(
    connection: Connection, layout: TableLayout, match: Sequence[str], sample: Sequence[Any], with_time: bool
) -> Table:
    kinds = [
        Kind.TEXT if name == ACUMATICA_ID else layout.kind_of_key(i, v)
        for i, (name, v) in enumerate(zip(match, sample))
    ]
    columns = [Column(name, sql_type_of(kind)) for name, kind in zip(match, kinds)]
    if with_time:
        columns.append(Column(DELETED_AT, UtcDateTime()))
    table = Table(f"_acumatica_keys_{uuid.uuid4().hex[:12]}", MetaData(), *columns, prefixes=["TEMPORARY"])
    table.create(connection)
    table.info["kinds"] = kinds
    return table


def _key_row(layout: TableLayout, table: Table, values: Sequence[Any], deleted_at: datetime | None) -> dict[str, Any]:
    row = {}
    for name, kind, value in zip(table.columns.keys(), table.info["kinds"], values):
        try:
            row[name] = CONVERTERS[kind](value)
        except (ValueError, TypeError, ArithmeticError) as error:
            raise ValueError(f"table {layout.table!r}: key value {value!r} for column {name!r}: {error}") from None
    if deleted_at is not None:
        row[DELETED_AT] = deleted_at
    return row


def _flush(connection: Connection, table: Table, chunk: list[dict[str, Any]]) -> int:
    count = len(chunk)
    if chunk:
        connection.execute(table.insert(), chunk)
        chunk.clear()
    return count
