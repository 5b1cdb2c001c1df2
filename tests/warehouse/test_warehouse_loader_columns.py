"""Batches held by field (``Load.write_columns``): stored as ``write`` stores dict rows, refused as ``write`` refuses.

Real SQLite files (fast path: first loads staged in place, moving every few rows here) and the real PostgreSQL,
each also on the portable path.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy

from airflow_provider_acumatica.warehouse import loader
from airflow_provider_acumatica.warehouse.errors import ValueMisfitError, WarehouseError
from airflow_provider_acumatica.warehouse.loader import Warehouse
from airflow_provider_acumatica.warehouse.state import SyncState

KEY = ["TimeEntryID"]
UTC = timezone.utc
T0 = datetime(2024, 7, 15, 10, 31, 28, 402000, tzinfo=UTC)


@pytest.fixture(autouse=True)
def small_moves(monkeypatch: pytest.MonkeyPatch) -> None:
    """SQLite first loads move staged rows into their hidden table every 4 rows, so that these batches make moves."""
    monkeypatch.setattr(loader, "MOVE_ROWS", 4)


def batch(start: int, count: int, *, version: int = 0, note_from: int | None = None) -> dict[str, list[Any]]:
    """A batch held by field, with values to convert (ISO text, other offsets, ints for floats, text booleans,
    JSON), None values, and one list under both ``LastModifiedDateTime`` and ``_last_modified``."""
    numbers = range(start, start + count)
    modified = [T0 + timedelta(minutes=n + version) for n in numbers]
    modified[0] = modified[0].astimezone(timezone(timedelta(hours=-5)))
    columns = {
        "TimeEntryID": [f"TE{n:06d}" for n in numbers],
        "Date": [(T0 + timedelta(hours=n)).isoformat() if n % 3 == 0 else T0 + timedelta(hours=n) for n in numbers],
        "Day": [date(2024, 7, 1 + n % 28) if n % 4 else None for n in numbers],
        "Billable": [("true" if n % 5 == 0 else n % 2 == 0) if n % 7 else None for n in numbers],
        "Hours": [n if n % 2 else n / 4 for n in numbers],
        "CostRate": [Decimal(f"{n}.25") + version if n % 3 else f"{n}.5" for n in numbers],
        "custom": [{"Document": {"UsrShift": {"value": f"S{n % 3}"}}} if n % 2 else {} for n in numbers],
        "_acumatica_id": [f"00000000-0000-0000-0000-{n:012d}" for n in numbers],
        "LastModifiedDateTime": modified,
        "_last_modified": modified,
    }
    if note_from is not None:
        columns["Note"] = [f"note {n}" if n >= note_from else None for n in numbers]
    return columns


def as_rows(columns: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """The batch as dict rows; a row whose ``Note`` is None has no ``Note`` at all."""
    rows = [dict(zip(columns, values)) for values in zip(*columns.values())]
    return [{field: value for field, value in row.items() if field != "Note" or value is not None} for row in rows]


def runs() -> list[list[dict[str, list[Any]]]]:
    """Two runs' batches: in the first, the last copy of keys 2 and 3 wins; the second merges into the table."""
    return [
        [batch(0, 6), batch(6, 3, note_from=8), batch(2, 2, version=1)],
        [batch(4, 5, version=2, note_from=6), batch(20, 2, version=2)],
    ]


def stored(warehouse: Warehouse, table: str) -> list[dict[str, Any]]:
    """The table's rows but their sync time, as the database driver reads them (no SQLAlchemy type processing):
    on SQLite, the very text and numbers stored."""
    with warehouse.engine.connect() as connection:
        reflected = sqlalchemy.Table(table, sqlalchemy.MetaData(), schema=warehouse.schema, autoload_with=connection)
        query = sqlalchemy.select(*(column for column in reflected.columns if column.name != "_synced_at"))
        query = query.order_by(*reflected.primary_key.columns)
        statement = str(query.compile(dialect=connection.dialect))
        return [dict(row) for row in connection.exec_driver_sql(statement).mappings()]


