"""Thread-safe in-memory tables per tenant, kept in key order, with a deletions log and the sandbox clock."""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta, timezone

from airflow_provider_acumatica.sandbox.catalog import ENTITIES, EntitySpec

Row = tuple


def to_millis(moment: datetime) -> datetime:
    """Drop sub-millisecond digits: Acumatica keeps date-times to the millisecond."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


class SandboxClock:
    """Real UTC time plus an adjustable offset; drives expiry and the timestamps of mutations."""

    def __init__(self) -> None:
        self._offset = timedelta()
        self._lock = threading.Lock()

    def now(self) -> datetime:
        """The sandbox's current UTC time, to the millisecond."""
        return to_millis(datetime.now(timezone.utc) + self._offset)

    def advance(self, seconds: float) -> datetime:
        """Move the clock forward (or back, when negative) by `seconds`."""
        with self._lock:
            self._offset += timedelta(seconds=seconds)
        return self.now()

    def set(self, moment: datetime) -> datetime:
        """Make the clock read `moment` now and run on from there."""
        if moment.tzinfo is None:
            raise ValueError(f"clock: give an aware date-time (with offset or Z), got {moment.isoformat()}")
        with self._lock:
            self._offset = moment - datetime.now(timezone.utc)
        return self.now()


class Table:
    """One entity's records of one tenant: rows are tuples in `spec.columns` order, kept sorted by key."""

    def __init__(self, tenant: str, spec: EntitySpec, lock: threading.RLock) -> None:
        self.tenant = tenant
        self.spec = spec
        self.position = {name: index for index, name in enumerate(spec.columns)}
        self._key_positions = [self.position[key] for key in spec.keys]
        self._lock = lock
        self._rows: dict[str, Row] = {}
        self._sorted_keys: list[tuple] = []
        self._sorted_ids: list[str] = []
        self._id_by_key: dict[tuple, str] = {}
        self._snapshot: list[Row] | None = None
        self._next_rid = 1
        self.deletions: list[tuple[str, datetime]] = []
        self.version = 0

    def key_of(self, row: Row) -> tuple:
        """The row's key values, case-folded like SQL Server's default collation compares them."""
        return tuple(_fold(row[position]) for position in self._key_positions)

    def load(self, rows: Iterable[Row]) -> None:
        """Bulk-load generated rows (their `_rid`s assigned here) and sort once."""
        with self._lock:
            for row in rows:
                row = row[:1] + (self._next_rid,) + row[2:]
                self._next_rid += 1
                self._rows[row[0]] = row
            pairs = sorted((self.key_of(row), row[0]) for row in self._rows.values())
            self._sorted_keys = [key for key, _ in pairs]
            self._sorted_ids = [row_id for _, row_id in pairs]
            self._id_by_key = dict(pairs)
            self._changed()

    def snapshot(self) -> list[Row]:
        """All rows in key order; the list is shared until the next mutation, so never modify it."""
        snapshot = self._snapshot
        if snapshot is None:
            with self._lock:
                snapshot = self._snapshot = [self._rows[row_id] for row_id in self._sorted_ids]
        return snapshot

    def get(self, row_id: str) -> Row | None:
        return self._rows.get(row_id.lower())

    def find(self, key: tuple) -> Row | None:
        """The row whose key fields equal `key` (compared case-insensitively)."""
        row_id = self._id_by_key.get(tuple(_fold(value) for value in key))
        return None if row_id is None else self._rows[row_id]

    def new_rid(self) -> int:
        with self._lock:
            self._next_rid += 1
            return self._next_rid - 1

    def put(self, row: Row) -> Row:
        """Insert or replace `row` (matched by `id`); its key must not belong to another record."""
        with self._lock:
            key = self.key_of(row)
            owner = self._id_by_key.get(key)
            if owner is not None and owner != row[0]:
                raise KeyError(f"{self.spec.name}: a record with key {dict(zip(self.spec.keys, key))} exists")
            old = self._rows.get(row[0])
            if old is not None:
                self._unindex(old)
            self._rows[row[0]] = row
            position = bisect.bisect_left(self._sorted_keys, key)
            self._sorted_keys.insert(position, key)
            self._sorted_ids.insert(position, row[0])
            self._id_by_key[key] = row[0]
            self._changed()
            return row

    def delete(self, row_id: str, moment: datetime) -> Row | None:
        """Remove a record and log its deletion at `moment`; None when absent."""
        with self._lock:
            row = self._rows.pop(row_id.lower(), None)
            if row is not None:
                self._unindex(row)
                self.deletions.append((row[0], moment))
                self._changed()
            return row

    def __len__(self) -> int:
        return len(self._rows)

    def _unindex(self, row: Row) -> None:
        key = self.key_of(row)
        position = bisect.bisect_left(self._sorted_keys, key)
        del self._sorted_keys[position]
        del self._sorted_ids[position]
        del self._id_by_key[key]

    def _changed(self) -> None:
        self._snapshot = None
        self.version += 1


def _fold(value):
    return value.casefold() if isinstance(value, str) else value


class Store:
    """All tenants' tables; a table is generated on first use by `build(tenant, entity) -> rows`."""

    def __init__(self, tenants: Iterable[str], build: Callable[[str, str], Iterable[Row]]) -> None:
        self.tenants = tuple(tenants)
        self.clock = SandboxClock()
        self.lock = threading.RLock()
        self._build = build
        self._tables: dict[tuple[str, str], Table] = {}

    def table(self, tenant: str, entity: str) -> Table:
        """The table of `entity` in `tenant` (exact configured spellings), generated when first asked for."""
        table = self._tables.get((tenant, entity))
        if table is None:
            with self.lock:
                table = self._tables.get((tenant, entity))
                if table is None:
                    table = Table(tenant, ENTITIES[entity], self.lock)
                    table.load(self._build(tenant, entity))
                    self._tables[(tenant, entity)] = table
        return table
