"""Loads in a writer process (``WriterLoad``): the same rows as a load in this process, failures raised here, nothing
committed unless told, and no writer process outliving its load or its parent.

Real SQLite files and the real PostgreSQL, real child processes.
"""

from __future__ import annotations

import logging
import os
import pickle
import select
import signal
import sqlite3
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from typing import Any

import pendulum
import pytest
import sqlalchemy
from test_warehouse_loader_columns import batch

from airflow_provider_acumatica.warehouse import loader, writer
from airflow_provider_acumatica.warehouse.errors import WarehouseError
from airflow_provider_acumatica.warehouse.loader import MOVE_ROWS, Load, Warehouse
from airflow_provider_acumatica.warehouse.state import SyncState
from airflow_provider_acumatica.warehouse.writer import WriterLoad, WriterProcessError, load_in_writer_process

TENANT = "Company"
KEY = ["TimeEntryID"]


def state(table: str) -> SyncState:
    return SyncState(
        tenant=TENANT,
        table=table,
        watermark=datetime(2024, 7, 16, tzinfo=timezone.utc),
        window_start=None,
        window_end=None,
        rows=0,
        mode="incremental",
    )


def writer_load(warehouse: Warehouse, table: str) -> WriterLoad:
    """A writer load on either database (the operator uses one only where staging is Python's work: see the last
    tests)."""
    return WriterLoad(
        warehouse.engine.url,
        warehouse.schema,
        warehouse.fast_path,
        {"table": table, "tenant": TENANT, "key_fields": KEY},
    )


def table_names(warehouse: Warehouse) -> list[str]:
    return sqlalchemy.inspect(warehouse.engine).get_table_names(schema=warehouse.schema)


def without_synced_at(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{name: value for name, value in row.items() if name != "_synced_at"} for row in rows]


def has_exited(pid: int, timeout_seconds: float) -> bool:
    """Whether process `pid` is gone within the timeout (waited for on a pidfd: no polling loop)."""
    try:
        descriptor = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        poller = select.poll()
        poller.register(descriptor, select.POLLIN)
        return bool(poller.poll(timeout_seconds * 1000))
    finally:
        os.close(descriptor)


def test_a_writer_load_stores_exactly_what_a_load_in_this_process_stores(warehouse, fetch):
    batches = [batch(0, 30), batch(20, 30, version=1, note_from=40)]  # the second updates 10 rows, adds a column
    with writer_load(warehouse, "by_writer") as load:
        written = [load.write_columns(columns) for columns in batches]
        by_writer = load.commit(state("by_writer"))
    with warehouse.load("in_process", TENANT, KEY) as load:
        for columns in batches:
            load.write_columns(columns)
        in_process = load.commit(state("in_process"))
    assert written == [30, 30]
    assert (by_writer.rows, by_writer.inserted, by_writer.state.watermark) == (50, 50, state("by_writer").watermark)
    assert (by_writer.rows, by_writer.inserted, by_writer.added_columns) == (
        in_process.rows,
        in_process.inserted,
        in_process.added_columns,
    )
    assert without_synced_at(fetch("by_writer")) == without_synced_at(fetch("in_process"))


def instant_columns() -> dict[str, list[Any]]:
    """Date-time columns as the hook hands them (aware UTC, None, one list under two fields: packed for the pipe), and
    ones that travel pickled: another offset, a datetime subclass, a mix with text."""
    utc = [
        datetime(2024, 7, 15, 10, 31, 28, 402123, tzinfo=timezone.utc),
        None,
        datetime(1, 1, 1, tzinfo=timezone.utc),
        datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=timezone.utc),
    ]
    return {
        "TimeEntryID": ["TE1", "TE2", "TE3", "TE4"],
        "_acumatica_id": ["a", "b", "c", "d"],
        "Date": list(reversed(utc)),
        "LastModifiedDateTime": utc,
        "_last_modified": utc,
        "Offset": [utc[0].astimezone(timezone(timedelta(hours=hours))) for hours in (-5, 0, 3, 14)],
        "Pendulum": [pendulum.instance(utc[0]), None, None, pendulum.instance(utc[0])],
        "Mixed": [*utc[:3], "2024-07-15T10:31:28Z"],
    }


