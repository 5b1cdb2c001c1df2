"""Notes that syncs keep about their source between runs, in the warehouse beside the sync state.

A note is a short text under a source (an Acumatica instance and tenant, say) and a name, with the instant it
stands for. The warehouse only keeps them: what they mean is their writer's (extract.memory). Nothing secret is
written here. The table, `acumatica_source_notes` (source, name, text, noted_at), is created by the first note
written, as the state table is by the first commit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Column, Connection, MetaData, String, Table, Text, insert, inspect, select, update

from airflow_provider_acumatica.warehouse.columns import UtcDateTime, to_timestamp

if TYPE_CHECKING:
    from airflow_provider_acumatica.warehouse.loader import Warehouse

NOTES_TABLE = "acumatica_source_notes"


@dataclass(frozen=True)
class Note:
    text: str
    noted_at: datetime


def notes_table(metadata: MetaData, schema: str | None) -> Table:
    """The notes table in the target schema."""
    return Table(
        NOTES_TABLE,
        metadata,
        Column("source", String(512), primary_key=True),
        Column("name", String(255), primary_key=True),
        Column("text", Text, nullable=False),
        Column("noted_at", UtcDateTime(), nullable=False),
        schema=schema,
    )


class SourceNotes:
    """The notes of one source in a warehouse."""

    def __init__(self, warehouse: Warehouse, source: str) -> None:
        self._warehouse = warehouse
        self._source = source
        self._table = notes_table(MetaData(), warehouse.schema)

    def read(self) -> dict[str, Note]:
        """Every note of the source, by name (none before the first note of any source)."""
        with self._warehouse.engine.connect() as connection:
            if not inspect(connection).has_table(NOTES_TABLE, schema=self._warehouse.schema):
                return {}
            rows = connection.execute(select(self._table).where(self._table.c.source == self._source)).mappings()
            return {row["name"]: Note(row["text"], to_timestamp(row["noted_at"])) for row in rows}

    def write(self, notes: Mapping[str, Note]) -> None:
        """Keep `notes` by name, each replacing the one before, in one transaction."""
        warehouse = self._warehouse
        with warehouse.engine.connect() as connection, warehouse.dialect.write_transaction(connection):
            warehouse.dialect.lock(connection, f"acumatica:{warehouse.schema}.{NOTES_TABLE}")
            self._create_if_missing(connection)
            for name, note in notes.items():
                mine = (self._table.c.source == self._source) & (self._table.c.name == name)
                values = {"text": note.text, "noted_at": note.noted_at}
                if not connection.execute(update(self._table).where(mine).values(**values)).rowcount:
                    connection.execute(insert(self._table).values(source=self._source, name=name, **values))

    def _create_if_missing(self, connection: Connection) -> None:
        if not inspect(connection).has_table(NOTES_TABLE, schema=self._warehouse.schema):
            self._table.create(connection, checkfirst=True)
