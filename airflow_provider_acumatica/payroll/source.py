"""The source of payroll publishing: approved time activities in the warehouse, one row per activity.

The table (default `payroll_time_activity`) or a SQL query returning its columns is read for one tenant and one
pay period. Values are taken as they are stored; `rules` turns them into activities or rejections.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    DateTime,
    Engine,
    MetaData,
    String,
    Table,
    Text,
    bindparam,
    column,
    func,
    inspect,
    select,
    table,
    text,
)

DEFAULT_SOURCE_TABLE = "payroll_time_activity"
SOURCE_COLUMNS = (
    "activity_id",
    "tenant",
    "employee_id",
    "project_id",
    "project_task_id",
    "cost_code",
    "earning_type",
    "labor_item",
    "started_at",
    "minutes",
    "billable_minutes",
    "summary",
    "approved",
    "updated_at",
)
_SQL_PARAMETERS = ("tenant", "period_start", "period_end")


@dataclass(frozen=True)
class PayPeriod:
    """The pay period `[start, end)`: activities that started within it are published."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError(f"pay period {self.start} - {self.end}: give both ends with a time zone")
        if self.start >= self.end:
            raise ValueError(
                f"pay period starts at {self.start.isoformat()}, not before its end {self.end.isoformat()}"
            )

    def __contains__(self, instant: datetime) -> bool:
        return self.start <= instant < self.end

    def __str__(self) -> str:
        return f"[{self.start.isoformat()}, {self.end.isoformat()})"


@dataclass(frozen=True)
class ActivitySource:
    """Where activities are read: a table (in `schema`) or a SQL query returning the same columns.

    A query may use the bind parameters `:tenant`, `:period_start` and `:period_end` to narrow what it reads.
    """

    table: str | None = DEFAULT_SOURCE_TABLE
    sql: str | None = None
    schema: str | None = None

    def describe(self) -> str:
        return "the source query" if self.sql else f"table {self.table!r}"

    def read(self, connection: Connection, tenant: str, period: PayPeriod) -> list[dict[str, Any]]:
        """Rows of the tenant (any case) whose start may fall in the period; `rules` applies the exact bounds."""
        if self.sql:
            statement = text(self.sql)
            parameters = {"tenant": tenant, "period_start": period.start, "period_end": period.end}
            used = {name: parameters[name] for name in _SQL_PARAMETERS if f":{name}" in self.sql}
            rows = connection.execute(statement, used).mappings()
            return [_in_source_order(row, "the source query") for row in rows]
        return self._read_table(connection, tenant, period)

    def _read_table(self, connection: Connection, tenant: str, period: PayPeriod) -> list[dict[str, Any]]:
        if not inspect(connection).has_table(self.table, schema=self.schema):
            raise LookupError(
                f"payroll source table {self.table!r} does not exist"
                f"{f' in schema {self.schema!r}' if self.schema else ''}; create it "
                "(create_source_table=True makes an empty one) or give source_sql"
            )
        types = {info["name"]: info["type"] for info in inspect(connection).get_columns(self.table, schema=self.schema)}
        missing = [name for name in SOURCE_COLUMNS if name not in types]
        if missing:
            raise LookupError(
                f"payroll source table {self.table!r} lacks column(s) {', '.join(missing)}; "
                f"it needs exactly: {', '.join(SOURCE_COLUMNS)}"
            )
        source = table(self.table, *(column(name) for name in SOURCE_COLUMNS), schema=self.schema)
        started = source.c.started_at
        statement = select(source).where(func.lower(source.c.tenant) == tenant.lower())
        if isinstance(types["started_at"], DateTime):
            statement = statement.where(
                started >= bindparam("start", period.start, DateTime(timezone=True)),
                started < bindparam("end", period.end, DateTime(timezone=True)),
            )
        else:  # ISO 8601 text: the local dates around the period bound it, whatever the offsets
            statement = statement.where(
                started >= (period.start - timedelta(days=1)).date().isoformat(),
                started < (period.end + timedelta(days=2)).date().isoformat(),
            )
        return [dict(row) for row in connection.execute(statement).mappings()]


def source_table(name: str, schema: str | None) -> Table:
    """The source table's layout, for `create_source_table`: `started_at` keeps its offset (text on SQLite)."""
    return Table(
        name,
        MetaData(),
        Column("activity_id", String(255), primary_key=True),
        Column("tenant", String(255), nullable=False),
        Column("employee_id", String(64)),
        Column("project_id", String(64)),
        Column("project_task_id", String(64)),
        Column("cost_code", String(64)),
        Column("earning_type", String(64)),
        Column("labor_item", String(64)),
        Column("started_at", DateTime(timezone=True).with_variant(Text(), "sqlite")),
        Column("minutes", BigInteger),
        Column("billable_minutes", BigInteger),
        Column("summary", Text()),
        Column("approved", Boolean, nullable=False, default=False),
        Column("updated_at", DateTime(timezone=True).with_variant(Text(), "sqlite")),
        schema=schema,
    )


def create_source_table(engine: Engine, name: str, schema: str | None) -> bool:
    """Create the (empty) source table unless it exists; whether it was created."""
    with engine.begin() as connection:
        if inspect(connection).has_table(name, schema=schema):
            return False
        source_table(name, schema).create(connection)
        return True


def _in_source_order(row: Mapping[str, Any], where: str) -> dict[str, Any]:
    missing = [name for name in SOURCE_COLUMNS if name not in row]
    if missing:
        raise LookupError(
            f"{where} does not return column(s) {', '.join(missing)}; it must return: {', '.join(SOURCE_COLUMNS)}"
        )
    return {name: row[name] for name in SOURCE_COLUMNS}
