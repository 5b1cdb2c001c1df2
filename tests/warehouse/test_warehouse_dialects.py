"""Database specifics: the portable path matches the fast paths; SQLite writers wait; engines are set up right."""

from __future__ import annotations

import sqlite3
import threading
import time
from datetime import date, datetime, timedelta, timezone

import pytest
import sqlalchemy

from airflow_provider_acumatica.warehouse.loader import Warehouse
from airflow_provider_acumatica.warehouse.state import SyncState

WAIT = 60  # seconds: an upper bound for a thread to reach a point, never a pause
VOLATILE = ("_synced_at", "_deleted_at")


def run_scenario(warehouse: Warehouse, table: str, rows_factory) -> list:
    """Insert, update (with a repeated key and a stale copy), then replace; returns each load's counts."""
    counts = []
    for mode, batches in (
        ("merge", [rows_factory(6, version=2)]),
        ("merge", [rows_factory(3, start=4, version=3), rows_factory(1, start=4, version=4), rows_factory(1)]),
        ("replace", [rows_factory(4, start=2, version=5)]),
    ):
        with warehouse.load(table=table, tenant="Company", key_fields=["TimeEntryID"], mode=mode) as load:
            for batch in batches:
                load.write(batch)
            result = load.commit(SyncState("Company", table))
        counts.append((result.rows, result.inserted, result.updated, result.skipped_stale, result.marked_deleted))
    return counts


def test_the_portable_path_matches_the_fast_path(target, rows_factory, fetch):
    with Warehouse(*target) as fast, Warehouse(*target, fast_path=False) as portable:
        assert type(portable.dialect).__name__ == type(fast.dialect).__name__ and not portable.dialect.fast_path
        fast_counts = run_scenario(fast, "fast", rows_factory)
        portable_counts = run_scenario(portable, "portable", rows_factory)
    assert fast_counts == portable_counts == [(6, 6, 0, 0, 0), (4, 1, 2, 1, 0), (4, 0, 4, 0, 3)]

    def comparable(table):
        return [
            {k: v for k, v in row.items() if k not in VOLATILE} | {"deleted": row["_deleted_at"] is not None}
            for row in fetch(table)
        ]

    assert comparable("fast") == comparable("portable")


def sqlite_forms_rows() -> list[dict]:
    """Rows whose date-times, dates and booleans SQLite's staging writes itself: a value repeated across columns
    and rows, no microseconds, a year before 1000, another offset, ISO text, and None."""
    stamp = datetime(2024, 7, 15, 10, 31, 28, tzinfo=timezone.utc)
    rows = [
        {"TimeEntryID": "A", "Date": stamp, "Day": date(2024, 7, 15), "Billable": True, "_last_modified": stamp},
        {
            "TimeEntryID": "B",
            "Date": datetime(999, 1, 2, 20, 4, 5, 6, tzinfo=timezone(timedelta(hours=-5))),
            "Day": date(999, 1, 2),
            "Billable": False,
            "_last_modified": "2024-07-15T12:31:28.5+02:00",
        },
        {"TimeEntryID": "C", "Date": None, "Day": None, "Billable": None, "_last_modified": stamp},
    ]
    return [row | {"_acumatica_id": row["TimeEntryID"].lower()} for row in rows]


def stored_as(path: str, table: str) -> list[dict[str, str]]:
    """Each row's columns but the sync time as SQLite holds them: storage class and SQL literal."""
    with sqlite3.connect(path) as connection:
        columns = [name for _, name, *_ in connection.execute(f"PRAGMA table_info({table})") if name != "_synced_at"]
        forms = ", ".join(f"typeof({name}) || ' ' || quote({name})" for name in columns)
        rows = connection.execute(f"SELECT {forms} FROM {table} ORDER BY time_entry_id").fetchall()
    return [dict(zip(columns, row)) for row in rows]


def test_sqlite_fast_staging_stores_the_bytes_sqlalchemy_types_store(sqlite_url):
    """SQLite's fast staging formats date-times, dates and booleans itself; a reader must find exactly what
    SQLAlchemy's types store on the portable path (same text, same storage class)."""
    for table, fast_path in (("fast", True), ("portable", False)):
        with Warehouse(sqlite_url, fast_path=fast_path) as warehouse:
            with warehouse.load(table=table, tenant="Company", key_fields=["TimeEntryID"]) as run:
                run.write(sqlite_forms_rows())
                run.commit(SyncState("Company", table))
    path = sqlite_url.removeprefix("sqlite:///")
    fast = stored_as(path, "fast")
    assert fast == stored_as(path, "portable")
    assert [(row["date"], row["day"], row["billable"], row["_last_modified"]) for row in fast] == [
        ("text '2024-07-15 10:31:28.000000'", "text '2024-07-15'", "integer 1", "text '2024-07-15 10:31:28.000000'"),
        ("text '0999-01-03 01:04:05.000006'", "text '0999-01-02'", "integer 0", "text '2024-07-15 10:31:28.500000'"),
        ("null NULL", "null NULL", "null NULL", "text '2024-07-15 10:31:28.000000'"),
    ]