def test_date_time_columns_cross_the_pipe_as_they_left(warehouse):
    """Packed or pickled, each column arrives equal, of the same types, in the same zone, a shared list still shared."""
    sent = instant_columns()
    arrived = writer._unpacked(pickle.loads(pickle.dumps(writer._packed(sent))))
    assert arrived == sent
    assert {field: [type(value) for value in values] for field, values in arrived.items()} == {
        field: [type(value) for value in values] for field, values in sent.items()
    }
    assert [value.tzinfo for value in arrived["Offset"] if value] == [value.tzinfo for value in sent["Offset"] if value]
    assert [value.tzinfo for value in arrived["Date"] if value] == [timezone.utc] * 3
    assert arrived["LastModifiedDateTime"] is arrived["_last_modified"]
    assert [field for field, values in writer._packed(sent).items() if isinstance(values, writer._PackedInstants)] == [
        "Date",
        "LastModifiedDateTime",
        "_last_modified",
    ]


def test_a_writer_load_stores_date_times_as_a_load_in_this_process(warehouse, fetch):
    for table, in_writer in (("by_writer", True), ("in_process", False)):
        with writer_load(warehouse, table) if in_writer else warehouse.load(table, TENANT, KEY) as load:
            load.write_columns(instant_columns())
            load.commit(state(table))
    assert without_synced_at(fetch("by_writer")) == without_synced_at(fetch("in_process"))
    assert [row["last_modified_date_time"] for row in fetch("by_writer")][2] == datetime(1, 1, 1, tzinfo=timezone.utc)


def test_a_batch_the_writer_refuses_is_raised_here_with_its_type_and_nothing_is_committed(warehouse):
    refused = batch(10, 5)
    refused["TimeEntryID"] = refused["TimeEntryID"][:4]
    with pytest.raises(WarehouseError, match="different numbers of values") as raised:
        with writer_load(warehouse, "time_entry") as load:
            load.write_columns(batch(0, 10))
            load.write_columns(refused)
            load.commit(state("time_entry"))  # raises the refusal, whether or not a write already did
    assert "In the writer process" in str(raised.value.__cause__)
    assert "time_entry" not in table_names(warehouse)
    assert "acumatica_sync_state" not in table_names(warehouse)


def test_a_load_left_without_commit_leaves_nothing_and_its_writer_ends(warehouse):
    many = {
        "TimeEntryID": [f"TE{n:06d}" for n in range(MOVE_ROWS + 1)],
        "_acumatica_id": [f"id-{n}" for n in range(MOVE_ROWS + 1)],
        "_last_modified": [datetime(2024, 7, 15, tzinfo=timezone.utc)] * (MOVE_ROWS + 1),
    }
    with writer_load(warehouse, "time_entry") as load:
        load.write_columns(many)  # on SQLite, enough to move rows into the load's hidden table
        load.mark_deleted(["TE000001"], datetime(2024, 7, 16, tzinfo=timezone.utc))  # waits: all staged by now
        pid = load.pid
    assert has_exited(pid, timeout_seconds=0)
    assert table_names(warehouse) == []


def test_the_writers_log_records_and_its_cost_are_logged_here(warehouse, caplog):
    caplog.set_level(logging.INFO, logger="airflow_provider_acumatica")
    with writer_load(warehouse, "time_entry") as load:
        load.write_columns(batch(0, 3))
        load.commit(state("time_entry"))
    committed = [record for record in caplog.records if "committed" in record.getMessage()]
    assert [record.name for record in committed] == ["airflow_provider_acumatica.warehouse.loader"]
    assert "Table time_entry, tenant 'Company' committed" in committed[0].getMessage()
    assert load.use.cpu_seconds > 0 and load.use.peak_memory_mb > 10  # a Python process with SQLAlchemy loaded
    assert any(
        record.getMessage().startswith("load of tenant 'Company' into 'time_entry': writer process CPU ")
        for record in caplog.records
    )


def test_a_writer_that_dies_fails_the_load_with_a_clear_error_and_nothing_is_committed(warehouse):
    ended = "writer process ended unexpectedly.*a commit it had not finished is rolled back"
    with pytest.raises(WriterProcessError, match=ended):
        with writer_load(warehouse, "time_entry") as load:
            load.write_columns(batch(0, 10))
            os.kill(load.pid, signal.SIGKILL)
            load.commit(state("time_entry"))
    assert "time_entry" not in table_names(warehouse)


