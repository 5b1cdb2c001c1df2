"""One Acumatica table as the slice reader sees it: a time-window page fetcher, record ids, warehouse rows.

Pages travel as `RecordBatch`es (records held by field) from the decoder to the warehouse: a batch's warehouse
rows are its columns renamed and extended, never a dict per record."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from airflow_provider_acumatica.client.queries import ODataFilter, and_, ge, lt
from airflow_provider_acumatica.client.records import RecordBatch
from airflow_provider_acumatica.hooks.acumatica import AcumaticaHook

ENTITY = "entity"
SOURCES = (ENTITY, "dac", "gi")
#: Fields of a REST record that describe the answer, not the record: never stored as columns.
_ANSWER_FIELDS = ("id", "rowNumber", "_links")


class TableSource:
    """Reads one table of one tenant through the hook, by REST entity or OData (DAC or generic inquiry)."""

    def __init__(
        self,
        hook: AcumaticaHook,
        *,
        table: str,
        kind: str,
        timestamp_field: str | None,
        key_fields: list[str],
        expand: list[str],
        describe: str,
    ) -> None:
        self._hook = hook
        self._table = table
        self._kind = kind
        self._timestamp_field = timestamp_field
        self._expand = expand or None
        self.key_fields = key_fields
        self.describe = describe
        self.declared_types: dict[str, str] | None = None
        self.tracks_deletions = False
        """Whether Acumatica itself reports this table's deletions (a tracked DAC's px.GetDeletedRecords())."""
        if kind != ENTITY:
            self._adopt_metadata()

    def _adopt_metadata(self) -> None:
        """Column types, and the key when none is configured, from the OData `$metadata`."""
        entity_set = self._hook.get_odata_metadata(self._kind).get(self._table)
        if entity_set is None:
            raise ValueError(
                f"{self.describe}: the {self._kind.upper()} OData interface has no {self._table!r} "
                "(check the name in $metadata, and that the API user may read it)."
            )
        self.declared_types = dict(entity_set.properties)
        self.key_fields = self.key_fields or list(entity_set.key)
        self.tracks_deletions = entity_set.tracks_deletions

    def fetch(self, start: datetime | None, end: datetime | None, *, top: int, skip: int) -> RecordBatch:
        """One page of the records whose timestamp lies in [start, end)."""
        return self._page(start, end, select=None, expand=self._expand, top=top, skip=skip)

    def fetch_timestamps(
        self, start: datetime | None, end: datetime | None, *, top: int, skip: int
    ) -> list[Any]:
        """One page of the timestamps alone (a cheap `$select`), in the order `fetch` pages the records."""
        field = self._timestamp_field
        if field is None:
            return [None] * len(self.fetch(start, end, top=top, skip=skip))
        window = self._window_filter(start, end)
        if self._kind == ENTITY:
            return self._hook.get_entity_values(self._table, field, filter=window, top=top, skip=skip)
        rows = self._hook.get_odata_page(
            self._table, kind=self._kind, filter=window, select=[field], top=top, skip=skip
        )
        return [row.get(field) for row in rows]

    def fetch_keys(self, start: datetime | None, end: datetime | None, *, top: int, skip: int) -> RecordBatch:
        """Like `fetch`, but only the key fields and the timestamp: for listing every key cheaply."""
        select = [*self.key_fields, *([self._timestamp_field] if self._timestamp_field else [])] or None
        return self._page(start, end, select=select, expand=None, top=top, skip=skip)

    def _page(
        self, start: datetime | None, end: datetime | None, *, select: list[str] | None, expand: list[str] | None,
        top: int, skip: int,
    ) -> RecordBatch:
        window = self._window_filter(start, end)
        if self._kind == ENTITY:
            return self._hook.get_entity_batch(self._table, filter=window, select=select, expand=expand, top=top,
                                               skip=skip)
        rows = self._hook.get_odata_page(self._table, kind=self._kind, filter=window, select=select, top=top, skip=skip)
        return RecordBatch.of_records(rows)

    def keys_of(self, batch: RecordBatch) -> list[Any]:
        """The warehouse key of each record: its key field values, or the REST `id`."""
        if self.key_fields:
            return list(zip(*map(batch.column, self.key_fields)))
        if "id" in batch.fields or not batch:
            return list(batch.column("id"))
        raise ValueError(
            f"{self.describe}: records have no `id` and no key fields are configured; "
            "set key_fields for this table (e.g. the DAC's keys from its $metadata)."
        )

    def record_ids(self, batch: RecordBatch) -> list[str]:
        """`keys_of` as one string each, to tell records apart while reading."""
        keys = self.keys_of(batch)
        if self.key_fields:
            return [json.dumps(key, default=str) for key in keys]
        return list(map(str, keys))

    def mark_deletions(self, load: Any, *, since: datetime | None) -> None:
        """Mark the rows Acumatica reports deleted since `since` (a tracked DAC's px.GetDeletedRecords())."""
        by_date: dict[datetime, list[str]] = {}
        for deleted in self._hook.iter_deleted_records(self._table, since=since):
            by_date.setdefault(deleted["DeleteDate"], []).append(deleted["RefNoteID"])
        for deleted_at, note_ids in by_date.items():
            load.mark_deleted(note_ids, deleted_at, by_id=True)

    def _window_filter(self, start: datetime | None, end: datetime | None) -> ODataFilter | None:
        field = self._timestamp_field
        if field is None or (start is None and end is None):
            return None
        return and_(ge(field, start) if start else None, lt(field, end) if end else None)

    def timestamps(self, batch: RecordBatch) -> Sequence[datetime | None]:
        """Each record's timestamp (None without a timestamp field)."""
        return batch.column(self._timestamp_field) if self._timestamp_field else [None] * len(batch)

    def to_columns(self, batch: RecordBatch) -> dict[str, Sequence[Any]]:
        """The batch's warehouse rows, by column: its fields (not those describing the answer) plus `_acumatica_id`
        (the REST `id`, else the OData `NoteID`) and `_last_modified`. The batch's lists are shared, not copied."""
        columns = {name: values for name, values in batch.fields.items() if name not in _ANSWER_FIELDS}
        ids = batch.column("id")
        if "NoteID" in batch.fields:
            ids = [rest_id or note_id for rest_id, note_id in zip(ids, batch.fields["NoteID"])]
        columns["_acumatica_id"] = ids
        columns["_last_modified"] = self.timestamps(batch)
        return columns
