"""One Acumatica table as the slice reader sees it: a time-window page fetcher, record ids, warehouse rows.

Pages travel as `RecordBatch`es (records held by field) from the decoder to the warehouse: a batch's warehouse
rows are its columns renamed and extended, never a dict per record."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from airflow_provider_acumatica.client.errors import AcumaticaUnknownTableError
from airflow_provider_acumatica.client.limits import ENTITY
from airflow_provider_acumatica.client.queries import ODataFilter, and_, ge, lt
from airflow_provider_acumatica.client.records import RecordBatch
from airflow_provider_acumatica.client.schema import DATE, DURATION, EDM_TYPES, SCHEMAS, local_dates, parse_duration
from airflow_provider_acumatica.extract.memory import SourceMemory
from airflow_provider_acumatica.hooks.acumatica import AcumaticaHook

#: Fields of a REST record that describe the answer, not the record: never stored as columns.
_ANSWER_FIELDS = ("id", "rowNumber", "_links")
MINUTES_SUFFIX = "Minutes"
"""A duration field `TimeSpent` also lands as the integer field `TimeSpentMinutes` (column `time_spent_minutes`)."""

log = logging.getLogger(__name__)


class TableSource:
    """Reads one table of one tenant through the hook, by REST entity or OData (DAC or generic inquiry); with a
    `memory`, what earlier runs learnt of the instance spares requests (see extract.memory)."""

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
        memory: SourceMemory | None = None,
    ) -> None:
        self._hook = hook
        self._table = table
        self._kind = kind
        self._memory = memory
        self._interface = f"{hook.settings.endpoint_name}/{hook.settings.endpoint_version}" if kind == ENTITY else kind
        self._timestamp_field = timestamp_field
        self._expand = expand or None
        self.key_fields = key_fields
        self.describe = describe
        self.declared_types: dict[str, str] | None = None
        """Field -> OData type of each column, when the source declares them (else inferred from values)."""
        self.field_types: dict[str, str] = {}
        """Field -> field type (client.schema) of a REST entity's fields, from the endpoint's swagger.json."""
        self.tracks_deletions = False
        """Whether Acumatica itself reports this table's deletions (a tracked DAC's px.GetDeletedRecords())."""
        self.date_fields: list[str] = []
        self.duration_fields: list[str] = []
        self._warned_dates = False
        if kind != ENTITY:
            self._adopt_metadata()
        else:
            self._adopt_swagger()

    def _adopt_swagger(self) -> None:
        """Column types from the endpoint's swagger.json; inferred from values (logged) when it lacks the entity."""
        client = self._hook.get_conn()
        schema = self._memory.endpoint_schema(client, self._table) if self._memory else SCHEMAS.get(client)
        fields = schema.fields_of(self._table) if schema else None
        if fields is None:
            if schema is not None:
                log.warning(
                    "%s: the endpoint's swagger.json does not declare %r: column types are inferred from values",
                    self.describe,
                    self._table,
                )
            return
        self.field_types = {field: kind for field, kind in fields.items() if field != self._timestamp_field}
        self.declared_types = {field: EDM_TYPES[kind] for field, kind in self.field_types.items()}
        self.date_fields = [field for field, kind in self.field_types.items() if kind == DATE]
        self.duration_fields = [field for field, kind in self.field_types.items() if kind == DURATION]
        self.declared_types.update({field + MINUTES_SUFFIX: "Edm.Int64" for field in self.duration_fields})

    def _adopt_metadata(self) -> None:
        """Column types, and the key when none is configured, from the OData `$metadata`."""
        entity_set = self._hook.get_odata_metadata(self._kind).get(self._table)
        if entity_set is None:
            raise AcumaticaUnknownTableError(
                f"the {self._kind.upper()} OData interface has no {self._table!r}: check the name in its $metadata "
                "(case-sensitive) and that the API user may read it, or disable the table (`enabled: false`)"
            )
        self.declared_types = {
            field: edm for field, edm in entity_set.properties.items() if field != self._timestamp_field
        }  # the timestamp is `_last_modified`
        self.key_fields = self.key_fields or list(entity_set.key)
        self.tracks_deletions = entity_set.tracks_deletions

    @property
    def largest_answer(self) -> int:
        """The most records the instance answered at once for this table in earlier runs (0: none known)."""
        return self._memory.largest_answer(self._interface, self._table) if self._memory else 0

    def remember_largest_answer(self, answered: int) -> None:
        """Note, for later runs, that the instance answered `answered` records of this table at once (written by the
        memory's `save`)."""
        if self._memory:
            self._memory.remember_largest_answer(self._interface, self._table, answered)

    def fetch(self, start: datetime | None, end: datetime | None, *, top: int, skip: int) -> RecordBatch:
        """One page of the records whose timestamp lies in [start, end)."""
        return self._page(start, end, select=None, expand=self._expand, top=top, skip=skip)

    def fetch_timestamps(self, start: datetime | None, end: datetime | None, *, top: int, skip: int) -> list[Any]:
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
        self,
        start: datetime | None,
        end: datetime | None,
        *,
        select: list[str] | None,
        expand: list[str] | None,
        top: int,
        skip: int,
    ) -> RecordBatch:
        window = self._window_filter(start, end)
        if self._kind == ENTITY:
            return self._hook.get_entity_batch(
                self._table, filter=window, select=select, expand=expand, top=top, skip=skip
            )
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
        """The batch's warehouse rows, by column: its fields (not those describing the answer, nor the timestamp,
        which is `_last_modified`) plus `_acumatica_id` (the REST `id`, else the OData `NoteID`); date fields as
        the calendar dates Acumatica shows, each duration also in minutes. The batch's lists are shared, not
        copied."""
        skipped = (*_ANSWER_FIELDS, self._timestamp_field)
        columns = {name: values for name, values in batch.fields.items() if name not in skipped}
        for field in self.date_fields:
            if field in columns:
                columns[field] = self._converted(batch, field, self._dates_of)
        for field in self.duration_fields:
            if field in columns:
                columns[field + MINUTES_SUFFIX] = self._converted(batch, field, minutes_of)
        ids = batch.column("id")
        if "NoteID" in batch.fields:
            ids = [rest_id or note_id for rest_id, note_id in zip(ids, batch.fields["NoteID"])]
        columns["_acumatica_id"] = ids
        columns["_last_modified"] = self.timestamps(batch)
        return columns

    def local_date(self, instant: datetime) -> Any:
        """The calendar date Acumatica shows for a date field's stored instant (to migrate stored values)."""
        return self._dates_of([instant])[0]

    def _dates_of(self, values: Sequence[Any]) -> list[Any]:
        zone = self._hook.settings.zone
        dates, odd = local_dates(values, zone)
        if odd is not None and not self._warned_dates:
            self._warned_dates = True
            log.warning(
                "%s: a date arrives as %r, not at midnight in the profile time zone %s: each date is taken "
                "as that of the nearest midnight; check that the connection's profile_timezone is the "
                "Acumatica user's",
                self.describe,
                odd,
                zone.key,
            )
        return dates

    def _converted(self, batch: RecordBatch, field: str, convert) -> list[Any]:
        """`convert` of a field's values; a value it refuses fails the load, naming the record and the field."""
        values = batch.fields[field]
        try:
            return convert(values)
        except ValueError as error:
            row = next(i for i, value in enumerate(values) if _refused(convert, value))
            raise ValueError(
                f"{self.describe}, record {self.record_ids(batch.take([row]))[0]}, field {field!r}: {error}. The "
                f"field is typed {self.field_types[field]} by the endpoint's swagger.json and the naming rules of "
                "airflow_provider_acumatica.client.schema: fix the value in Acumatica, or report the field so "
                "that its rule changes"
            ) from None


def minutes_of(values: Sequence[Any]) -> list[int | None]:
    """Minutes of each time span, each distinct value parsed once."""
    minutes: dict[Any, int | None] = {}
    return [
        minutes[value] if value in minutes else minutes.setdefault(value, parse_duration(value)) for value in values
    ]


def _refused(convert, value: Any) -> bool:
    try:
        convert([value])
    except ValueError:
        return True
    return False
