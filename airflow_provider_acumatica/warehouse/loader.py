"""Loading rows into the warehouse: a run stages its rows, then commits them with its sync state in one transaction.

Rows go, batch by batch, into a TEMPORARY staging table on the load's own connection (memory stays
bounded by the batch; a crash or kill leaves nothing behind). ``commit`` then evolves the table,
merges the stage and writes the state in ONE transaction: readers see the table as it was or as it
is after the whole run, never in between. Leaving the ``with`` block without committing changes nothing.

On SQLite (fast path), a load of a table absent when it starts stages in place (ADR 0004): every ``MOVE_ROWS``
staged rows move, in a short ``BEGIN IMMEDIATE`` transaction of their own, into a hidden table of the
target's layout and primary key (``_acumatica_new_<table>_<tenant hash>_<load id>``), a newer copy of a
key replacing an older one. The commit moves the rest and renames the hidden table to the target (or, if
another load's commit created the target meanwhile, merges it like a stage and drops it), then marks
deletions and writes the state, in one transaction: no reader sees the target before. Its rows'
``_synced_at`` is the instant the load staged its first batch. A load left without committing drops its
hidden table; one a killed process left behind is dropped by the next load of the same tenant and table, and
one a load still running holds (a lock file beside the database, ``hidden_tables``, ADR 0013) is left to it: two
runs of one tenant's table at once both commit, the later merging into what the earlier created.

A ``Warehouse`` holds only an engine and is safe to share between threads; a ``Load`` holds one
connection and belongs to the thread that uses it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import re
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from types import TracebackType
from typing import Any

from sqlalchemy import BigInteger, Column, Connection, Engine, MetaData, String, Table, func, inspect, select
from sqlalchemy.engine import URL
from sqlalchemy.schema import DropTable

from airflow_provider_acumatica.warehouse import statements
from airflow_provider_acumatica.warehouse.batches import columns_of_rows, row_count
from airflow_provider_acumatica.warehouse.columns import UtcDateTime, to_timestamp
from airflow_provider_acumatica.warehouse.dialects import MergeCounts, create_warehouse_engine, dialect_for
from airflow_provider_acumatica.warehouse.errors import WarehouseError
from airflow_provider_acumatica.warehouse.hidden_tables import HiddenTableLock, drop_left_behind
from airflow_provider_acumatica.warehouse.key_lists import stage_keys
from airflow_provider_acumatica.warehouse.schema import (
    ACUMATICA_ID,
    DELETED_AT,
    STAGED_ORDER,
    SYNCED_AT,
    TENANT,
    BatchConverter,
    TableLayout,
)
from airflow_provider_acumatica.warehouse.state import STATE_TABLE, SyncState, read_state, state_table, write_state

log = logging.getLogger(__name__)

LOAD_MODES = ("merge", "replace")
HIDDEN_TABLE_PREFIX = "_acumatica_new_"
"""Names of the hidden tables loads stage in place into (see the module docstring)."""
LOAD_ID_DIGITS = 12
MOVE_ROWS = 50_000
"""Staging in place, staged rows move to the hidden table once this many wait (the rest at commit). Each move
rewrites the key index's pages it touches, which random keys (GUIDs) spread over the whole index, so small moves
cost more than the commit-time copy they spare; larger moves make the commit's last move longer and other writers
of the file wait longer for one (benchmarks/RESULTS.md)."""


@dataclass(frozen=True)
class LoadResult:
    """What a committed load did, for logs and XCom."""

    tenant: str
    table: str
    mode: str
    rows: int
    """Distinct rows staged (one copy of each key: the newest)."""
    inserted: int
    updated: int
    skipped_stale: int
    """Staged rows older than the warehouse's copy (by ``_last_modified``), left as they were."""
    marked_deleted: int
    added_columns: tuple[str, ...]
    state: SyncState
    """The state as stored (its watermark is the later of the stored and the committed one)."""


