"""Moving an existing table to the layout a load now declares, every row kept, in one transaction.

A table built by an earlier version may hold a field in another kind than the one now declared (a date stored
as a date-time, a decimal stored by SQLite as a float), lack a column now derived from another (a duration's
minutes), or carry a column no longer wanted (a timestamp that is also ``_last_modified``). ``migrate_table``
fixes all three, serialised with the table's commits (the lock they take) and in one transaction: readers see
the old table or the migrated one. A retyped column is rebuilt as a new column of the new type, filled by
converting each distinct old value once, that then takes the old one's name (so it moves to the table's end);
a derived column is added and filled from its source column the same way. Nothing happens, and nothing is
locked, when the table is already as declared. The caller's converters take the old column's canonical values
(aware UTC datetimes, Decimals...), never None.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Column, Connection, MetaData, Table, bindparam, case, column, func, inspect, select, update

from airflow_provider_acumatica.warehouse import statements
from airflow_provider_acumatica.warehouse.columns import (
    CONVERTERS,
    DecimalText,
    Kind,
    kind_of_edm,
    kind_of_sql_type,
    sql_type_of,
)
from airflow_provider_acumatica.warehouse.schema import column_name

log = logging.getLogger(__name__)

MIGRATING_SUFFIX = "__migrating"
CHUNK = 500
"""Distinct values converted per UPDATE statement (two parameters each, well inside SQLite's limit)."""


@dataclass(frozen=True)
class MigrationPlan:
    """What a load declares of its table, for ``migrate_table``.

    ``retype``: field -> (declared OData type, converter from the old column's values), for the fields whose
    existing column may be of another kind; ``derive``: new field -> (source field, declared OData type,
    converter from the source column's values); ``drop``: fields whose columns must go (never key columns)."""

    retype: Mapping[str, tuple[str, Callable[[Any], Any]]] = field(default_factory=dict)
    derive: Mapping[str, tuple[str, str, Callable[[Any], Any]]] = field(default_factory=dict)
    drop: Sequence[str] = ()


@dataclass
class MigrationResult:
    """What ``migrate_table`` changed: column names, and how many rows the table holds (all kept)."""

    retyped: list[str] = field(default_factory=list)
    derived: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    rows: int = 0

    def __bool__(self) -> bool:
        return bool(self.retyped or self.derived or self.dropped)


def migrate_table(warehouse: Any, table: str, plan: MigrationPlan) -> MigrationResult:
    """Bring ``table`` (of ``warehouse``, a ``loader.Warehouse``) to ``plan``; a table not there yet is left alone."""
    with warehouse.engine.connect() as connection:
        pending = _pending(connection, warehouse, table, plan)
        connection.rollback()  # ends the read's implicit transaction
        if not pending:
            return MigrationResult()
        with warehouse.dialect.write_transaction(connection):
            warehouse.dialect.lock(connection, f"acumatica:{warehouse.schema}.{table}")
            result = _migrate(connection, warehouse, table, plan)  # looked at again under the lock
    if result:
        log.info(
            "Table %r migrated, all %d rows kept: retyped %s, added %s, dropped %s",
            table,
            result.rows,
            result.retyped or "nothing",
            result.derived or "nothing",
            result.dropped or "nothing",
        )
    return result


def _pending(connection: Connection, warehouse: Any, table: str, plan: MigrationPlan) -> bool:
    if not inspect(connection).has_table(table, schema=warehouse.schema):
        return False
    return bool(_changes(_reflect(connection, warehouse, table), warehouse, plan))


def _reflect(connection: Connection, warehouse: Any, table: str) -> Table:
    return Table(table, MetaData(), schema=warehouse.schema, autoload_with=connection)


def _changes(reflected: Table, warehouse: Any, plan: MigrationPlan) -> dict[str, list]:
    """The columns to retype (name, kind, converter), derive (name, source, kind, converter) and drop."""
    keys = {c.name for c in reflected.primary_key.columns}
    existing = {c.name: c for c in reflected.columns}
    sqlite = warehouse.engine.dialect.name == "sqlite"
    retype = []
    for name, existing_column in existing.items():
        if name in keys:
            continue
        kind = kind_of_sql_type(existing_column.type)
        if sqlite and kind is Kind.DECIMAL and not isinstance(existing_column.type, DecimalText):
            retype.append((name, Kind.DECIMAL, CONVERTERS[Kind.DECIMAL]))  # a NUMERIC column holds floats
    for field_name, (edm, convert) in plan.retype.items():
        name, kind = column_name(field_name), kind_of_edm(edm, field_name)
        if name in existing and name not in keys and kind_of_sql_type(existing[name].type) is not kind:
            retype = [change for change in retype if change[0] != name] + [(name, kind, convert)]
    derive = [
        (column_name(new), column_name(source), kind_of_edm(edm, new), convert)
        for new, (source, edm, convert) in plan.derive.items()
        if column_name(new) not in existing and column_name(source) in existing
    ]
    drop = [column_name(name) for name in plan.drop if column_name(name) in existing and column_name(name) not in keys]
    return {"retype": retype, "derive": derive, "drop": drop} if retype or derive or drop else {}


def _migrate(connection: Connection, warehouse: Any, table: str, plan: MigrationPlan) -> MigrationResult:
    reflected = _reflect(connection, warehouse, table)
    changes = _changes(reflected, warehouse, plan)
    result = MigrationResult(rows=connection.execute(select(func.count()).select_from(reflected)).scalar())
    if not changes:
        return result
    for name, kind, convert in changes["retype"]:
        _fill(connection, reflected, f"{name}{MIGRATING_SUFFIX}", kind, reflected.c[name], convert)
        connection.execute(statements.DropColumn(reflected, name))
        connection.execute(statements.RenameColumn(reflected, f"{name}{MIGRATING_SUFFIX}", name))
        reflected = _reflect(connection, warehouse, table)
        result.retyped.append(name)
    for name, source, kind, convert in changes["derive"]:
        _fill(connection, reflected, name, kind, reflected.c[source], convert)
        reflected = _reflect(connection, warehouse, table)
        result.derived.append(name)
    for name in changes["drop"]:
        connection.execute(statements.DropColumn(reflected, name))
        result.dropped.append(name)
    return result


def _fill(
    connection: Connection, table: Table, name: str, kind: Kind, source: Column, convert: Callable[[Any], Any]
) -> None:
    """Add column ``name`` of ``kind`` and set it, for each distinct value of ``source``, to its conversion: one
    UPDATE (one pass over the table) per ``CHUNK`` distinct values."""
    new_type = sql_type_of(kind)
    connection.execute(statements.AddColumn(table, Column(name, new_type)))
    table = Table(table.name, MetaData(), schema=table.schema, autoload_with=connection)
    old_kind = kind_of_sql_type(source.type)
    raw = column(source.name)  # compared as stored: no type processing on the way out and back
    distinct = connection.execute(select(raw).select_from(table).where(raw.is_not(None)).distinct()).scalars().all()
    fit = CONVERTERS[kind]
    for start in range(0, len(distinct), CHUNK):
        chunk = distinct[start : start + CHUNK]
        new_values = case(
            *[
                (raw == bindparam(None, old), bindparam(None, fit(convert(_canonical(old, old_kind))), type_=new_type))
                for old in chunk
            ]
        )
        connection.execute(
            update(table).where(raw.in_([bindparam(None, old) for old in chunk])).values({name: new_values})
        )


def _canonical(stored: Any, kind: Kind) -> Any:
    """A stored value read raw as the canonical value of its kind (SQLite hands back texts and floats)."""
    if kind is Kind.TIMESTAMP:
        moment = datetime.fromisoformat(stored) if isinstance(stored, str) else stored
        return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
    return stored if kind is Kind.OTHER else CONVERTERS[kind](stored)