@pytest.mark.skipif(not hasattr(sqlite3.Connection, "setlimit"), reason="Python 3.11+ tells SQLite's limits")
def test_sqlite_staging_splits_a_batch_into_statements_of_the_connections_parameter_limit(sqlite_url, rows_factory):
    """A batch holding more parameters than one statement may take goes in several statements and a shorter last
    one; what lands is what the portable path stores (the limit is lowered here: at SQLite's usual 32,766 or more,
    a 2,000-row batch fits in one or two statements)."""
    batch = rows_factory(23)
    for table, fast_path in (("fast", True), ("portable", False)):
        with Warehouse(sqlite_url, fast_path=fast_path) as warehouse:
            with warehouse.load(table=table, tenant="Company", key_fields=["TimeEntryID"]) as run:
                driver = run.connection.connection.driver_connection
                driver.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 100)  # a few rows per statement
                assert run.write(batch) == 23
                assert run.commit(SyncState("Company", table)).inserted == 23
    path = sqlite_url.removeprefix("sqlite:///")
    assert len(stored_as(path, "fast")) == 23 and stored_as(path, "fast") == stored_as(path, "portable")


def test_sqlite_staging_prepares_a_few_distinct_statements_whatever_the_batch_sizes(sqlite_url, rows_factory):
    """The driver caches every distinct statement it prepares, and a statement of thousands of parameters takes
    megabytes: batches of every size from 1 to 64 rows must share a handful of statements (powers of two of rows)."""
    inserts: set[str] = set()
    with Warehouse(sqlite_url) as warehouse:
        sqlalchemy.event.listen(
            warehouse.engine,
            "before_cursor_execute",
            lambda _c, _cur, statement, *_: (
                inserts.add(statement) if statement.startswith("INSERT INTO _acumatica_stage_") else None
            ),
        )
        with warehouse.load(table="sizes", tenant="Company", key_fields=["TimeEntryID"]) as run:
            start = 0
            for size in range(1, 65):
                run.write(rows_factory(size, start=start))
                start += size
            assert run.commit(SyncState("Company", "sizes")).inserted == start
    assert len(inserts) <= 7  # 1, 2, 4, ... 64 rows


def test_sqlite_writers_of_one_file_wait_for_each_other_instead_of_failing(sqlite_url, rows_factory):
    first, second = Warehouse(sqlite_url), Warehouse(sqlite_url)
    try:
        paused, release, second_begins = threading.Event(), threading.Event(), threading.Event()

        def hold(conn, cursor, statement, *args):
            if "acumatica_sync_state" in statement and statement.lstrip().upper().startswith("INSERT"):
                paused.set()
                assert release.wait(WAIT)

        def trace(connection, _record):
            connection.set_trace_callback(lambda sql: second_begins.set() if sql == "BEGIN IMMEDIATE" else None)

        sqlalchemy.event.listen(first.engine, "before_cursor_execute", hold)
        sqlalchemy.event.listen(second.engine, "connect", trace)
        results = {}

        def load(warehouse, table):
            with warehouse.load(table=table, tenant="Company", key_fields=["TimeEntryID"]) as run:
                run.write(rows_factory(3))
                results[table] = run.commit(SyncState("Company", table)).inserted

        writers = [
            threading.Thread(target=load, args=(first, "project")),
            threading.Thread(target=load, args=(second, "time_entry")),
        ]
        writers[0].start()
        assert paused.wait(WAIT)
        writers[1].start()
        assert second_begins.wait(WAIT)  # the second writer asks for the lock the first one holds
        release.set()
        for writer in writers:
            writer.join(WAIT)
        assert results == {"project": 3, "time_entry": 3}
        reader = sqlalchemy.create_engine(sqlite_url)
        with reader.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        reader.dispose()
    finally:
        first.close()
        second.close()