@pytest.mark.parametrize("fast_path", [True, False], ids=["fast", "portable"])
def test_write_columns_stores_what_write_stores(target, fast_path, fetch):
    """On SQLite's fast path the first run stages in place (moving rows) and the second merges; elsewhere the first
    run's commit creates the table. Each run's counts and the stored rows are the same both ways."""
    results = {}
    with Warehouse(*target, fast_path=fast_path) as warehouse:
        for table, method in (("by_rows", "write"), ("by_columns", "write_columns")):
            for run in runs():
                with warehouse.load(table=table, tenant="Company", key_fields=KEY) as load:
                    handed = [as_rows(columns) if method == "write" else columns for columns in run]
                    assert [getattr(load, method)(batch_) for batch_ in handed] == [len(c["TimeEntryID"]) for c in run]
                    result = load.commit(SyncState("Company", table))
                results.setdefault(table, []).append(
                    (result.rows, result.inserted, result.updated, result.skipped_stale, result.added_columns)
                )
        by_rows, by_columns = stored(warehouse, "by_rows"), stored(warehouse, "by_columns")
    assert results["by_columns"] == results["by_rows"]
    assert [counts[:4] for counts in results["by_rows"]] == [(9, 9, 0, 0), (7, 2, 5, 0)]
    assert by_columns == by_rows and len(by_rows) == 11
    assert [row["note"] for row in by_rows if row["note"]] == ["note 6", "note 7", "note 8"]
    last_copies = [(0, 0), (1, 0), (2, 1), (3, 1)] + [(n, 2) for n in (4, 5, 6, 7, 8, 20, 21)]
    assert [(row["time_entry_id"], row["_last_modified"]) for row in fetch("by_columns")] == [
        (f"TE{n:06d}", T0 + timedelta(minutes=n + version)) for n, version in last_copies
    ]


def test_a_json_column_of_empty_objects_stores_their_text(target):
    """The batch's custom fields are all empty (an entity without any, the common case: converted without a call per
    value) or absent; a later batch's are not; lists stay lists."""
    with Warehouse(*target) as warehouse:
        with warehouse.load(table="time_entry", tenant="Company", key_fields=KEY) as load:
            load.write_columns(dict(batch(0, 3), custom=[{}, None, {}]))
            load.write_columns(dict(batch(3, 2), custom=[{"View.Field": 1}, []]))
            load.commit(SyncState("Company", "time_entry"))
        assert [row["custom"] for row in stored(warehouse, "time_entry")] == [
            "{}",
            None,
            "{}",
            '{"View.Field":1}',
            "[]",
        ]


def refusals() -> list[tuple[dict[str, Any], type[Exception], str]]:
    """Batches ``write_columns`` must refuse, each with good rows before the bad one; the error and its message."""
    columns = batch(500, 3)
    return [
        (
            dict(columns, Hours=[1.5, 2.0, "two hours"]),
            ValueMisfitError,
            r"'time_entry', column 'hours' \(field 'Hours', float\), row TimeEntryID='TE000502': value 'two hours' "
            r"\(str\) does not fit",
        ),
        (
            dict(columns, TimeEntryID=["TE000500", "TE000501", None]),
            ValueMisfitError,
            r"no value for key field 'TimeEntryID' \(row key TimeEntryID=None\)",
        ),
        (
            dict(columns, Hours=[1.5, 2.0]),
            WarehouseError,
            r"'time_entry': the batch's fields have different numbers of values \(.*'TimeEntryID': 3, .*'Hours': 2, .*\)",
        ),
        (dict(columns, Hours="1.5"), TypeError, r"'time_entry': the values of field 'Hours' are a str"),
    ]


def test_a_refused_batch_of_columns_stages_nothing(warehouse, fetch):
    """A first load (in place on SQLite) and a merge each get refused batches around a good one: the commit stores
    the good batches alone."""
    first, second = batch(0, 3), batch(100, 3, version=1)
    for good in (first, second):
        with warehouse.load(table="time_entry", tenant="Company", key_fields=KEY) as load:
            for refused, error, message in refusals():
                with pytest.raises(error, match=message):
                    load.write_columns(refused)
            assert load.write_columns(good) == 3
            for refused, error, message in refusals():
                with pytest.raises(error, match=message):
                    load.write_columns(refused)
            result = load.commit(SyncState("Company", "time_entry"))
        assert (result.rows, result.inserted) == (3, 3)
    stored_rows = fetch("time_entry")
    assert [row["time_entry_id"] for row in stored_rows] == first["TimeEntryID"] + second["TimeEntryID"]
    assert [row["hours"] for row in stored_rows] == first["Hours"] + second["Hours"]


@pytest.mark.parametrize("fast_path", [True, False], ids=["fast", "portable"])
def test_write_columns_leaves_the_callers_sequences_as_they_are(target, fast_path, fetch):
    """One list under two names, values every step converts (ISO text, another offset, text booleans, dates, a
    tuple): after staging and committing, each sequence holds what it held."""
    columns = batch(0, 8)
    columns["Billable"] = tuple(columns["Billable"])
    before = {field: list(values) for field, values in columns.items()}
    with Warehouse(*target, fast_path=fast_path) as warehouse:
        with warehouse.load(table="time_entry", tenant="Company", key_fields=KEY) as load:
            assert load.write_columns(columns) == 8
            load.commit(SyncState("Company", "time_entry"))
    assert {field: list(values) for field, values in columns.items()} == before
    assert columns["_last_modified"] is columns["LastModifiedDateTime"]
    assert type(columns["Billable"]) is tuple and type(columns["Date"][0]) is str
    assert fetch("time_entry")[0]["_last_modified"] == T0  # stored converted all the same
