"""First loads: a commit that creates its table fills it by a plain INSERT (PostgreSQL adds the key after).

The result must be what merging into an existing table gives: same rows, counts and deletions, the
same primary key for later loads, and nothing left behind when the commit fails after the fill.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import pytest
import sqlalchemy

from airflow_provider_acumatica.warehouse import loader
from airflow_provider_acumatica.warehouse.loader import LoadResult, Warehouse
from airflow_provider_acumatica.warehouse.state import SyncState

KEY = ["TimeEntryID"]
DELETED_AT = datetime(2024, 7, 16, tzinfo=timezone.utc)
"""After the scenario's rows were last modified, so marking one deleted takes effect."""


KEYS = {"one field": KEY, "text and time": ["ProjectID", "Date"]}
"""Keys the scenario runs with: one text column, and two columns of two types (both unique per synthetic row)."""


def first_load_scenario(
    warehouse: Warehouse, table: str, mode: str, rows_factory: Callable[..., list], key: list[str]
) -> LoadResult:
    """Four keys: one staged three times (the last two copies in one batch), one twice, one marked deleted."""
    with warehouse.load(table=table, tenant="Company", key_fields=key, mode=mode) as run:
        run.write(rows_factory(4))
        run.write(rows_factory(2, start=1, version=3))
        run.write(rows_factory(1, start=1, version=4) + rows_factory(1, start=1, version=5))
        deleted = rows_factory(1, start=3)[0]
        run.mark_deleted([tuple(deleted[field] for field in key)], DELETED_AT)
        return run.commit(SyncState("Company", table))


def counts(result: LoadResult) -> tuple[int, ...]:
    return result.rows, result.inserted, result.updated, result.skipped_stale, result.marked_deleted


@pytest.mark.parametrize("key", KEYS.values(), ids=KEYS.keys())
@pytest.mark.parametrize("fast_path", [True, False], ids=["fast", "portable"])
@pytest.mark.parametrize("mode", ["merge", "replace"])
def test_a_new_table_holds_what_merging_into_an_existing_one_gives(target, fast_path, mode, key, rows_factory, fetch):
    """The same run into a new table and into one that another tenant created: same counts, same rows, and of each
    key staged several times only the copy read last."""
    with Warehouse(*target, fast_path=fast_path) as warehouse:
        with warehouse.load(table="existing", tenant="Other", key_fields=key) as other:
            other.write(rows_factory(1))
            other.commit(SyncState("Other", "existing"))
        new = first_load_scenario(warehouse, "new", mode, rows_factory, key)
        merged = first_load_scenario(warehouse, "existing", mode, rows_factory, key)

    assert counts(new) == counts(merged) == (4, 4, 0, 0, 1)

    def comparable(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [
            {name: value for name, value in row.items() if name != "_synced_at"}
            | {"synced": row["_synced_at"] is not None}
            for row in rows
            if row["_tenant"] == "Company"
        ]

    stored = comparable(fetch("new"))
    assert stored == comparable(fetch("existing"))
    assert [(row["time_entry_id"], row["time_spent"]) for row in stored] == [
        ("TE000000", 0),
        ("TE000001", 15),
        ("TE000002", 23),
        ("TE000003", 30),
    ], "the copy staged last wins, also over an earlier copy in the same batch"
    assert [row["_deleted_at"] is not None for row in stored] == [False, False, False, True]
    assert all(row["synced"] for row in stored)


@pytest.mark.parametrize("fast_path", [True, False], ids=["fast", "portable"])
@pytest.mark.parametrize("table", ["new", "existing"])
def test_an_older_copy_read_after_a_newer_one_in_the_same_run_never_wins(
    target, fast_path, table, rows_factory, fetch, monkeypatch
):
    """The parallel fetches of one run can hand over an older copy of a record after a newer one: the newest stays,
    on a new table (SQLite: with the copies in different moves into its hidden table) as on an existing one; of
    copies with one timestamp, the last read."""
    monkeypatch.setattr(loader, "MOVE_ROWS", 2)
    with Warehouse(*target, fast_path=fast_path) as warehouse:
        if table == "existing":
            with warehouse.load(table=table, tenant="Other", key_fields=KEY) as other:
                other.write(rows_factory(1))
                other.commit(SyncState("Other", table))
        with warehouse.load(table=table, tenant="Company", key_fields=KEY) as run:
            run.write(rows_factory(3, version=5))
            run.write(rows_factory(2, version=1))  # older copies of the first two keys, read later
            run.write([dict(rows_factory(1, start=2, version=5)[0], TimeSpent=99)])  # key 2 again, same timestamp
            result = run.commit(SyncState("Company", table))
    stored = {row["time_entry_id"]: row["time_spent"] for row in fetch(table) if row["_tenant"] == "Company"}
    assert stored == {"TE000000": 5, "TE000001": 15, "TE000002": 99}
    assert (result.rows, result.inserted) == (3, 3)


def test_a_new_table_gets_its_primary_key_and_later_loads_upsert(warehouse, reader, rows_factory, fetch):
    with warehouse.load(table="time_entry", tenant="Company", key_fields=KEY) as run:
        run.write(rows_factory(3))
        run.commit(SyncState("Company", "time_entry"))

    inspector = sqlalchemy.inspect(reader)
    key = inspector.get_pk_constraint("time_entry", schema=warehouse.schema)
    assert key["constrained_columns"] == ["_tenant", "time_entry_id"]
    if reader.dialect.name == "postgresql":
        assert key["name"] == "time_entry_pkey", "the name PostgreSQL gives a key declared in CREATE TABLE"
    nullable = {column["name"]: column["nullable"] for column in inspector.get_columns("time_entry", warehouse.schema)}
    assert (nullable["_tenant"], nullable["time_entry_id"], nullable["time_spent"]) == (False, False, True)

    with warehouse.load(table="time_entry", tenant="Company", key_fields=KEY) as run:
        run.write(rows_factory(2, start=1, version=1) + rows_factory(1, start=3))
        second = run.commit(SyncState("Company", "time_entry"))
    assert (second.rows, second.inserted, second.updated, second.skipped_stale) == (3, 1, 2, 0)
    assert [(row["time_entry_id"], row["time_spent"]) for row in fetch("time_entry")] == [
        ("TE000000", 0),
        ("TE000001", 11),
        ("TE000002", 21),
        ("TE000003", 30),
    ]


def test_a_first_load_failing_after_the_fill_leaves_no_table(warehouse, reader, rows_factory, fetch):
    """A state the database refuses (rows beyond BIGINT) fails the commit after the table was filled."""
    with pytest.raises((sqlalchemy.exc.DataError, OverflowError)):  # PostgreSQL / SQLite's driver
        with warehouse.load(table="time_entry", tenant="Company", key_fields=KEY) as run:
            run.write(rows_factory(3))
            run.commit(SyncState("Company", "time_entry", rows=2**63))
    assert sqlalchemy.inspect(reader).get_table_names(schema=warehouse.schema) == []

    with warehouse.load(table="time_entry", tenant="Company", key_fields=KEY) as run:
        run.write(rows_factory(3))
        assert run.commit(SyncState("Company", "time_entry")).inserted == 3
    assert len(fetch("time_entry")) == 3
