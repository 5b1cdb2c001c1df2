"""How each database is written: PostgreSQL (COPY, ON CONFLICT, locks), SQLite (WAL, waiting writers) and portable SQL.

The portable path works on any SQLAlchemy dialect: staging by executemany, merging by UPDATE then
INSERT, counts from a join before merging. PostgreSQL and SQLite override staging and merging with
their fast paths; ``fast_path=False`` keeps the portable path on them (used to test it).
"""

from __future__ import annotations

import logging
import re
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from itertools import chain
from typing import Any

import msgspec
import tenacity
from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    Engine,
    Index,
    Insert,
    Table,
    create_engine,
    event,
    func,
    insert,
    literal,
    literal_column,
    select,
)
from sqlalchemy.engine import URL, make_url
from sqlalchemy.schema import AddConstraint

from airflow_provider_acumatica.utils.retry import RetryPolicy
from airflow_provider_acumatica.warehouse import statements
from airflow_provider_acumatica.warehouse.columns import Kind, decimal_text, kind_of_sql_type, read_exact_decimals
from airflow_provider_acumatica.warehouse.schema import LAST_MODIFIED, STAGED_ORDER, TENANT

log = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_SECONDS = 120.0
"""How long a SQLite writer waits for another writer of the same file before failing."""
SQLITE_ROWS_PER_STATEMENT = 1024
"""The most rows one staging INSERT holds (a power of two; see ``SqliteDialect._stage_fast``)."""
SQLITE_MAX_PARAMETERS = 999
"""The parameters a SQLite statement may take in every SQLite version; where the driver tells the real limit
(Python 3.11+), that is used instead (32,766 since SQLite 3.32)."""
_SQLITE_IMMEDIATE = "acumatica_sqlite_immediate"
POSTGRES_TEMP_BUFFERS = "256MB"
"""Session memory for PostgreSQL staging tables; allocated only as staging fills it."""


@dataclass(frozen=True)
class MergeCounts:
    """What a merge did with the distinct staged rows."""

    inserted: int
    updated: int
    stale: int
    """Staged rows older than the warehouse's copy, left alone."""


def create_warehouse_engine(target: str | URL | Engine) -> tuple[Engine, bool]:
    """The engine to load through, and whether we created it (and so must dispose of it).

    PostgreSQL URLs get the psycopg 3 driver. SQLite always gets an engine of ours (for an Engine we
    are given too, on the same file): WAL journal, a busy timeout, and BEGIN IMMEDIATE for writes.
    """
    if isinstance(target, Engine):
        if target.dialect.name != "sqlite":
            return target, False
        url = target.url
    else:
        url = make_url(target)
    if url.get_backend_name() != "sqlite":
        if url.drivername in ("postgresql", "postgres"):
            url = url.set(drivername="postgresql+psycopg")
        return create_engine(url), True
    if url.database in (None, "", ":memory:"):
        raise ValueError(f"SQLite warehouse {url!r}: give a database file; an in-memory database cannot be shared")
    connect_args = {} if "timeout" in url.query else {"timeout": SQLITE_BUSY_TIMEOUT_SECONDS}
    engine = create_engine(url, connect_args=connect_args)
    read_exact_decimals(engine)
    event.listen(engine, "connect", _configure_sqlite_connection)
    event.listen(engine, "begin", _begin_sqlite_transaction)
    return engine, True


def _configure_sqlite_connection(dbapi_connection: Any, _record: Any) -> None:
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


