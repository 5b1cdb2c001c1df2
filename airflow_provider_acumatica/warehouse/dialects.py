"""How each database is written: PostgreSQL (COPY, ON CONFLICT, locks), SQLite (WAL, waiting writers) and portable SQL.

The portable path works on any SQLAlchemy dialect: staging by executemany, merging by UPDATE then
INSERT, counts from a join before merging. PostgreSQL and SQLite override staging and merging with
their fast paths; ``fast_path=False`` keeps the portable path on them (used to test it).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

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

from airflow_provider_acumatica.warehouse import statements
from airflow_provider_acumatica.warehouse.columns import Kind
from airflow_provider_acumatica.warehouse.schema import STAGED_ORDER

log = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_SECONDS = 120.0
"""How long a SQLite writer waits for another writer of the same file before failing."""
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
    event.listen(engine, "connect", _configure_sqlite_connection)
    event.listen(engine, "begin", _begin_sqlite_transaction)
    return engine, True


def _configure_sqlite_connection(dbapi_connection: Any, _record: Any) -> None:
    """We issue BEGIN ourselves (the sqlite3 module's implicit transactions cannot BEGIN IMMEDIATE); WAL lets
    readers read while a load writes; synchronous=NORMAL is safe in WAL (a crash never corrupts)."""
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


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

    def drop_superseded(self, connection: Connection, staging: Table, key_columns: Sequence[str]) -> None:
        """Keep only the last staged copy of each key; an index on the key makes this one pass."""
        Index(f"{staging.name}_key", *(staging.c[name] for name in key_columns), staging.c[STAGED_ORDER]).create(
            connection
        )
        connection.execute(statements.drop_superseded(staging, key_columns))

    def stage(self, connection: Connection, staging: Table, rows: Sequence[tuple[Any, ...]]) -> None:
        """Append rows (tuples in the staging table's column order) to the staging table."""
        (self._stage_fast if self.fast_path else self._stage_portable)(connection, staging, rows)

    def merge(self, connection: Connection, target: Table, staging: Table, columns: Sequence[str],
              key_columns: Sequence[str], tenant: str, synced_at: datetime, rows: int) -> MergeCounts:
        """Upsert the ``rows`` distinct staged rows into the tenant's part of the target."""
        merge = self._merge_fast if self.fast_path else self._merge_portable
        return merge(connection, rows, target, staging, columns, key_columns, tenant, synced_at)

    def _stage_portable(self, connection: Connection, staging: Table, rows: Sequence[tuple[Any, ...]]) -> None:
        names = [column.name for column in staging.columns]
        connection.execute(insert(staging), [dict(zip(names, row)) for row in rows])

    def _merge_portable(self, connection: Connection, rows: int, *args: Any) -> MergeCounts:
        counts = _count_existing(connection, rows, *args)
        connection.execute(statements.update_existing(*args))
        connection.execute(statements.insert_missing(*args))
        return counts

    _stage_fast = _stage_portable
    _merge_fast = _merge_portable


def _count_existing(connection: Connection, rows: int, target: Table, staging: Table, columns: Sequence[str],
                    key_columns: Sequence[str], tenant: str, synced_at: datetime) -> MergeCounts:
    """What merging will do, from which staged keys the warehouse already holds (before merging)."""
    existing, stale = connection.execute(statements.count_existing(target, staging, key_columns, tenant)).one()
    return MergeCounts(inserted=rows - existing, updated=existing - stale, stale=stale)


def _sqlite_timestamp(value: datetime) -> str:
    """The text SQLAlchemy's SQLite DateTime stores and parses: UTC wall time with microseconds."""
    return value.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


class SqliteDialect(WarehouseDialect):
    """SQLite: writers take the write lock up front (BEGIN IMMEDIATE) and wait for each other; upsert by ON CONFLICT."""

    _fast_adapters = {Kind.TIMESTAMP: _sqlite_timestamp, Kind.DATE: date.isoformat, Kind.DECIMAL: Decimal.__str__}

    @contextmanager
    def write_transaction(self, connection: Connection) -> Iterator[None]:
        connection.execution_options(**{_SQLITE_IMMEDIATE: True})
        try:
            with connection.begin():
                yield
        finally:
            connection.execution_options(**{_SQLITE_IMMEDIATE: False})

    def _stage_fast(self, connection: Connection, staging: Table, rows: Sequence[tuple[Any, ...]]) -> None:
        sql = str(insert(staging).compile(dialect=connection.dialect))
        connection.exec_driver_sql(sql, list(rows))

    def _merge_fast(self, connection: Connection, rows: int, *args: Any) -> MergeCounts:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        counts = _count_existing(connection, rows, *args)
        connection.execute(statements.upsert(sqlite_insert, *args))
        return counts


class PostgresDialect(WarehouseDialect):
    """PostgreSQL: COPY into staging, one INSERT ... ON CONFLICT whose RETURNING tells inserts from updates."""

    def lock(self, connection: Connection, name: str) -> None:
        connection.execute(select(func.pg_advisory_xact_lock(func.hashtext(literal(name)))))

    def add_column(self, connection: Connection, table: Table, column: Column) -> None:
        connection.execute(statements.AddColumn(table, column, if_not_exists=True))

    def prepare_session(self, connection: Connection) -> None:
        # Temporary tables live in the session's own buffers (8 MB by default): give staging room.
        # Only takes effect before the session's first temporary table, hence on a fresh connection.
        connection.exec_driver_sql(f"SET temp_buffers = '{POSTGRES_TEMP_BUFFERS}'")

    def drop_superseded(self, connection: Connection, staging: Table, key_columns: Sequence[str]) -> None:
        connection.execute(statements.drop_superseded(staging, key_columns))  # a hash join: no index needed

    def create_filled(self, connection: Connection, table: Table, fill: Insert) -> None:
        """Fill the table before adding its primary key: building the key's index once, after the rows, is about
        three times faster than keeping it up to date row by row. Unnamed, the key gets the name PostgreSQL
        gives one declared in CREATE TABLE (``<table>_pkey``)."""
        add_key = AddConstraint(table.primary_key)  # isolate_from_table (default): CREATE TABLE leaves the key out
        table.create(connection)
        connection.execute(fill)
        connection.execute(add_key)

    def _stage_fast(self, connection: Connection, staging: Table, rows: Sequence[tuple[Any, ...]]) -> None:
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
            for row in rows:
                copy.write_row(row)

    def _merge_fast(self, connection: Connection, rows: int, *args: Any) -> MergeCounts:
        from sqlalchemy.dialects.postgresql import insert as postgres_insert

        was_inserted = literal_column("(xmax = 0)", Boolean).label("inserted")  # xmax is 0 on a fresh row
        upserted = statements.upsert(postgres_insert, *args).returning(was_inserted).cte("upserted")
        written, inserted = connection.execute(
            select(func.count(), func.count().filter(upserted.c.inserted)).select_from(upserted)
        ).one()
        return MergeCounts(inserted=inserted, updated=written - inserted, stale=rows - written)


_BINARY_COPY_TYPES = frozenset({"int2", "int4", "int8", "numeric", "float4", "float8", "bool", "text", "varchar",
                                "timestamptz", "date"})
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
