"""The sync-state table: how far each tenant's table has been loaded, written in the load's own transaction.

One row per (tenant, table). The watermark never moves backwards: a write keeps the later of the
stored and the new watermark, under a row lock (``SELECT ... FOR UPDATE`` on PostgreSQL) so two
concurrent commits cannot regress it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import BigInteger, Column, Connection, MetaData, String, Table, insert, select, update

from airflow_provider_acumatica.warehouse.columns import UtcDateTime, to_timestamp

STATE_TABLE = "acumatica_sync_state"


@dataclass(frozen=True)
class SyncState:
    """Progress of one tenant's table: the watermark (highest loaded timestamp) and the last run's window."""

    tenant: str
    table: str
    watermark: datetime | None = None
    window_start: datetime | None = None
    window_end: datetime | None = None
    rows: int = 0
    mode: str | None = None
    finished_at: datetime | None = None

    def __post_init__(self) -> None:
        for name in ("watermark", "window_start", "window_end", "finished_at"):
            value = getattr(self, name)
            if value is not None:
                try:
                    object.__setattr__(self, name, to_timestamp(value))
                except (TypeError, ValueError) as error:
                    raise ValueError(
                        f"SyncState {name} of tenant {self.tenant!r}, table {self.table!r} is {value!r}: {error}"
                    ) from None


def state_table(metadata: MetaData, schema: str | None) -> Table:
    """The state table in the target schema."""
    return Table(
        STATE_TABLE,
        metadata,
        Column("tenant", String(255), primary_key=True),
        Column("table_name", String(255), primary_key=True),
        Column("watermark", UtcDateTime()),
        Column("window_start", UtcDateTime()),
        Column("window_end", UtcDateTime()),
        Column("rows", BigInteger, nullable=False, default=0),
        Column("mode", String(32)),
        Column("finished_at", UtcDateTime()),
        schema=schema,
    )


def _row_filter(table: Table, tenant: str, table_name: str):
    return (table.c.tenant == tenant) & (table.c.table_name == table_name)


def read_state(connection: Connection, table: Table, tenant: str, table_name: str) -> SyncState | None:
    """The stored state of a tenant's table, or None before its first committed load."""
    row = connection.execute(select(table).where(_row_filter(table, tenant, table_name))).mappings().first()
    return _state_of(row) if row is not None else None


def _state_of(row) -> SyncState:
    return SyncState(
        tenant=row["tenant"],
        table=row["table_name"],
        watermark=row["watermark"],
        window_start=row["window_start"],
        window_end=row["window_end"],
        rows=row["rows"],
        mode=row["mode"],
        finished_at=row["finished_at"],
    )


def write_state(connection: Connection, table: Table, new: SyncState) -> SyncState:
    """Store a state in the caller's transaction, keeping the later watermark; returns what was stored."""
    locked = select(table).where(_row_filter(table, new.tenant, new.table)).with_for_update()
    current = connection.execute(locked).mappings().first()
    watermark = new.watermark
    if current is not None and current["watermark"] is not None:
        watermark = current["watermark"] if watermark is None else max(watermark, current["watermark"])
    stored = dataclasses.replace(new, watermark=watermark)
    values = {
        "watermark": stored.watermark,
        "window_start": stored.window_start,
        "window_end": stored.window_end,
        "rows": stored.rows,
        "mode": stored.mode,
        "finished_at": stored.finished_at,
    }
    if current is None:
        connection.execute(insert(table).values(tenant=new.tenant, table_name=new.table, **values))
    else:
        connection.execute(update(table).where(_row_filter(table, new.tenant, new.table)).values(**values))
    return stored
