"""SQLite first loads stage in place: staged rows move into a hidden table of the final layout; the commit renames it.

Each guarantee of the temporary stage must hold: nothing visible before the commit, the state committed
with the rows, the newest copy of a key wins, new fields become columns, a second tenant's first load of
the same table merges into the first one's, and a load that does not commit leaves nothing (a killed one
leaves a hidden table that the next load of its tenant and table drops; one of a live run stays, as its lock
shows). Real SQLite files throughout; rows move every ``MOVE_ROWS_HERE`` staged rows instead of 50,000, so that a
few rows make moves.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from contextlib import nullcontext
from datetime import datetime, timezone
from typing import Any

import pytest
import sqlalchemy

from airflow_provider_acumatica.warehouse import loader
from airflow_provider_acumatica.warehouse.loader import HIDDEN_TABLE_PREFIX, Warehouse
from airflow_provider_acumatica.warehouse.state import SyncState

KEY = ["TimeEntryID"]
UTC = timezone.utc
MOVE_ROWS_HERE = 4


@pytest.fixture(autouse=True)
def small_moves(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loader, "MOVE_ROWS", MOVE_ROWS_HERE)


@pytest.fixture
def target(sqlite_url: str) -> tuple[str, str | None]:
    """These tests are about SQLite's fast path (the shared fixtures run on this warehouse alone)."""
    return sqlite_url, None


def table_names(reader: sqlalchemy.Engine) -> list[str]:
    return sorted(sqlalchemy.inspect(reader).get_table_names())


def hidden_tables(reader: sqlalchemy.Engine) -> list[str]:
    return [name for name in table_names(reader) if name.startswith(HIDDEN_TABLE_PREFIX)]


def lock_files(reader: sqlalchemy.Engine) -> list[str]:
    """The hidden tables' lock files beside the database."""
    return [name for name in os.listdir(os.path.dirname(reader.url.database)) if name.endswith(".lock")]


def test_rows_wait_in_a_hidden_table_that_the_commit_publishes_with_the_state(
    warehouse, reader, sqlite_url, rows_factory, fetch
):
    """Between batches (after a move, too) the load holds no lock: another writer commits without waiting; readers
    see no target. Inside the commit, which moves the last rows, a reader still sees neither table nor state; after
    it, all rows and the state at once."""
    seen_inside_commit = []

    def read_while_state_is_written(conn, cursor, statement, *args):
        if "acumatica_sync_state" in statement and statement.lstrip().upper().startswith("INSERT"):
            seen_inside_commit.append((table_names(reader), warehouse.read_state("Company", "time_entry")))

    with warehouse.load(table="time_entry", tenant="Company", key_fields=KEY) as run:
        before_writing = datetime.now(UTC)
        run.write(rows_factory(5))  # moved
        after_first_batch = datetime.now(UTC)
        [hidden] = hidden_tables(reader)
        assert table_names(reader) == [hidden]
        with Warehouse(f"{sqlite_url}?timeout=0") as impatient:  # fails at once if the file's write lock is held
            with impatient.load(table="other", tenant="Company", key_fields=KEY) as other:
                other.write(rows_factory(1))
                other.commit(SyncState("Company", "other"))
        run.write(rows_factory(2, start=5))  # moved by the commit
        sqlalchemy.event.listen(warehouse.engine, "before_cursor_execute", read_while_state_is_written)
        try:
            result = run.commit(SyncState("Company", "time_entry"))
        finally:
            sqlalchemy.event.remove(warehouse.engine, "before_cursor_execute", read_while_state_is_written)

    assert seen_inside_commit == [([hidden, "acumatica_sync_state", "other"], None)]
    assert table_names(reader) == ["acumatica_sync_state", "other", "time_entry"]
    assert (result.rows, result.inserted, result.updated, result.skipped_stale) == (7, 7, 0, 0)
    stored = fetch("time_entry")
    assert [row["time_entry_id"] for row in stored] == [f"TE{n:06d}" for n in range(7)]
    assert {row["_synced_at"] for row in stored} == {stored[0]["_synced_at"]}, "one instant for the whole load"
    assert before_writing <= stored[0]["_synced_at"] <= after_first_batch, "when the load staged its first batch"
    assert warehouse.read_state("Company", "time_entry").finished_at >= stored[0]["_synced_at"]
    key = sqlalchemy.inspect(reader).get_pk_constraint("time_entry")["constrained_columns"]
    assert key == ["_tenant", "time_entry_id"]