def test_a_sqlite_file_in_rollback_mode_is_switched_to_wal_once_another_writer_lets_it(
    sqlite_url, rows_factory, monkeypatch
):
    """A file another tool made (rollback journal) while that tool writes: SQLite refuses the switch to WAL at once,
    so the warehouse tries again; here the other writer commits when the warehouse first backs off (its sleep is
    wrapped to say when it waits, and still sleeps), and the load goes through, the file now in WAL."""
    path = sqlite_url.removeprefix("sqlite:///")
    other_tool = sqlite3.connect(path, isolation_level=None)
    other_tool.execute("CREATE TABLE their_table (x)")
    other_tool.execute("BEGIN IMMEDIATE")
    other_tool.execute("INSERT INTO their_table VALUES (1)")
    backoffs = []

    def sleep(seconds: float) -> None:
        if not backoffs:
            other_tool.execute("COMMIT")
        backoffs.append(seconds)
        real_sleep(seconds)

    real_sleep = time.sleep
    monkeypatch.setattr(time, "sleep", sleep)
    try:
        with (
            Warehouse(sqlite_url) as warehouse,
            warehouse.load(table="time_entry", tenant="Company", key_fields=["TimeEntryID"]) as load,
        ):
            load.write(rows_factory(2))
            assert load.commit(SyncState("Company", "time_entry")).inserted == 2
    finally:
        other_tool.close()
    assert backoffs, "the switch was refused at first and tried again"
    with sqlite3.connect(path) as reader:
        assert reader.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert reader.execute("SELECT x FROM their_table").fetchall() == [(1,)]


def test_an_abandoned_postgres_load_leaves_no_staging_table(postgres_schema, rows_factory):
    """Staging lives in the load session's own temporary schema, which PostgreSQL drops with the session;
    an abandoned first load leaves no table at all in the target schema."""
    url, schema = postgres_schema
    with Warehouse(url, schema=schema) as warehouse:
        with pytest.raises(KeyboardInterrupt):
            with warehouse.load(table="time_entry", tenant="Company", key_fields=["TimeEntryID"]) as load:
                load.write(rows_factory(10))
                load.mark_deleted(["TE000001"], datetime.now(timezone.utc))
                staged = (
                    load.connection.exec_driver_sql(
                        "select relname from pg_class where relnamespace = pg_my_temp_schema() and relkind = 'r'"
                    )
                    .scalars()
                    .all()
                )
                raise KeyboardInterrupt
        engine = sqlalchemy.create_engine(url)
        with engine.connect() as connection:
            tables = sqlalchemy.inspect(connection).get_table_names(schema=schema)
        engine.dispose()
    assert len(staged) == 2 and all(name.startswith("_acumatica_") for name in staged)  # rows and deletions
    assert tables == []


def test_engines_are_made_for_the_warehouse(tmp_path):
    with Warehouse("postgresql://user@127.0.0.1:1/db") as warehouse:
        assert warehouse.engine.dialect.driver == "psycopg"
    with pytest.raises(ValueError, match="in-memory"):
        Warehouse("sqlite://")
    given = sqlalchemy.create_engine(f"sqlite:///{tmp_path / 'w.db'}")
    with Warehouse(given) as warehouse:
        assert warehouse.engine is not given and warehouse.engine.url == given.url  # ours: WAL, waiting writers
    given.dispose()


def test_a_postgres_key_of_a_type_without_a_hash_function_still_keeps_its_last_copy(postgres_schema):
    """PostgreSQL looks for keys staged twice by hashing them, which it cannot do for a few types (bit varying here,
    in a table someone else created): such keys go to the self-join that deletes superseded copies directly."""
    url, schema = postgres_schema
    engine = sqlalchemy.create_engine(url)
    with engine.begin() as connection:
        connection.exec_driver_sql(
            f'CREATE TABLE "{schema}".flags (_tenant varchar(255), code varbit, label text, '
            "_acumatica_id varchar(450), _last_modified timestamptz, _synced_at timestamptz, _deleted_at timestamptz, "
            "PRIMARY KEY (_tenant, code))"
        )
    with Warehouse(url, schema=schema) as warehouse:
        with warehouse.load(table="flags", tenant="Company", key_fields=["Code"]) as load:
            load.write(
                [
                    {"Code": "101", "Label": "first", "_acumatica_id": "a"},
                    {"Code": "11", "Label": "other", "_acumatica_id": "b"},
                ]
            )
            load.write([{"Code": "101", "Label": "second", "_acumatica_id": "a"}])
            result = load.commit(SyncState("Company", "flags"))
    with engine.connect() as connection:
        stored = connection.exec_driver_sql(f'SELECT code::text, label FROM "{schema}".flags ORDER BY code').all()
    engine.dispose()
    assert (result.rows, result.inserted) == (2, 2)
    assert stored == [("101", "second"), ("11", "other")]
