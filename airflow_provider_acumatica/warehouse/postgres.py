"""PostgreSQL: binary COPY into staging, one INSERT ... ON CONFLICT whose RETURNING tells inserts from updates, advisory
locks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Boolean, Column, Connection, Insert, Table, func, literal, literal_column, select
from sqlalchemy.schema import AddConstraint

from airflow_provider_acumatica.warehouse import statements
from airflow_provider_acumatica.warehouse.columns import Kind, kind_of_sql_type
from airflow_provider_acumatica.warehouse.portable import MergeCounts, WarehouseDialect, count_rows

POSTGRES_TEMP_BUFFERS = "256MB"
"""Session memory for PostgreSQL staging tables; allocated only as staging fills it."""


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
        return count_rows(connection, staging)

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