class Warehouse:
    """A SQL warehouse (SQLite file, PostgreSQL or any SQLAlchemy database) and its target schema."""

    def __init__(self, target: str | URL | Engine, schema: str | None = None, *, fast_path: bool = True) -> None:
        self.engine, self.owns_engine = create_warehouse_engine(target)
        """Whether the engine was made here from a URL (and so is disposed of here), not handed in."""
        self.schema = schema
        self.fast_path = fast_path
        self.dialect = dialect_for(self.engine, fast_path=fast_path)

    def read_state(self, tenant: str, table: str) -> SyncState | None:
        """The stored sync state of a tenant's table, or None before its first committed load."""
        with self.engine.connect() as connection:
            if not inspect(connection).has_table(STATE_TABLE, schema=self.schema):
                return None
            return read_state(connection, state_table(MetaData(), self.schema), tenant, table)

    def load(
        self,
        table: str,
        tenant: str,
        key_fields: Sequence[str] = (),
        mode: str = "merge",
        declared_types: Mapping[str, str] | None = None,
    ) -> Load:
        """A load of one tenant's rows into ``table`` (the warehouse name, used as given), to use in a ``with``."""
        return Load(self, table, tenant, key_fields, mode, declared_types)

    def reconcile_keys(
        self,
        table: str,
        tenant: str,
        key_fields: Sequence[str],
        present_keys: Iterable[Any],
        started_at: datetime | None = None,
    ) -> int:
        """Mark deleted the tenant's rows whose key is not in ``present_keys``; returns how many were marked.

        Rows synced at or after ``started_at`` (default: now, so pass the keys as a lazy iterable read
        during this call) are never marked: they may be records created after the key listing began.
        """
        with self.load(table, tenant, key_fields) as load:
            return load.mark_unlisted(present_keys, to_timestamp(started_at or datetime.now(timezone.utc)))

    def close(self) -> None:
        """Dispose of the engine if this warehouse created it."""
        if self.owns_engine:
            self.engine.dispose()

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Load:
    """One tenant's rows on their way into one table: ``write`` (or ``write_columns``) batches, ``mark_deleted`` keys,
    then ``commit``."""

    def __init__(
        self,
        warehouse: Warehouse,
        table: str,
        tenant: str,
        key_fields: Sequence[str],
        mode: str,
        declared_types: Mapping[str, str] | None,
    ) -> None:
        _check_arguments(table, tenant, key_fields, mode, declared_types)
        self.warehouse, self.table, self.tenant, self.mode = warehouse, table, tenant, mode
        self.layout = TableLayout(table, list(key_fields), declared_types)
        self._connection: Connection | None = None
        self._staging: Table | None = None
        """The temporary table rows are staged in (staging in place: until they move to ``_hidden``)."""
        self._hidden: Table | None = None
        self._hidden_prefix = _hidden_prefix(table, tenant)
        self._hidden_lock: HiddenTableLock | None = None
        self._in_place = False
        self._staged_at: datetime | None = None
        """When a load staging in place staged its first batch: its rows' ``_synced_at``."""
        self._moved_count = 0
        self._converters: dict[int, BatchConverter] = {}
        self._staged_count = 0
        self._deletions: dict[str, Table] = {}
        self._committed = self._failed = False

    # -- lifecycle ------------------------------------------------------------------------------------

    def __enter__(self) -> Load:
        self._connection = self.warehouse.engine.connect()
        dialect = self.warehouse.dialect
        try:
            with self._transaction():
                dialect.prepare_session(self._connection)
                existing = self._adopt_existing_table()
            if dialect.stages_new_tables_in_place:
                self._drop_leftovers()
                self._in_place = not existing
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if self._connection is not None:
            if exc_type is not None and not self._committed:
                log.warning("Load of tenant %r into %r abandoned: nothing was committed", self.tenant, self.table)
            if self._hidden is not None and not self._committed:
                self._drop_hidden_table()
            if self._hidden_lock is not None:  # the table is renamed or dropped, or left behind for the next load
                self._hidden_lock.release()
            self._connection.invalidate()  # the temporary tables go with the session
            self._connection.close()
            self._connection = None

    @property
    def committed(self) -> bool:
        """Whether ``commit`` succeeded (a load left before it changes nothing)."""
        return self._committed

    @property
    def connection(self) -> Connection:
        if self._connection is None:
            raise RuntimeError(f"load of tenant {self.tenant!r} into {self.table!r}: use it inside a 'with' block")
        if self._committed or self._failed:
            state = "is already committed" if self._committed else "failed: leave the 'with' block and start again"
            raise RuntimeError(f"load of tenant {self.tenant!r} into {self.table!r} {state}")
        return self._connection

    def _drop_leftovers(self) -> None:
        """Drop the hidden tables this tenant's loads of this table left behind (a killed process leaves its own),
        before staging anything; a hidden table whose lock a live load holds is a run going on, and stays."""
        with self._transaction() as connection:
            names = [
                name
                for name in inspect(connection).get_table_names(schema=self.warehouse.schema)
                if _is_hidden_table(name, self._hidden_prefix)
            ]
            paths = {name: self._lock_path(connection, name) for name in names}
        drop_left_behind(paths, self._drop_left_behind, f"Table {self.table}, tenant {self.tenant!r}")

    def _drop_left_behind(self, name: str) -> None:
        with self._transaction(writes_warehouse=True) as connection:
            connection.execute(DropTable(Table(name, MetaData(), schema=self.warehouse.schema), if_exists=True))

    def _lock_path(self, connection: Connection, hidden_name: str) -> str | None:
        return self.warehouse.dialect.hidden_table_lock_path(connection, self.warehouse.schema, hidden_name)

    def _drop_hidden_table(self) -> None:
        """Best effort, leaving a load that did not commit: a table left behind is dropped by the next load."""
        try:
            with self.warehouse.dialect.write_transaction(self._connection):
                self._connection.execute(DropTable(self._hidden, if_exists=True))
        except Exception as error:  # the load's own outcome (its error, if any) is what the caller must see
            log.warning(
                "Load of tenant %r into %r: could not drop its hidden table %r (%s); the next load of this "
                "tenant's table drops it",
                self.tenant,
                self.table,
                self._hidden.name,
                error,
            )

    def _adopt_existing_table(self) -> bool:
        inspector = inspect(self.connection)
        schema = self.warehouse.schema
        if not inspector.has_table(self.table, schema=schema):
            return False
        primary_key = inspector.get_pk_constraint(self.table, schema=schema)["constrained_columns"]
        self.layout.adopt_existing(inspector.get_columns(self.table, schema=schema), primary_key)
        return True

    # -- staging --------------------------------------------------------------------------------------

    def write(self, rows: Sequence[Mapping[str, Any]]) -> int:
        """Stage a batch of rows (dicts keyed by source field names plus ``_acumatica_id``, ``_last_modified``):
        held by field (fields in the order they first appear), then staged as ``write_columns`` stages."""
        return self.write_columns(columns_of_rows(rows, self.table))

    def write_columns(self, columns: Mapping[str, Sequence[Any]]) -> int:
        """Stage a batch of rows held by field: each field's values (as ``write``'s rows name fields), one per row,
        None for no value; returns the rows. Staged as ``write`` stages them; the sequences are never changed."""
        count = row_count(columns, self.table)
        if not count:
            return 0
        self.layout.discover(columns)
        missing = [
            field
            for field, column in zip(self.layout.key_fields, self.layout.key_columns)
            if column not in {staged.name for staged in self.layout.staged_columns()}
        ]
        if missing:
            raise WarehouseError(f"table {self.table!r}: no row of the batch has a value for key field(s) {missing}")
        staging_columns = self._converter()(columns, count, self._staged_count)  # a misfit raises here, unstaged
        with self._transaction() as connection:
            self._sync_staging(connection)
            self.warehouse.dialect.stage(connection, self._staging, staging_columns)
        self._staged_count += count
        if self._in_place and self._staged_count - self._moved_count >= MOVE_ROWS:
            with self._transaction(writes_warehouse=True) as connection:
                self._move_to_hidden_table(connection)
        return count

    def _converter(self) -> BatchConverter:
        """The batch converter for the columns known now (rebuilt when fields add columns)."""
        columns = len(self.layout.staged_columns())
        if columns not in self._converters:
            self._converters = {columns: self.layout.batch_converter(self.warehouse.dialect.adapters)}
        return self._converters[columns]

    def _sync_staging(self, connection: Connection) -> None:
        """Create the staging table on first use, and give it the columns new fields brought."""
        if self._staging is None:
            self._staging = Table(
                f"_acumatica_stage_{uuid.uuid4().hex[:12]}",
                MetaData(),
                Column(STAGED_ORDER, BigInteger),
                *(Column(column.name, column.sql_type) for column in self.layout.staged_columns()),
                prefixes=["TEMPORARY"],
            )
            self._staging.create(connection)
            if self._in_place:  # these rows are written before the commit: their _synced_at is now
                self._staged_at = datetime.now(timezone.utc)
            return
        self._add_new_columns(connection, self._staging)

    def _add_new_columns(self, connection: Connection, table: Table) -> None:
        """Give a table of this load (stage or hidden table) the staged columns it lacks."""
        for layout_column in self.layout.staged_columns():
            if layout_column.name not in table.c:
                column = Column(layout_column.name, layout_column.sql_type)
                table.append_column(column)
                self.warehouse.dialect.add_column(connection, table, column)

    def _move_to_hidden_table(self, connection: Connection) -> None:
        """Staging in place: move the staged rows into the hidden table, created on first use."""
        if self._hidden is None:
            name = f"{self._hidden_prefix}{uuid.uuid4().hex[:LOAD_ID_DIGITS]}"
            self._hold_lock_of(connection, name)
            self._hidden = self._target_table(name)
            self._hidden.create(connection)
        else:
            self._add_new_columns(connection, self._hidden)
        columns = [column.name for column in self.layout.staged_columns()]
        self.warehouse.dialect.move_staged(
            connection, self._hidden, self._staging, columns, self.layout.key_columns, self.tenant, self._staged_at
        )
        self._moved_count = self._staged_count

    def _hold_lock_of(self, connection: Connection, hidden_name: str) -> None:
        """Lock the new hidden table's lock file before the table exists, so that no other load takes the table
        for a leftover while this one runs."""
        path = self._lock_path(connection, hidden_name)
        if path is None:
            return
        self._hidden_lock = HiddenTableLock.acquire(path)
        if self._hidden_lock is None:  # a load id drawn twice: 48 random bits make it all but impossible
            raise RuntimeError(f"load of tenant {self.tenant!r} into {self.table!r}: {path} is locked by another load")

    @property
    def _staged_table(self) -> Table:
        """The table the staged rows are in: the hidden table when staging in place, else the temporary stage."""
        return self._hidden if self._in_place else self._staging

    @contextmanager
    def _transaction(self, *, writes_warehouse: bool = False) -> Iterator[Connection]:
        """A transaction of this load's connection; if it fails, the load can only be left."""
        connection = self.connection
        dialect = self.warehouse.dialect
        try:
            with dialect.write_transaction(connection) if writes_warehouse else connection.begin():
                yield connection
        except BaseException:
            self._failed = True
            raise

    def mark_deleted(self, keys: Iterable[Any], deleted_at: datetime, *, by_id: bool = False) -> int:
        """Mark rows deleted at commit (they stay, with ``_deleted_at``), unless modified after ``deleted_at``.

        ``keys`` are tuples of key values in ``key_fields`` order (a bare value for a one-field key),
        or ``_acumatica_id`` values when ``by_id`` (as ``GetDeletedRecords`` gives them).
        """
        deleted_at = _aware(deleted_at, "deleted_at")
        match = [ACUMATICA_ID] if by_id else self.layout.key_columns
        name = "by_id" if by_id else "by_key"
        with self._transaction() as connection:
            count, self._deletions[name] = stage_keys(
                connection, self.layout, keys, match, self._deletions.get(name), deleted_at
            )
        return count

    def mark_unlisted(self, present_keys: Iterable[Any], synced_before: datetime) -> int:
        """Mark deleted now the tenant's rows, synced before ``synced_before``, whose key is not listed."""
        if not self.layout.existing:
            return 0
        with self._transaction() as connection:
            _, listed = stage_keys(connection, self.layout, present_keys, self.layout.key_columns)
        with self._transaction(writes_warehouse=True) as connection:
            target = self._target_table()
            marked = connection.execute(
                statements.mark_absent(
                    target, listed, self.layout.key_columns, self.tenant, datetime.now(timezone.utc), synced_before
                )
            ).rowcount
        log.info("Table %s, tenant %r: %d rows no longer listed, marked deleted", self.table, self.tenant, marked)
        return marked

    # -- committing -----------------------------------------------------------------------------------

    def commit(self, state: SyncState) -> LoadResult:
        """Merge (or, in replace mode, swap in) the stage, apply deletions and store the state: one transaction."""
        if (state.tenant, state.table) != (self.tenant, self.table):
            raise ValueError(
                f"commit of tenant {self.tenant!r}, table {self.table!r} got a state for tenant "
                f"{state.tenant!r}, table {state.table!r}"
            )
        synced_at = datetime.now(timezone.utc)
        with self._transaction(writes_warehouse=True) as connection:
            self.warehouse.dialect.lock(connection, f"acumatica:{self.warehouse.schema}.{self.table}")
            new = not self._adopt_existing_table()
            added = self._evolve_table(connection, new)
            counts, rows, marked = self._apply_stage(connection, self._staged_at or synced_at, new)
            stored = write_state(
                connection,
                self._state_table(connection),
                dataclasses.replace(state, finished_at=state.finished_at or synced_at),
            )
        self._committed = True
        result = LoadResult(
            self.tenant,
            self.table,
            self.mode,
            rows,
            counts.inserted,
            counts.updated,
            counts.stale,
            marked,
            tuple(column.name for column in added),
            stored,
        )
        log.info("Table %s, tenant %r committed: %s", self.table, self.tenant, result)
        return result

    def _evolve_table(self, connection: Connection, new: bool) -> list[Any]:
        """Add the columns new fields brought; returns them (for a ``new`` table, all: ``_apply_stage`` creates it)."""
        if self._staging is None and new:
            return []
        added = self.layout.new_columns()
        if not new:
            target = self._target_table()
            for column in added:
                log.info("Table %s: adding column %r (%s)", self.table, column.name, column.kind.value)
                self.warehouse.dialect.add_column(connection, target, target.c[column.name])
        self.layout.existing.update(column.name for column in added)
        return added

    def _apply_stage(self, connection: Connection, synced_at: datetime, new: bool) -> tuple[MergeCounts, int, int]:
        """Merge the stage (into a ``new`` table: the stage becomes it, as nothing can conflict), mark deletions."""
        counts, rows, marked = MergeCounts(0, 0, 0), 0, 0
        if not self.layout.existing:
            return counts, rows, marked
        target, keys = self._target_table(), self.layout.key_columns
        if self._staging is not None:
            counts, rows = self._merge_stage(connection, target, synced_at, new)
        if self.mode == "replace" and not new:  # a new table holds only staged rows: none is absent
            listed = self._staged_table if self._staging is not None else self._empty_key_list(connection)
            marked += connection.execute(statements.mark_absent(target, listed, keys, self.tenant, synced_at)).rowcount
        for deletions in self._deletions.values():
            match = [column.name for column in deletions.columns if column.name != DELETED_AT]
            marked += connection.execute(statements.mark_listed(target, deletions, match, self.tenant)).rowcount
        if self._hidden is not None and not new:
            connection.execute(DropTable(self._hidden))  # merged like a stage: done with
        return counts, rows, marked

    def _merge_stage(
        self, connection: Connection, target: Table, synced_at: datetime, new: bool
    ) -> tuple[MergeCounts, int]:
        """Merge the newest staged copy of each key into the target, or make the target of them (``new``); returns what
        merging did and the distinct rows staged."""
        keys, dialect = self.layout.key_columns, self.warehouse.dialect
        columns = [column.name for column in self.layout.staged_columns()]
        if self._in_place:
            self._move_to_hidden_table(connection)  # the rows staged since the last move
            rows = connection.execute(select(func.count()).select_from(self._hidden)).scalar_one()
        else:
            rows = dialect.drop_superseded(connection, self._staging, keys)
        staged = self._staged_table
        if not new:
            return dialect.merge(connection, target, staged, columns, keys, self.tenant, synced_at, rows), rows
        if self._in_place:
            connection.execute(statements.RenameTable(self._hidden, target.name))
        else:
            dialect.create_filled(
                connection, target, statements.insert_staged(target, staged, columns, self.tenant, synced_at)
            )
        log.info("Table %s created with columns %s", self.table, [column.name for column in target.columns])
        return MergeCounts(inserted=rows, updated=0, stale=0), rows

    def _empty_key_list(self, connection: Connection) -> Table:
        return stage_keys(connection, self.layout, (), self.layout.key_columns)[1]

    def _target_table(self, table_name: str | None = None) -> Table:
        """The warehouse table as this load knows it (or a table of its layout named ``table_name``): tenant, key
        columns first, then the others."""
        columns = self.layout.columns
        ordered = [columns[name] for name in self.layout.key_columns]
        ordered += [column for column in columns.values() if not column.key]
        return Table(
            table_name or self.table,
            MetaData(),
            Column(TENANT, String(255), primary_key=True),
            *(Column(column.name, column.sql_type, primary_key=column.key) for column in ordered),
            Column(SYNCED_AT, UtcDateTime()),
            Column(DELETED_AT, UtcDateTime()),
            schema=self.warehouse.schema,
        )

    def _state_table(self, connection: Connection) -> Table:
        table = state_table(MetaData(), self.warehouse.schema)
        if not inspect(connection).has_table(STATE_TABLE, schema=self.warehouse.schema):
            self.warehouse.dialect.lock(connection, f"acumatica:{self.warehouse.schema}.{STATE_TABLE}")
            table.create(connection, checkfirst=True)
        return table