def copies(rows_factory, number: int, version: int, **changes: Any) -> list[dict[str, Any]]:
    return [dict(row, **changes) for row in rows_factory(1, start=number, version=version)]


def overlapping_run(warehouse: Warehouse, table: str, mode: str, rows_factory) -> tuple[int, ...]:
    """Keys read again later with older, equal and missing timestamps, twice in one statement and across batches,
    and new fields arriving in later batches (text, integer, decimal); one key marked deleted."""
    with warehouse.load(table=table, tenant="Company", key_fields=KEY, mode=mode) as run:
        run.write(rows_factory(300, version=5))
        run.write(
            copies(rows_factory, 1, 2)  # older than the copy already staged: the staged one stays
            + copies(rows_factory, 2, 9)
            + copies(rows_factory, 2, 1)  # twice in one statement
            + [dict(row, Note="n") for row in rows_factory(3, start=300)]
        )
        run.write(
            copies(rows_factory, 3, 5, TimeSpent=999)  # same timestamp as the staged copy
            + copies(rows_factory, 4, 0, _last_modified=None, UsrCrew=7)  # no timestamp: older than one
            + [dict(row, Rate=row["CostRate"]) for row in rows_factory(150, start=100, version=6)]
            + copies(rows_factory, 120, 3)
        )  # the same batch holds a newer copy of key 120 before it
        run.mark_deleted([("TE000010",)], datetime(2030, 1, 1, tzinfo=UTC))
        result = run.commit(SyncState("Company", table))
    return (
        result.rows,
        result.inserted,
        result.updated,
        result.skipped_stale,
        result.marked_deleted,
        len(result.added_columns),
    )


@pytest.mark.parametrize("move_rows", [MOVE_ROWS_HERE, 50_000], ids=["moves by batch", "all moved at commit"])
@pytest.mark.parametrize("mode", ["merge", "replace"])
def test_in_place_gives_what_the_temporary_stage_gives(
    sqlite_url, tmp_path, reader, mode, move_rows, rows_factory, monkeypatch
):
    """The same overlapping run staged in place and through the portable path's temporary stage (the rule the
    README states, and `drop_superseded`'s, as reference): the same rows, counts and column types, whether copies of
    a key meet in one move or in the hidden table."""
    monkeypatch.setattr(loader, "MOVE_ROWS", move_rows)
    reference_url = f"sqlite:///{tmp_path / 'reference.db'}"
    with Warehouse(sqlite_url) as in_place, Warehouse(reference_url, fast_path=False) as reference:
        assert in_place.dialect.stages_new_tables_in_place and not reference.dialect.stages_new_tables_in_place
        assert (
            overlapping_run(in_place, "t", mode, rows_factory)
            == overlapping_run(reference, "t", mode, rows_factory)
            == (303, 303, 0, 0, 1, 12)
        )

    def content(url: str) -> tuple[dict[str, str], list[dict[str, Any]]]:
        engine = sqlalchemy.create_engine(url)
        table = sqlalchemy.Table("t", sqlalchemy.MetaData(), autoload_with=engine)
        with engine.connect() as connection:
            rows = [
                dict(row)
                for row in connection.execute(sqlalchemy.select(table).order_by(table.c.time_entry_id)).mappings()
            ]
        engine.dispose()
        types = {column.name: type(column.type).__name__ for column in table.columns}
        return types, [{name: value for name, value in row.items() if name != "_synced_at"} for row in rows]

    (types, rows), (reference_types, reference_rows) = content(sqlite_url), content(reference_url)
    assert types == reference_types and types["note"] == "TEXT" and types["usr_crew"] == "BIGINT"
    assert rows == reference_rows
    by_key = {row["time_entry_id"]: row for row in rows}
    assert [by_key[f"TE{n:06d}"]["time_spent"] for n in (1, 2, 3, 4, 120)] == [15, 29, 999, 45, 1206]
    assert by_key["TE000004"]["usr_crew"] is None and by_key["TE000004"]["_last_modified"] is not None
    assert by_key["TE000010"]["_deleted_at"] is not None and by_key["TE000300"]["note"] == "n"
    assert hidden_tables(reader) == []


