"""SQLite: WAL, writers that take the write lock up front and wait for each other, multi-row staging, ON CONFLICT."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from itertools import chain
from typing import Any

import msgspec
import tenacity
from sqlalchemy import Connection, Engine, Insert, Table, create_engine, event, insert
from sqlalchemy.engine import URL

from airflow_provider_acumatica.utils.retry import RetryPolicy
from airflow_provider_acumatica.warehouse import statements
from airflow_provider_acumatica.warehouse.columns import Kind, decimal_text, kind_of_sql_type, read_exact_decimals
from airflow_provider_acumatica.warehouse.portable import MergeCounts, WarehouseDialect, count_existing
from airflow_provider_acumatica.warehouse.schema import TENANT

SQLITE_BUSY_TIMEOUT_SECONDS = 120.0
"""How long a SQLite writer waits for another writer of the same file before failing."""
SQLITE_ROWS_PER_STATEMENT = 1024
"""The most rows one staging INSERT holds (a power of two; see ``SqliteDialect._stage_fast``)."""
SQLITE_MAX_PARAMETERS = 999
"""The parameters a SQLite statement may take in every SQLite version; where the driver tells the real limit
(Python 3.11+), that is used instead (32,766 since SQLite 3.32)."""
_IMMEDIATE = "acumatica_sqlite_immediate"


def create_sqlite_engine(url: URL) -> Engine:
    """An engine on the SQLite file of ``url``: WAL journal, a busy timeout, and BEGIN IMMEDIATE for writes."""
    if url.database in (None, "", ":memory:"):
        raise ValueError(f"SQLite warehouse {url!r}: give a database file; an in-memory database cannot be shared")
    connect_args = {} if "timeout" in url.query else {"timeout": SQLITE_BUSY_TIMEOUT_SECONDS}
    engine = create_engine(url, connect_args=connect_args)
    read_exact_decimals(engine)
    event.listen(engine, "connect", _configure_connection)
    event.listen(engine, "begin", _begin_transaction)
    return engine


def _configure_connection(dbapi_connection: Any, _record: Any) -> None:
    """We issue BEGIN ourselves (the sqlite3 module's implicit transactions cannot BEGIN IMMEDIATE); WAL lets
    readers read while a load writes; synchronous=NORMAL is safe in WAL (a crash never corrupts).

    Staging stays in a temporary file (``temp_store`` left at its default): in memory it would hold a whole run,
    and neither that nor a larger page cache was faster (benchmarks/RESULTS.md)."""
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    _use_wal(cursor)
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _use_wal(cursor: sqlite3.Cursor) -> None:
    """Switch the file to WAL (a no-op once it is). On a file still in rollback mode (made by another tool) the
    switch takes an exclusive lock, which SQLite refuses at once while another connection writes, without waiting
    its busy timeout (that wait could deadlock): so it is tried again, backing off, within that timeout."""
    _WAL_SWITCH.retrying(tenacity.retry_if_exception(_is_locked))(cursor.execute, "PRAGMA journal_mode=WAL")


_WAL_SWITCH = RetryPolicy(None, SQLITE_BUSY_TIMEOUT_SECONDS, 0.01, cap_seconds=1.0, jitter=False)


def _is_locked(error: BaseException) -> bool:
    return isinstance(error, sqlite3.OperationalError) and "locked" in str(error)


def _begin_transaction(connection: Connection) -> None:
    immediate = connection.get_execution_options().get(_IMMEDIATE, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


_TIMESTAMPS_AS_JSON = msgspec.json.Encoder().encode
_JSON_TEXTS = msgspec.json.Decoder(list[str | None]).decode
_WHOLE_SECOND = re.compile(rb"(:[0-9]{2})Z")
"""A date-time's end in msgspec's JSON when it has no fraction (``...:59Z``; else ``...:59.500000Z``)."""


def _sqlite_timestamps(values: Sequence[datetime | None]) -> list[str | None]:
    """The SQLite text of aware UTC date-times (only those), None kept: the UTC wall time SQLAlchemy's SQLite DateTime
    stores and parses, always with microseconds ("2024-01-31 23:59:59.000000").

    msgspec writes the whole column as RFC 3339 JSON in C (``"2024-01-31T23:59:59.500000Z"``, no fraction when it is
    0), which is edited as bytes, where no other T, Z or colon can occur: a fraction for whole seconds, the
    separator, no suffix: a column in C instead of a Python call per value."""
    encoded = _WHOLE_SECOND.sub(rb"\1.000000", _TIMESTAMPS_AS_JSON(values))
    return _JSON_TEXTS(encoded.replace(b"T", b" ").replace(b"Z", b""))


def _each_distinct_once(form: Callable[[Any], Any]) -> Callable[[Sequence[Any]], list[Any]]:
    """A column's values in ``form``, None kept, converting each distinct value once (dates and booleans recur)."""

    def column_in_form(values: Sequence[Any]) -> list[Any]:
        distinct = set(values)
        distinct.discard(None)
        forms = dict(zip(distinct, map(form, distinct)))
        return list(map(forms.get, values))

    return column_in_form


_SQLITE_FORMS: Mapping[Kind, Callable[[Sequence[Any]], list[Any]]] = {
    Kind.TIMESTAMP: _sqlite_timestamps,
    Kind.DATE: _each_distinct_once(date.isoformat),
    Kind.BOOLEAN: _each_distinct_once(int),
}
"""Kinds whose values staging hands SQLite's driver in another form, made a column at a time (see ``SqliteDialect``).
Booleans become integers: the driver binds an int directly, a bool (like None) only after looking for an adapter,
which makes binding one about five times slower."""


def _in_sqlite_forms(staging: Table, columns: Sequence[Sequence[Any]]) -> list[Sequence[Any]]:
    """The columns, those of date-times, dates and booleans in the forms of ``_SQLITE_FORMS`` (new lists: the
    columns given are left as they are). A column that is the very list of one converted before (``_last_modified``
    is the timestamp field's) takes that one's forms without looking at its values."""
    formed = list(columns)
    converted: dict[tuple[Kind, int], list[Any]] = {}  # by kind and id() of a column: all live until this returns
    for position, column in enumerate(staging.columns):
        kind = kind_of_sql_type(column.type)
        if kind not in _SQLITE_FORMS:
            continue
        values = formed[position]
        if (kind, id(values)) not in converted:
            converted[kind, id(values)] = _SQLITE_FORMS[kind](values)
        formed[position] = converted[kind, id(values)]
    return formed


def _sqlite_parameter_limit(connection: Connection) -> int:
    """How many parameters one statement may take on this SQLite connection."""
    getlimit = getattr(connection.connection.driver_connection, "getlimit", None)  # Python 3.11+
    return getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) if getlimit else SQLITE_MAX_PARAMETERS