def _hidden_prefix(table: str, tenant: str) -> str:
    """How the names of the hidden tables of a tenant's loads of a table begin; a load id ends each name."""
    return f"{HIDDEN_TABLE_PREFIX}{table}_{hashlib.sha1(tenant.encode()).hexdigest()[:8]}_"


def _is_hidden_table(name: str, prefix: str) -> bool:
    return name.startswith(prefix) and re.fullmatch(f"[0-9a-f]{{{LOAD_ID_DIGITS}}}", name[len(prefix) :]) is not None


def _aware(value: datetime, argument: str) -> datetime:
    try:
        return to_timestamp(value)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{argument} is {value!r}: {error}") from None


def _check_arguments(
    table: str, tenant: str, key_fields: Sequence[str], mode: str, declared_types: Mapping[str, str] | None
) -> None:
    if not isinstance(table, str) or not table:
        raise ValueError(f"table must be a non-empty string, got {table!r}")
    if not isinstance(tenant, str) or not tenant:
        raise ValueError(f"tenant must be a non-empty string, got {tenant!r}")
    if isinstance(key_fields, str) or not all(isinstance(field, str) and field for field in key_fields):
        raise ValueError(f"key_fields of table {table!r} must be a list of field names, got {key_fields!r}")
    if mode not in LOAD_MODES:
        raise ValueError(f"mode of table {table!r} must be one of {LOAD_MODES}, got {mode!r}")
    if declared_types is not None and not isinstance(declared_types, Mapping):
        raise ValueError(
            f"declared_types of table {table!r} must be a dict of field -> Edm type, got {declared_types!r}"
        )
