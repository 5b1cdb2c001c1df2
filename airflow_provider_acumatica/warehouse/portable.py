"""Portable SQL for any SQLAlchemy dialect: staging by executemany, merging by UPDATE then INSERT, counts from a join
before merging. The SQLite and PostgreSQL dialects (sqlite.py, postgres.py) override staging and merging with their
fast paths; ``fast_path=False`` keeps the portable path on them (used to test it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Column, Connection, Index, Insert, Table, func, insert, select

from airflow_provider_acumatica.warehouse import statements
from airflow_provider_acumatica.warehouse.columns import Kind
from airflow_provider_acumatica.warehouse.schema import LAST_MODIFIED, STAGED_ORDER


@dataclass(frozen=True)
class MergeCounts:
    """What a merge did with the distinct staged rows."""

    inserted: int
    updated: int
    stale: int
    """Staged rows older than the warehouse's copy, left alone."""


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
        return count_rows(connection, staging)

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
        counts = count_existing(connection, rows, *args)
        connection.execute(statements.update_existing(*args))
        connection.execute(statements.insert_missing(*args))
        return counts

    _stage_fast = _stage_portable
    _merge_fast = _merge_portable


def count_rows(connection: Connection, table: Table) -> int:
    return connection.execute(select(func.count()).select_from(table)).scalar_one()


def count_existing(
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
