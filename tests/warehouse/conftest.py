"""Warehouse test fixtures: each test runs against a real SQLite file and a real PostgreSQL schema."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy

from airflow_provider_acumatica.warehouse.columns import read_exact_decimals
from airflow_provider_acumatica.warehouse.loader import Warehouse

T0 = datetime(2024, 7, 15, 10, 31, 28, 402000, tzinfo=timezone.utc)


@pytest.fixture(params=["sqlite", "postgresql"])
def target(request: pytest.FixtureRequest) -> tuple[str, str | None]:
    """(SQLAlchemy URL, target schema) of an empty warehouse."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_url"), None
    return request.getfixturevalue("postgres_schema")


@pytest.fixture
def warehouse(target: tuple[str, str | None]) -> Iterator[Warehouse]:
    with Warehouse(target[0], schema=target[1]) as built:
        yield built


@pytest.fixture
def reader(target: tuple[str, str | None]) -> Iterator[sqlalchemy.Engine]:
    """A plain engine of our own, as a user querying the warehouse would have (reading SQLite's exact decimals as
    Decimals, as docs/warehouse.md shows)."""
    engine = read_exact_decimals(sqlalchemy.create_engine(target[0]))
    yield engine
    engine.dispose()


def time_entries(count: int, start: int = 0, *, version: int = 0) -> list[dict[str, Any]]:
    """Synthetic rows as the operator hands them over: source field names plus the two system fields."""
    return [
        {
            "TimeEntryID": f"TE{number:06d}",
            "ProjectID": f"PRJ{number % 7}",
            "TimeSpent": number * 10 + version,
            "CostRate": Decimal(f"{number}.25") + version,
            "Billable": number % 2 == 0,
            "Date": T0 + timedelta(hours=number),
            "custom": {"Document": {"UsrShift": {"type": "CustomStringField", "value": f"S{number}"}}},
            "_acumatica_id": f"00000000-0000-0000-0000-{number:012d}",
            "_last_modified": T0 + timedelta(minutes=number + version),
        }
        for number in range(start, start + count)
    ]


@pytest.fixture
def rows_factory() -> Callable[..., list[dict[str, Any]]]:
    return time_entries


def _as_utc(row: Any) -> dict[str, Any]:
    """A row with SQLite's date-times (UTC wall time, read back naive) made aware, as PostgreSQL's are."""
    return {
        name: value.replace(tzinfo=timezone.utc) if isinstance(value, datetime) and value.tzinfo is None else value
        for name, value in row.items()
    }


@pytest.fixture
def fetch(reader: sqlalchemy.Engine, warehouse: Warehouse) -> Callable[..., list[dict[str, Any]]]:
    """All rows of a warehouse table as dicts, ordered by tenant and key (through the reader engine)."""

    def fetch_rows(table: str, connection: sqlalchemy.Connection | None = None) -> list[dict[str, Any]]:
        reflected = sqlalchemy.Table(table, sqlalchemy.MetaData(), schema=warehouse.schema, autoload_with=reader)
        query = sqlalchemy.select(reflected).order_by(*reflected.primary_key.columns)
        if connection is not None:
            return [_as_utc(row) for row in connection.execute(query).mappings()]
        with reader.connect() as own:
            return [_as_utc(row) for row in own.execute(query).mappings()]

    return fetch_rows


@pytest.fixture
def dump(reader: sqlalchemy.Engine, warehouse: Warehouse) -> Callable[[], dict[str, Any]]:
    """Everything in the warehouse schema: each table's columns (name, type) and raw rows, sorted."""

    def dump_all() -> dict[str, Any]:
        inspector = sqlalchemy.inspect(reader)
        content = {}
        with reader.connect() as connection:
            for name in sorted(inspector.get_table_names(schema=warehouse.schema)):
                table = sqlalchemy.Table(name, sqlalchemy.MetaData(), schema=warehouse.schema, autoload_with=reader)
                columns = [(column.name, str(column.type)) for column in table.columns]
                rows = sorted(map(tuple, connection.execute(sqlalchemy.select(table))), key=repr)
                content[name] = (columns, rows)
        return content

    return dump_all