def _begin_sqlite_transaction(connection: Connection) -> None:
    immediate = connection.get_execution_options().get(_SQLITE_IMMEDIATE, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def dialect_for(engine: Engine, *, fast_path: bool = True) -> WarehouseDialect:
    """The way to write to this engine's database."""
    if engine.dialect.name == "sqlite":
        return SqliteDialect(fast_path)
    if engine.dialect.name == "postgresql" and engine.dialect.driver == "psycopg":
        return PostgresDialect(fast_path)
    log.info("Warehouse dialect %s+%s: using portable SQL", engine.dialect.name, engine.dialect.driver)
    return WarehouseDialect(fast_path=False)


class WarehouseDialect:
    """Portable SQL: no locks, executemany staging, UPDATE-then-INSERT merging."""

    def __init__(self, fast_path: bool = True) -> None:
        self.fast_path = fast_path

    @property
    def adapters(self) -> Mapping[Kind, Callable[[Any], Any]]:
        """Per kind, how canonical values become what this database's staging writes take."""
        return self._fast_adapters if self.fast_path else {}

    _fast_adapters: Mapping[Kind, Callable[[Any], Any]] = {}

    @contextmanager
    def write_transaction(self, connection: Connection) -> Iterator[None]:
        """A transaction that writes the warehouse."""
        with connection.begin():
            yield

    def lock(self, connection: Connection, name: str) -> None:
        """Serialise, until the transaction ends, the commits that name the same thing (no-op when portable)."""

    def add_column(self, connection: Connection, table: Table, column: Column) -> None:
        connection.execute(statements.AddColumn(table, column))

    def prepare_session(self, connection: Connection) -> None:
        """Tune a load's fresh connection before it stages anything (no-op when portable)."""

    def create_filled(self, connection: Connection, table: Table, fill: Insert) -> None:
        """Create ``table`` and run ``fill``, an INSERT into it: no one else sees the table before the commit."""
        table.create(connection)
        connection.execute(fill)

    @property
    def stages_new_tables_in_place(self) -> bool:
        """Whether a load of a table absent when it starts moves its staged rows, every few batches, into a hidden
        table of the target's layout that its commit renames (``move_staged``), instead of having its commit copy
        them all into a new table."""
        return False

    @property
    def stages_in_python(self) -> bool:
        """Whether staging's work is mostly Python holding the GIL (binding parameters, converting values): then a
        load is worth its own writer process (``warehouse.writer``), to use another core than the pages' decoding."""
        return True

    def hidden_table_lock_path(self, connection: Connection, schema: str | None, name: str) -> str | None:
        """The lock file beside the database that tells whether the hidden table ``name`` belongs to a live load
        (``hidden_tables``); None where no other process can see the table (a database in memory)."""
        return None

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
        """Move the staged rows into ``table``, of the target's layout, as the tenant's rows synced at ``synced_at``,
        and empty the stage. Of the copies of a key, staged now or moved before, the one ``drop_superseded`` would
        keep stays."""
        raise NotImplementedError(f"{type(self).__name__} stages new tables in a temporary table only")

    _superseded = staticmethod(statements.drop_superseded)
    """The DELETE of the staged copies the stage holds a newer copy of."""

    def drop_superseded(self, connection: Connection, staging: Table, key_columns: Sequence[str]) -> int:
        """Keep only the newest staged copy of each key (ties: the last staged); returns the rows kept. An index on
        the stage's key, then timestamp and arrival order, makes this one pass."""
        key = (staging.c[name] for name in key_columns)
        Index(f"{staging.name}_key", *key, staging.c[LAST_MODIFIED], staging.c[STAGED_ORDER]).create(connection)
        connection.execute(self._superseded(staging, key_columns))
        return _count(connection, staging)

    def stage(self, connection: Connection, staging: Table, columns: Sequence[Sequence[Any]]) -> None:
        """Append a batch to the staging table: its values column by column, in the staging table's column order (the
        sequences are not changed)."""
        (self._stage_fast if self.fast_path else self._stage_portable)(connection, staging, columns)

    def merge(
        self,
        connection: Connection,
        target: Table,
        staging: Table,
        columns: Sequence[str],
        key_columns: Sequence[str],
        tenant: str,
        synced_at: datetime,
        rows: int,
    ) -> MergeCounts:
        """Upsert the ``rows`` distinct staged rows into the tenant's part of the target."""
        merge = self._merge_fast if self.fast_path else self._merge_portable
        return merge(connection, rows, target, staging, columns, key_columns, tenant, synced_at)

    def _stage_portable(self, connection: Connection, staging: Table, columns: Sequence[Sequence[Any]]) -> None:
        names = [column.name for column in staging.columns]
        connection.execute(insert(staging), [dict(zip(names, row)) for row in zip(*columns)])

    def _merge_portable(self, connection: Connection, rows: int, *args: Any) -> MergeCounts:
        counts = _count_existing(connection, rows, *args)
        connection.execute(statements.update_existing(*args))
        connection.execute(statements.insert_missing(*args))
        return counts

    _stage_fast = _stage_portable
    _merge_fast = _merge_portable


def _count(connection: Connection, table: Table) -> int:
    return connection.execute(select(func.count()).select_from(table)).scalar_one()


def _count_existing(
    connection: Connection,
    rows: int,
    target: Table,
    staging: Table,
    columns: Sequence[str],
    key_columns: Sequence[str],
    tenant: str,
    synced_at: datetime,
) -> MergeCounts:
    """What merging will do, from which staged keys the warehouse already holds (before merging)."""
    existing, stale = connection.execute(statements.count_existing(target, staging, key_columns, tenant)).one()
    return MergeCounts(inserted=rows - existing, updated=existing - stale, stale=stale)


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
        connection.execution_options(**{_SQLITE_IMMEDIATE: True})
        try:
            with connection.begin():
                yield
        finally:
            connection.execution_options(**{_SQLITE_IMMEDIATE: False})

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

        counts = _count_existing(connection, rows, *args)
        connection.execute(statements.upsert(sqlite_insert, *args))
        return counts


class PostgresDialect(WarehouseDialect):
    """PostgreSQL: COPY into staging, one INSERT ... ON CONFLICT whose RETURNING tells inserts from updates."""

    def lock(self, connection: Connection, name: str) -> None:
        connection.execute(select(func.pg_advisory_xact_lock(func.hashtext(literal(name)))))

    @property
    def stages_in_python(self) -> bool:
        """Not on the fast path: the binary COPY is encoded in C and the server does the rest, in its own process,
        so a writer process would only add pickling (ADR 0003)."""
        return not self.fast_path

    def add_column(self, connection: Connection, table: Table, column: Column) -> None:
        connection.execute(statements.AddColumn(table, column, if_not_exists=True))

    def prepare_session(self, connection: Connection) -> None:
        # Temporary tables live in the session's own buffers (small by default): give staging room.
        # Only takes effect before the session's first temporary table, hence on a fresh connection.
        connection.exec_driver_sql(f"SET temp_buffers = '{POSTGRES_TEMP_BUFFERS}'")

    def drop_superseded(self, connection: Connection, staging: Table, key_columns: Sequence[str]) -> int:
        """Count the staged rows and their distinct key hashes first, and run the self-join that deletes superseded
        copies (a hash join: no index needed) only when two rows may share a key: a run rarely stages a key twice,
        and the join costs about three times the count even when it deletes nothing."""
        if _hashes_keys(connection, staging, key_columns):
            staged, distinct_keys = connection.execute(statements.count_staged_keys(staging, key_columns)).one()
            if distinct_keys == staged:
                return staged
        connection.execute(statements.drop_superseded(staging, key_columns))
        return _count(connection, staging)

    def create_filled(self, connection: Connection, table: Table, fill: Insert) -> None:
        """Fill the table before adding its primary key: building the key's index once, after the rows, is about
        three times faster than keeping it up to date row by row. Unnamed, the key gets the name PostgreSQL
        gives one declared in CREATE TABLE (``<table>_pkey``)."""
        add_key = AddConstraint(table.primary_key)  # isolate_from_table (default): CREATE TABLE leaves the key out
        table.create(connection)
        connection.execute(fill)
        connection.execute(add_key)

    def _stage_fast(self, connection: Connection, staging: Table, columns: Sequence[Sequence[Any]]) -> None:
        from psycopg import sql

        driver_connection = connection.connection.driver_connection
        binary_types = _binary_copy_types(driver_connection, staging)
        names = sql.SQL(", ").join(sql.Identifier(column.name) for column in staging.columns)
        copy_sql = sql.SQL("COPY {} ({}) FROM STDIN{}").format(
            sql.Identifier(staging.name), names, sql.SQL(" (FORMAT BINARY)" if binary_types else "")
        )
        with driver_connection.cursor() as cursor, cursor.copy(copy_sql) as copy:
            if binary_types:
                copy.set_types(binary_types)
            for row in zip(*columns):
                copy.write_row(row)

    def _merge_fast(self, connection: Connection, rows: int, *args: Any) -> MergeCounts:
        from sqlalchemy.dialects.postgresql import insert as postgres_insert

        was_inserted = literal_column("(xmax = 0)", Boolean).label("inserted")  # xmax is 0 on a fresh row
        upserted = statements.upsert(postgres_insert, *args).returning(was_inserted).cte("upserted")
        written, inserted = connection.execute(
            select(func.count(), func.count().filter(upserted.c.inserted)).select_from(upserted)
        ).one()
        return MergeCounts(inserted=inserted, updated=written - inserted, stale=rows - written)


def _hashes_keys(connection: Connection, staging: Table, key_columns: Sequence[str]) -> bool:
    """Whether PostgreSQL can hash the staged keys: ``hash_record_extended`` came in 14, and every kind of ours has a
    hash function (a key column of a type we do not know, in a table someone else made, may have none)."""
    return connection.dialect.server_version_info >= (14,) and all(
        kind_of_sql_type(staging.c[name].type) is not Kind.OTHER for name in key_columns
    )


_BINARY_COPY_TYPES = frozenset(
    {"int2", "int4", "int8", "numeric", "float4", "float8", "bool", "text", "varchar", "timestamptz", "date"}
)
"""PostgreSQL types whose binary COPY form takes our canonical values as they are (three times cheaper than text)."""


def _binary_copy_types(driver_connection: Any, staging: Table) -> list[int] | None:
    """The staging columns' type OIDs when all can be copied in binary, else None (COPY in text)."""
    cache = staging.info.setdefault("binary_copy_types", {})
    if len(staging.columns) not in cache:
        types = driver_connection.execute(
            "SELECT t.oid, t.typname FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid "
            "WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
            [staging.name],
        ).fetchall()
        binary = all(name in _BINARY_COPY_TYPES for _, name in types)
        cache[len(staging.columns)] = [oid for oid, _ in types] if binary else None
    return cache[len(staging.columns)]
