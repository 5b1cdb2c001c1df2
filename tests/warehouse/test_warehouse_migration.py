"""Migrating a table of the previous layout: dates stored as date-times, SQLite decimals as floats, no minutes
columns, the timestamp stored twice. Every row is kept; the table then takes loads of the new layout."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import sqlalchemy
from sqlalchemy import Boolean, Column, DateTime, MetaData, Numeric, String, Table, Text, select

from airflow_provider_acumatica.warehouse.columns import DecimalText
from airflow_provider_acumatica.warehouse.loader import Warehouse
from airflow_provider_acumatica.warehouse.migration import MigrationPlan, migrate_table
from airflow_provider_acumatica.warehouse.state import SyncState

TOKYO = ZoneInfo("Asia/Tokyo")
ROWS = 1200


def _local_date(instant: datetime) -> date:
    return instant.astimezone(TOKYO).date()


def _minutes(text: str) -> int:
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


PLAN = MigrationPlan(
    retype={"StartDate": ("Edm.Date", _local_date), "Rate": ("Edm.Decimal", lambda value: value)},
    derive={"TimeSpentMinutes": ("TimeSpent", "Edm.Int64", _minutes)},
    drop=["LastModifiedDateTime"],
)


def _old_table(engine: sqlalchemy.Engine, schema: str | None) -> list[dict]:
    """The table an earlier version built (plain SQLAlchemy: NUMERIC decimals), with its rows."""
    table = Table(
        "project",
        MetaData(),
        Column("_tenant", String(255), primary_key=True),
        Column("_acumatica_id", String(450), primary_key=True),
        Column("_last_modified", DateTime(timezone=True)),
        Column("project_id", Text),
        Column("start_date", DateTime(timezone=True)),
        Column("rate", Numeric),
        Column("time_spent", Text),
        Column("hold", Boolean),
        Column("last_modified_date_time", DateTime(timezone=True)),
        Column("_synced_at", DateTime(timezone=True)),
        Column("_deleted_at", DateTime(timezone=True)),
        schema=schema,
    )
    start = datetime(2025, 3, 1, tzinfo=TOKYO)
    rows = [
        {
            "_tenant": "Company",
            "_acumatica_id": f"id-{n:05d}",
            "_last_modified": datetime(2025, 6, 1, tzinfo=timezone.utc),
            "project_id": f"P{n}",
            "start_date": None if n % 50 == 0 else (start + timedelta(days=n % 400)).astimezone(timezone.utc),
            "rate": Decimal(f"{n % 97}.{n % 10000:04d}"),
            "time_spent": f"{n % 12:02d}:{(n * 15) % 60:02d}",
            "hold": n % 2 == 0,
            "last_modified_date_time": datetime(2025, 6, 1, tzinfo=timezone.utc),
            "_synced_at": datetime(2025, 6, 2, tzinfo=timezone.utc),
            "_deleted_at": None,
        }
        for n in range(ROWS)
    ]
    with engine.begin() as connection:
        table.create(connection)
        connection.execute(table.insert(), rows)
    return rows


def test_a_table_of_the_previous_layout_migrates_with_every_row_kept(target):
    url, schema = target
    plain = sqlalchemy.create_engine(url)
    rows = _old_table(plain, schema)
    with Warehouse(url, schema=schema) as warehouse:
        result = migrate_table(warehouse, "project", PLAN)
        assert (result.retyped, result.derived, result.dropped, result.rows) == (
            ["start_date"] if plain.dialect.name == "postgresql" else ["rate", "start_date"],  # PG's NUMERIC is exact
            ["time_spent_minutes"],
            ["last_modified_date_time"],
            ROWS,
        )
        assert not migrate_table(warehouse, "project", PLAN)  # done once: the next load finds nothing to do
        with warehouse.engine.connect() as connection:
            table = Table("project", MetaData(), schema=schema, autoload_with=connection)
            stored = {row._mapping["_acumatica_id"]: row._mapping for row in connection.execute(select(table))}
    plain.dispose()
    assert "last_modified_date_time" not in table.c and isinstance(table.c.start_date.type, sqlalchemy.Date)
    assert isinstance(table.c.rate.type, DecimalText if plain.dialect.name == "sqlite" else Numeric)
    assert len(stored) == ROWS
    for row in rows:
        now = stored[row["_acumatica_id"]]
        assert now["start_date"] == (None if row["start_date"] is None else _local_date(row["start_date"]))
        assert now["rate"] == row["rate"] and now["hold"] == row["hold"]
        assert now["time_spent_minutes"] == _minutes(row["time_spent"])


def test_a_migrated_table_takes_loads_of_the_new_layout(target):
    url, schema = target
    plain = sqlalchemy.create_engine(url)
    _old_table(plain, schema)
    plain.dispose()
    declared = {"StartDate": "Edm.Date", "Rate": "Edm.Decimal", "TimeSpentMinutes": "Edm.Int64"}
    with Warehouse(url, schema=schema) as warehouse:
        migrate_table(warehouse, "project", PLAN)
        with warehouse.load("project", "Company", declared_types=declared) as load:
            load.write(
                [
                    {
                        "_acumatica_id": "id-00001",
                        "_last_modified": datetime(2025, 7, 1, tzinfo=timezone.utc),
                        "StartDate": date(2026, 1, 2),
                        "Rate": Decimal("1.2345"),
                        "TimeSpentMinutes": 90,
                    }
                ]
            )
            load.commit(SyncState("Company", "project"))
        with warehouse.engine.connect() as connection:
            table = Table("project", MetaData(), schema=schema, autoload_with=connection)
            count = connection.execute(select(sqlalchemy.func.count()).select_from(table)).scalar()
            one = connection.execute(select(table).where(table.c._acumatica_id == "id-00001")).one()._mapping
    assert count == ROWS
    assert (one["start_date"], one["rate"], one["time_spent_minutes"]) == (date(2026, 1, 2), Decimal("1.2345"), 90)


def test_a_table_not_there_yet_is_left_alone(sqlite_url):
    with Warehouse(sqlite_url) as warehouse:
        assert not migrate_table(warehouse, "project", PLAN)