def test_the_warehouse_url_is_never_on_the_writers_command_line_or_in_its_environment(warehouse):
    url = warehouse.engine.url.render_as_string(hide_password=False)
    with writer_load(warehouse, "time_entry") as load:
        load.write_columns(batch(0, 3))
        with open(f"/proc/{load.pid}/cmdline", "rb") as cmdline, open(f"/proc/{load.pid}/environ", "rb") as environ:
            seen = cmdline.read() + environ.read()
    assert url.encode() not in seen


def test_a_writer_whose_parent_is_killed_ends_without_committing(target):
    url, schema = target
    parent = textwrap.dedent(f"""
        import sys, threading
        from airflow_provider_acumatica.warehouse.loader import Warehouse
        from airflow_provider_acumatica.warehouse.writer import WriterLoad
        sys.path.insert(0, {os.path.dirname(__file__)!r})
        from test_warehouse_loader_columns import batch
        with Warehouse({url!r}, schema={schema!r}) as warehouse:
            with WriterLoad(warehouse.engine.url, warehouse.schema, True,
                            dict(table="time_entry", tenant="Company", key_fields=["TimeEntryID"])) as load:
                load.write_columns(batch(0, 10))
                print(load.pid, flush=True)
                threading.Event().wait()  # until killed
    """)
    process = subprocess.Popen([sys.executable, "-c", parent], stdout=subprocess.PIPE, text=True)
    try:
        writer_pid = int(process.stdout.readline())
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait()
    assert has_exited(writer_pid, timeout_seconds=60)
    with Warehouse(url, schema=schema) as warehouse:
        assert "time_entry" not in table_names(warehouse)


def test_sqlite_and_portable_loads_get_a_writer_process_and_postgresql_copy_stays_here(target):
    url, schema = target
    chosen = {}
    for fast_path in (True, False):
        with Warehouse(url, schema=schema, fast_path=fast_path) as warehouse:
            load = load_in_writer_process(warehouse, table="t", tenant=TENANT, key_fields=KEY)
            chosen[fast_path] = type(load)
    postgres_copy = url.startswith("postgresql")
    assert chosen == {True: Load if postgres_copy else WriterLoad, False: WriterLoad}


def test_a_warehouse_on_an_engine_handed_in_loads_in_this_process(postgres_schema):
    url, schema = postgres_schema
    engine = sqlalchemy.create_engine(url)
    try:
        with Warehouse(engine, schema=schema) as warehouse:
            assert isinstance(load_in_writer_process(warehouse, table="t", tenant=TENANT, key_fields=KEY), Load)
    finally:
        engine.dispose()


def test_the_writer_reads_batches_ahead_while_it_is_busy(sqlite_url):
    """Batches are handed over while the writer works on an earlier one (here: waiting for another writer's lock, as
    it waits while moving staged rows): the writes return at once, each batch larger than the pipe holds, and every
    row lands once the writer goes on. (Without reading ahead, the second write waits for the writer.)"""
    path = sqlite_url.removeprefix("sqlite:///")
    leftover = f"{loader._hidden_prefix('time_entry', TENANT)}{'0' * loader.LOAD_ID_DIGITS}"
    with sqlite3.connect(path) as connection:
        # the file in WAL mode, as the warehouse makes it: in rollback mode the writer's own switch to WAL would need
        # an exclusive lock, which SQLite refuses at once (no busy wait: a possible deadlock) while `holder` writes
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute(f'CREATE TABLE "{leftover}" (x)')  # dropped when the load opens: under the write lock
    batches = [
        {
            "TimeEntryID": [f"TE{start + n:06d}" for n in range(500)],
            "Note": [f"{start + n:0200d}" for n in range(500)],
            "_acumatica_id": [f"id-{start + n}" for n in range(500)],
        }
        for start in range(0, writer.READ_AHEAD * 500, 500)
    ]
    assert len(pickle.dumps(batches[0])) > 100_000  # a pipe holds 64 KiB
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    with Warehouse(sqlite_url) as warehouse, writer_load(warehouse, "time_entry") as load:
        with ThreadPoolExecutor(1) as pool:
            writes = pool.submit(lambda: [load.write_columns(columns) for columns in batches])
            try:
                written = writes.result(timeout=60)  # raises TimeoutError if a write waited for the busy writer
            finally:
                holder.close()  # the writer goes on
        result = load.commit(state("time_entry"))
    assert written == [500] * writer.READ_AHEAD
    assert (result.rows, result.inserted) == (writer.READ_AHEAD * 500, writer.READ_AHEAD * 500)
