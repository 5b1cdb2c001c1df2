"""The sync-state table: stored with the load, read back, and a watermark that never moves backwards."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone

import sqlalchemy

from airflow_provider_acumatica.warehouse.loader import Warehouse
from airflow_provider_acumatica.warehouse.state import STATE_TABLE, SyncState

T0 = datetime(2024, 7, 1, tzinfo=timezone.utc)
WAIT = 60  # seconds: an upper bound for a thread to reach a point, never a pause


def commit(warehouse: Warehouse, batch, **state) -> SyncState:
    with warehouse.load(table="time_entry", tenant="Company", key_fields=["TimeEntryID"]) as load:
        load.write(batch)
        return load.commit(SyncState("Company", "time_entry", **state)).state


def test_state_is_stored_in_the_target_schema_with_the_load(warehouse, rows_factory, reader):
    assert warehouse.read_state("Company", "time_entry") is None
    window = (T0 - timedelta(hours=1), T0 + timedelta(hours=1))
    stored = commit(
        warehouse,
        rows_factory(2),
        watermark=T0,
        window_start=window[0],
        window_end=window[1],
        rows=2,
        mode="incremental",
    )
    assert warehouse.read_state("Company", "time_entry") == stored
    assert (stored.watermark, stored.window_start, stored.window_end, stored.rows, stored.mode) == (
        T0,
        *window,
        2,
        "incremental",
    )
    assert stored.finished_at is not None and stored.finished_at.tzinfo == timezone.utc
    assert warehouse.read_state("Other", "time_entry") is None
    assert STATE_TABLE in sqlalchemy.inspect(reader).get_table_names(schema=warehouse.schema)


def test_the_watermark_never_moves_backwards(warehouse, rows_factory):
    later, earlier = T0 + timedelta(days=2), T0 + timedelta(days=1)
    assert commit(warehouse, rows_factory(1), watermark=later).watermark == later
    backfill = commit(
        warehouse, rows_factory(1), watermark=earlier, window_start=T0, window_end=earlier, rows=1, mode="backfill"
    )
    assert (backfill.watermark, backfill.window_end, backfill.mode) == (later, earlier, "backfill")
    assert commit(warehouse, rows_factory(1), watermark=None).watermark == later
    latest = later + timedelta(milliseconds=1)
    assert commit(warehouse, rows_factory(1), watermark=latest).watermark == latest
    assert warehouse.read_state("Company", "time_entry").watermark == latest


def test_naive_or_mismatched_states_are_refused(warehouse, rows_factory):
    try:
        SyncState("Company", "time_entry", watermark=datetime(2024, 1, 1))
    except ValueError as error:
        assert "watermark" in str(error) and "'Company'" in str(error)
    else:
        raise AssertionError("a naive watermark was accepted")
    with warehouse.load(table="time_entry", tenant="Company", key_fields=["TimeEntryID"]) as load:
        load.write(rows_factory(1))
        try:
            load.commit(SyncState("Other", "time_entry"))
        except ValueError as error:
            assert "'Other'" in str(error)
        else:
            raise AssertionError("a state of another tenant was committed")


def _pause_state_write(warehouse: Warehouse, paused: threading.Event, release: threading.Event) -> None:
    """Hold the warehouse's commit just before it writes the state (it has read the stored state already)."""

    def hold(conn, cursor, statement, *args):
        if "acumatica_sync_state" in statement and statement.lstrip().upper().startswith(("INSERT", "UPDATE")):
            paused.set()
            assert release.wait(WAIT), "the test never released the paused commit"

    sqlalchemy.event.listen(warehouse.engine, "before_cursor_execute", hold)


def _watch_for_waiting(warehouse: Warehouse, target) -> callable:
    """A predicate telling when the warehouse's commit is waiting for the other commit's lock."""
    if warehouse.engine.dialect.name == "sqlite":
        started = threading.Event()

        def trace(connection, _record):
            connection.set_trace_callback(lambda sql: started.set() if sql.startswith("BEGIN IMMEDIATE") else None)

        sqlalchemy.event.listen(warehouse.engine, "connect", trace)
        return started.is_set  # BEGIN IMMEDIATE has started while the other writer holds the lock: it waits
    backend = {}

    def remember_backend(connection):
        backend["pid"] = connection.connection.driver_connection.info.backend_pid

    sqlalchemy.event.listen(warehouse.engine, "begin", remember_backend)
    probe = sqlalchemy.create_engine(target[0])

    def waiting() -> bool:
        with probe.connect() as connection:
            return bool(
                connection.execute(
                    sqlalchemy.text("select count(*) from pg_locks where pid = :pid and not granted"),
                    {"pid": backend.get("pid", -1)},
                ).scalar()
            )

    return waiting


def test_concurrent_commits_cannot_regress_the_watermark(target, rows_factory):
    lower, higher = T0 + timedelta(hours=1), T0 + timedelta(hours=2)
    first, second = Warehouse(*target), Warehouse(*target)  # two tasks, two engines
    try:
        commit(first, rows_factory(1), watermark=T0)
        paused, release = threading.Event(), threading.Event()
        _pause_state_write(first, paused, release)
        second_waits = _watch_for_waiting(second, target)
        results = {}
        slow = threading.Thread(target=lambda: results.update(first=commit(first, rows_factory(1), watermark=lower)))
        fast = threading.Thread(target=lambda: results.update(second=commit(second, rows_factory(1), watermark=higher)))
        slow.start()
        assert paused.wait(WAIT)
        fast.start()
        deadline = time.monotonic() + WAIT
        while not second_waits() and fast.is_alive() and time.monotonic() < deadline:
            pass  # polls a real state (the lock table) until the second commit queues behind the first
        release.set()
        slow.join(WAIT)
        fast.join(WAIT)
        assert results["first"].watermark == lower and results["second"].watermark == higher
        assert first.read_state("Company", "time_entry").watermark == higher
    finally:
        first.close()
        second.close()