@pytest.mark.parametrize("first", ["Company", "Other"])
def test_two_tenants_first_loads_of_one_table_at_once(warehouse, reader, rows_factory, fetch, first):
    """Both start while the table is absent and move rows; the first commit renames its hidden table, the second
    finds the table and merges its hidden table into it like a stage (adding the column only its rows have), then
    drops it."""
    second = {"Company": "Other", "Other": "Company"}[first]
    with (
        warehouse.load(table="time_entry", tenant="Company", key_fields=KEY) as company,
        warehouse.load(table="time_entry", tenant="Other", key_fields=KEY, mode="replace") as other,
    ):
        loads = {"Company": company, "Other": other}
        company.write(rows_factory(3))
        other.write(rows_factory(2, start=1, version=1))
        company.write(rows_factory(2, start=2, version=2))
        other.write([dict(row, UsrCrew=5) for row in rows_factory(2, start=2, version=3)])
        other.mark_deleted([("TE000001",)], datetime(2030, 1, 1, tzinfo=UTC))
        assert len(hidden_tables(reader)) == 2 and "time_entry" not in table_names(reader)
        results = {tenant: loads[tenant].commit(SyncState(tenant, "time_entry")) for tenant in (first, second)}

    assert [(r.rows, r.inserted, r.updated, r.skipped_stale, r.marked_deleted) for r in results.values()] == (
        [(4, 4, 0, 0, 0), (3, 3, 0, 0, 1)] if first == "Company" else [(3, 3, 0, 0, 1), (4, 4, 0, 0, 0)]
    )
    assert table_names(reader) == ["acumatica_sync_state", "time_entry"]
    stored = fetch("time_entry")
    assert [
        (row["_tenant"], row["time_entry_id"], row["time_spent"], row["usr_crew"], row["_deleted_at"] is None)
        for row in stored
    ] == [
        ("Company", "TE000000", 0, None, True),
        ("Company", "TE000001", 10, None, True),
        ("Company", "TE000002", 22, None, True),
        ("Company", "TE000003", 32, None, True),
        ("Other", "TE000001", 11, None, False),
        ("Other", "TE000002", 23, 5, True),
        ("Other", "TE000003", 33, 5, True),
    ]
    for tenant in ("Company", "Other"):
        assert len({row["_synced_at"] for row in stored if row["_tenant"] == tenant}) == 1
        assert warehouse.read_state(tenant, "time_entry") is not None


@pytest.mark.parametrize("raised", [True, False], ids=["error", "left uncommitted"])
def test_a_load_that_does_not_commit_drops_its_hidden_table(warehouse, reader, rows_factory, raised):
    with pytest.raises(RuntimeError, match="killed") if raised else nullcontext():
        with warehouse.load(table="time_entry", tenant="Company", key_fields=KEY) as run:
            run.write(rows_factory(3))
            run.write([dict(row, NewField=1) for row in rows_factory(2, start=3)])
            assert len(hidden_tables(reader)) == 1
            if raised:
                raise RuntimeError("killed mid-run")
    assert table_names(reader) == []
    assert warehouse.read_state("Company", "time_entry") is None


KILLED_LOAD = textwrap.dedent("""
    import sys
    from airflow_provider_acumatica.warehouse import loader
    sys.path.insert(0, sys.argv[2])
    from conftest import time_entries
    loader.MOVE_ROWS = 5
    load = loader.Warehouse(sys.argv[1]).load(table="time_entry", tenant="Company", key_fields=["TimeEntryID"])
    load.__enter__()
    load.write(time_entries(5))  # moved to its hidden table
    print("staged", flush=True)
    sys.stdin.read()  # until killed
""")