def _statement_sizes(rows: int, largest: int) -> Iterator[int]:
    """Rows per INSERT for staging ``rows`` rows: as many statements of ``largest`` (a power of two) as fit, then
    the rest in powers of two, largest first; so a connection only ever prepares a dozen distinct statements."""
    while rows:
        size = min(largest, 1 << (rows.bit_length() - 1))
        yield size
        rows -= size


def _sqlite_insert(connection: Connection, staging: Table, rows: int) -> str:
    """INSERT of ``rows`` rows of the staging table's columns, with positional parameters."""
    preparer = connection.dialect.identifier_preparer
    names = ", ".join(preparer.quote(column.name) for column in staging.columns)
    row = f"({', '.join('?' * len(staging.columns))})"
    return f"INSERT INTO {preparer.format_table(staging)} ({names}) VALUES {', '.join([row] * rows)}"


def _row_by_row(columns: Iterable[Sequence[Any]]) -> tuple[Any, ...]:
    """The values of the columns' rows, one row after the other: one statement's parameters. No tuple is made per
    row: zip reuses its row tuple once chain is done with it."""
    return tuple(chain.from_iterable(zip(*columns)))


class SqliteDialect(WarehouseDialect):
    """SQLite: writers take the write lock up front (BEGIN IMMEDIATE) and wait for each other; upsert by ON CONFLICT.

    The driver takes decimals, dates and date-times as text. Decimals get theirs from an adapter, value by value;
    dates and date-times (and booleans, bound faster as integers) are left to staging, which converts them a
    column at a time: the batch converter then passes the aware UTC datetimes the hook delivers untouched
    instead of converting each again on its way to an adapter.
    """

    _fast_adapters = {Kind.DECIMAL: decimal_text}

    @contextmanager
    def write_transaction(self, connection: Connection) -> Iterator[None]:
        connection.execution_options(**{_IMMEDIATE: True})
        try:
            with connection.begin():
                yield
        finally:
            connection.execution_options(**{_IMMEDIATE: False})

    _superseded = staticmethod(statements.drop_superseded_by_rowid)  # found in the stage's key index alone

    @property
    def stages_new_tables_in_place(self) -> bool:
        """On the fast path: SQLite's DDL is transactional, so the rename that publishes the table commits with the
        state, and the copy a commit would make (all after the last page arrived) is made a few batches at a time while
        pages are fetched (ADR 0004)."""
        return self.fast_path

    def hidden_table_lock_path(self, connection: Connection, schema: str | None, name: str) -> str | None:
        files = {row[1]: row[2] for row in connection.exec_driver_sql("PRAGMA database_list")}
        database = files.get(schema or "main")
        return f"{database}-{name}.lock" if database else None

    def move_staged(
        self,
        connection: Connection,
        table: Table,
        staging: Table,
        columns: Sequence[str],
        key_columns: Sequence[str],
        tenant: str,
        synced_at: datetime,
    ) -> None:
        """One ``INSERT ... SELECT ... ON CONFLICT DO UPDATE`` in key order: the key's index takes each leaf page's
        new keys together (in arrival order, random keys such as GUIDs made the moves about twice as costly)."""
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        connection.execute(
            statements.move_staged(sqlite_insert, table, staging, columns, key_columns, tenant, synced_at)
        )
        connection.execute(staging.delete())

    def create_filled(self, connection: Connection, table: Table, fill: Insert) -> None:
        """Run ``fill`` (the INSERT ... SELECT of the stage) in key order, which the stage's key index gives: the
        primary key's index is then built by appends, about twice as fast as inserting keys in arrival order.
        The tenant, the same in every row, is left out of the order."""
        rows = fill.select
        key = [rows.selected_columns[column.name] for column in table.primary_key if column.name != TENANT]
        ordered = insert(table).from_select(list(rows.selected_columns.keys()), rows.order_by(*key))
        super().create_filled(connection, table, ordered)

    def _stage_fast(self, connection: Connection, staging: Table, columns: Sequence[Sequence[Any]]) -> None:
        """Insert many rows per statement: the driver's work per statement (reset, step, change count) comes once per
        statement, not once per row, and each statement gives up the GIL while SQLite steps and must win it back
        from the threads decoding pages, so fewer statements wait less. Statements hold a power of two of rows (see
        ``_statement_sizes``): the driver caches each distinct statement it prepares, and one statement per batch
        size would grow a long load's memory."""
        columns = _in_sqlite_forms(staging, columns)
        fitting = max(1, _sqlite_parameter_limit(connection) // len(staging.columns))
        largest = 1 << (min(fitting, SQLITE_ROWS_PER_STATEMENT).bit_length() - 1)
        start = 0
        for size in _statement_sizes(len(columns[0]), largest):
            connection.exec_driver_sql(
                _sqlite_insert(connection, staging, size),
                _row_by_row(column[start : start + size] for column in columns),
            )
            start += size

    def _merge_fast(self, connection: Connection, rows: int, *args: Any) -> MergeCounts:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        counts = count_existing(connection, rows, *args)
        connection.execute(statements.upsert(sqlite_insert, *args))
        return counts