def test_a_killed_load_leaves_a_hidden_table_that_the_next_load_of_its_tenant_drops(
    warehouse, reader, sqlite_url, rows_factory, fetch, caplog
):
    """The leftover survives another tenant's loads (first or not), and goes when its tenant loads the table again,
    here no longer a first load as the other tenant created the table meanwhile."""
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED_LOAD, sqlite_url, os.path.dirname(__file__)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout.readline() == "staged\n"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    [leftover] = hidden_tables(reader)
    assert lock_files(reader) == [f"{os.path.basename(reader.url.database)}-{leftover}.lock"], "no longer locked"

    with warehouse.load(table="time_entry", tenant="Other", key_fields=KEY) as other:
        other.write(rows_factory(2))
        other.commit(SyncState("Other", "time_entry"))
    assert hidden_tables(reader) == [leftover]

    caplog.set_level("WARNING", logger="airflow_provider_acumatica.warehouse")
    with warehouse.load(table="time_entry", tenant="Company", key_fields=KEY) as run:
        assert hidden_tables(reader) == [], "dropped before anything else"
        run.write(rows_factory(1, start=7))
        result = run.commit(SyncState("Company", "time_entry"))
    assert f"dropping {leftover!r}, left by a load that did not finish" in caplog.text
    assert lock_files(reader) == [], "the killed load's lock file goes with its table"
    assert (result.rows, result.inserted) == (1, 1)
    assert [(row["_tenant"], row["time_entry_id"]) for row in fetch("time_entry")] == [
        ("Company", "TE000007"),
        ("Other", "TE000000"),
        ("Other", "TE000001"),
    ]


def test_two_runs_of_the_same_tenant_and_table_at_once_both_commit(warehouse, reader, rows_factory, fetch, caplog):
    """A backfill beside a scheduled run, a reconciliation on its own schedule: the second run leaves the first one's
    hidden table alone (its lock is held), both commit, the later merging into the table the earlier created, and
    of each key the newest copy wins, whichever run read it."""
    caplog.set_level("INFO", logger="airflow_provider_acumatica.warehouse")
    with warehouse.load(table="time_entry", tenant="Company", key_fields=KEY) as first:
        first.write(rows_factory(5))  # moved into its hidden table
        [first_hidden] = hidden_tables(reader)
        with warehouse.load(table="time_entry", tenant="Company", key_fields=KEY) as second:
            assert hidden_tables(reader) == [first_hidden]
            second.write(rows_factory(4, start=3, version=1))  # newer copies of TE000003 and TE000004
            first.write(rows_factory(2, start=10))
            second.commit(SyncState("Company", "time_entry", watermark=datetime(2024, 7, 16, tzinfo=UTC)))
        first.commit(SyncState("Company", "time_entry", watermark=datetime(2024, 7, 15, tzinfo=UTC)))
    assert f"{first_hidden!r} belongs to a load still running (its lock is held" in caplog.text
    rows = {row["time_entry_id"]: row["time_spent"] for row in fetch("time_entry")}
    assert rows == {
        "TE000000": 0,
        "TE000001": 10,
        "TE000002": 20,
        "TE000003": 31,
        "TE000004": 41,
        "TE000005": 51,
        "TE000006": 61,
        "TE000010": 100,
        "TE000011": 110,
    }
    assert warehouse.read_state("Company", "time_entry").watermark == datetime(2024, 7, 16, tzinfo=UTC)
    assert hidden_tables(reader) == []
    assert lock_files(reader) == []


@pytest.mark.parametrize("where", ["postgresql", "sqlite portable"])
def test_other_paths_stage_in_a_temporary_table(where, request, rows_factory):
    """PostgreSQL and the portable path keep their temporary stage: nothing appears in the warehouse before the
    commit creates the table."""
    if where == "postgresql":
        url, schema = request.getfixturevalue("postgres_schema")
        fast_path = True
    else:
        url, schema, fast_path = request.getfixturevalue("sqlite_url"), None, False
    reader = sqlalchemy.create_engine(url)
    with Warehouse(url, schema, fast_path=fast_path) as warehouse:
        assert not warehouse.dialect.stages_new_tables_in_place
        with warehouse.load(table="time_entry", tenant="Company", key_fields=KEY) as run:
            run.write(rows_factory(3))
            assert sqlalchemy.inspect(reader).get_table_names(schema=schema) == []
            assert run.commit(SyncState("Company", "time_entry")).inserted == 3
    assert sorted(sqlalchemy.inspect(reader).get_table_names(schema=schema)) == ["acumatica_sync_state", "time_entry"]
    reader.dispose()
