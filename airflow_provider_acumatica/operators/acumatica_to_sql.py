"""AcumaticaToSqlOperator: copy one Acumatica table of one tenant into a SQL warehouse, exactly once."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from airflow.sdk import Asset, BaseOperator

from airflow_provider_acumatica.client.errors import AcumaticaError
from airflow_provider_acumatica.client.limits import (
    CONCURRENT_REQUESTS,
    DEFAULT_BATCH_SIZE,
    ENTITY,
    MAX_PAGE_SIZE,
    PAGE_SIZES,
    SOURCES,
)
from airflow_provider_acumatica.client.schema import parse_duration
from airflow_provider_acumatica.extract.memory import SourceMemory
from airflow_provider_acumatica.extract.plan import (
    DEFAULT_TIME_OFFSET,
    FULL,
    INCREMENTAL,
    MODES,
    TIME_OFFSETS,
    RunPlan,
    plan_run,
)
from airflow_provider_acumatica.extract.slices import ONE_MS, TimeSlice
from airflow_provider_acumatica.extract.slicing import PageFetcher, SliceReader
from airflow_provider_acumatica.extract.sources import MINUTES_SUFFIX, TableSource
from airflow_provider_acumatica.hooks.acumatica import AcumaticaHook
from airflow_provider_acumatica.operators.failures import permanent_failure
from airflow_provider_acumatica.operators.lineage import SyncLineage, operator_lineage, sync_lineage
from airflow_provider_acumatica.operators.warehouse import check_warehouse_arguments, warehouse_target
from airflow_provider_acumatica.utils.instants import floor_ms, parse_instant
from airflow_provider_acumatica.utils.memory import older_objects_frozen, return_large_blocks_to_the_os
from airflow_provider_acumatica.warehouse.loader import LoadResult, Warehouse
from airflow_provider_acumatica.warehouse.migration import MigrationPlan, migrate_table
from airflow_provider_acumatica.warehouse.schema import table_name
from airflow_provider_acumatica.warehouse.state import SyncState
from airflow_provider_acumatica.warehouse.writer import load_in_writer_process

if TYPE_CHECKING:
    from airflow.sdk import Context


class AcumaticaToSqlOperator(BaseOperator):
    """Copy one Acumatica table (REST entity, DAC or generic inquiry) of one tenant into a warehouse table.

    ``incremental`` reads ``[watermark - time_offset, window_end or now)`` and moves the watermark to the
    newest timestamp it loaded; an explicit ``window_start`` reloads exactly that range and leaves the
    watermark alone (backfills); ``full`` makes the tenant's rows exactly the source's. Each run lands in
    one transaction together with its sync state, so a failed or killed run changes nothing.

    :param table: REST entity (``TimeEntry``), DAC (``PMTask``) or generic inquiry name. (templated)
    :param acumatica_conn_id: the ``acumatica`` connection.
    :param sql_conn_id: warehouse connection (any SQLAlchemy can open); or give ``sql_url``.
    :param sql_url: warehouse SQLAlchemy URL, instead of ``sql_conn_id``.
    :param source: ``entity`` (contract-based REST), ``dac`` or ``gi`` (OData).
    :param mode: ``incremental`` or ``full``. (templated)
    :param timestamp_field: the modification timestamp; None for tables without one (full mode only).
    :param key_fields: natural key; default the REST ``id`` (or the DAC's keys from ``$metadata``).
    :param time_offset: seconds re-read before the watermark (``TIME_OFFSETS``), for late commits and
        clock skew.
    :param batch_size: records per request and per warehouse batch (``PAGE_SIZES``).
    :param window_start: reload from this instant (ISO 8601); leaves the watermark alone. (templated)
    :param window_end: read up to this instant; default now. (templated)
    :param track_deletes: mark rows deleted in Acumatica with ``_deleted_at``: from
        ``px.GetDeletedRecords()`` for a tracked DAC, else by comparing every key (give such a table its own,
        rarer schedule: it lists all keys of the table).
    :param expand: detail collections to fetch with each record (REST), stored as JSON columns.
    :param target_schema: warehouse schema; default the connection's.
    :param target_table: warehouse table; default snake_case of ``table``. (templated)
    :param tenant: value of the ``_tenant`` column; default the connection's tenant.
    :param max_concurrent_requests: at most this many requests in flight (and sessions); default the connection's.
        The bundle gives each task as many pool slots, so that a tenant's tasks together stay within its licence.
    """

    template_fields: Sequence[str] = ("table", "mode", "window_start", "window_end", "target_table")
    ui_color = "#1e6fb8"

    def __init__(
        self,
        *,
        table: str,
        acumatica_conn_id: str = AcumaticaHook.default_conn_name,
        sql_conn_id: str | None = None,
        sql_url: str | None = None,
        source: str = ENTITY,
        mode: str = INCREMENTAL,
        timestamp_field: str | None = "LastModifiedDateTime",
        key_fields: Sequence[str] | None = None,
        time_offset: int = DEFAULT_TIME_OFFSET,
        batch_size: int = DEFAULT_BATCH_SIZE,
        window_start: str | datetime | None = None,
        window_end: str | datetime | None = None,
        track_deletes: bool = False,
        expand: Sequence[str] | None = None,
        target_schema: str | None = None,
        target_table: str | None = None,
        tenant: str | None = None,
        max_concurrent_requests: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.table = table
        self.acumatica_conn_id = acumatica_conn_id
        self.sql_conn_id = sql_conn_id
        self.sql_url = sql_url
        self.source = source
        self.mode = mode
        self.timestamp_field = timestamp_field or None
        self.key_fields = list(key_fields or [])
        self.time_offset = time_offset
        self.batch_size = batch_size
        self.window_start = window_start
        self.window_end = window_end
        self.track_deletes = track_deletes
        self.expand = list(expand or [])
        self.target_schema = target_schema
        self.target_table = target_table
        self.tenant = tenant
        self.max_concurrent_requests = max_concurrent_requests
        self._hook: AcumaticaHook | None = None
        self._connection_tenant: str | None = None  # known once the connection is read; names the failures
        self._endpoint: str | None = None
        self._lineage: SyncLineage | None = None
        self._check_arguments()

    def _check_arguments(self) -> None:
        """Refuse bad arguments before any request, naming the argument and what is allowed."""
        where = f"{type(self).__name__} {self.task_id!r}"
        if not self.table or not isinstance(self.table, str):
            raise ValueError(f"{where}: `table` must name an Acumatica entity, DAC or generic inquiry.")
        check_warehouse_arguments(where, self.sql_conn_id, self.sql_url)
        if self.source not in SOURCES:
            raise ValueError(f"{where}: `source` is {self.source!r}; allowed: {', '.join(SOURCES)}.")
        if not _is_template(self.mode) and self.mode not in MODES:
            raise ValueError(f"{where}: `mode` is {self.mode!r}; allowed: {', '.join(MODES)}.")
        if self.time_offset not in TIME_OFFSETS:
            raise ValueError(f"{where}: `time_offset` is {self.time_offset!r}; give whole seconds {TIME_OFFSETS}.")
        if self.batch_size not in PAGE_SIZES:
            raise ValueError(f"{where}: `batch_size` is {self.batch_size!r}; give a whole number {PAGE_SIZES}.")
        if self.max_concurrent_requests is not None and self.max_concurrent_requests not in CONCURRENT_REQUESTS:
            raise ValueError(
                f"{where}: `max_concurrent_requests` is {self.max_concurrent_requests!r}; give a whole number {CONCURRENT_REQUESTS}."
            )
        if self.mode == INCREMENTAL and self.timestamp_field is None:
            raise ValueError(
                f"{where}: incremental mode needs `timestamp_field`; use mode='full' for tables without one."
            )
        if self.expand and self.source != ENTITY:
            raise ValueError(f"{where}: `expand` works only with source='entity' (OData has no $expand here).")
        for name in ("key_fields", "expand"):
            if any(not isinstance(item, str) or not item for item in getattr(self, name)):
                raise ValueError(f"{where}: `{name}` must be a list of field names.")

    def execute(self, context: Context) -> dict[str, Any]:
        return_large_blocks_to_the_os()
        with older_objects_frozen(), self._failing_fast():
            return self._sync(context)

    @contextmanager
    def _failing_fast(self) -> Iterator[None]:
        """An Acumatica error that a retry would meet again fails the task without retries, saying what to fix."""
        try:
            yield
        except AcumaticaError as error:
            failure = permanent_failure(
                error,
                tenant=self.tenant or self._connection_tenant or self.acumatica_conn_id,
                table=self.table,
                timestamp_field=self.timestamp_field,
                endpoint=self._endpoint or "see the connection",
            )
            if failure is None:
                raise
            raise failure from error

    def _sync(self, context: Context) -> dict[str, Any]:
        if self.mode not in MODES:
            raise ValueError(f"{self.task_id}: `mode` rendered as {self.mode!r}; allowed: {', '.join(MODES)}.")
        self._hook = hook = AcumaticaHook(self.acumatica_conn_id, max_concurrent_requests=self.max_concurrent_requests)
        self._connection_tenant = hook.tenant
        self._endpoint = f"{hook.settings.endpoint_name}/{hook.settings.endpoint_version}"
        try:
            tenant = self.tenant or hook.tenant
            target = self.target_table or table_name(self.table)
            describe = f"tenant {tenant!r}, table {self.table!r}"
            with Warehouse(warehouse_target(self.sql_conn_id, self.sql_url), schema=self.target_schema) as warehouse:
                state = warehouse.read_state(tenant=tenant, table=target)
                started = datetime.now(timezone.utc)
                plan = plan_run(
                    mode=self.mode,
                    watermark=state.watermark if state else None,
                    time_offset=self.time_offset,
                    window_start=parse_instant(self.window_start, "window_start", describe),
                    window_end=parse_instant(self.window_end, "window_end", describe),
                    now=floor_ms(started),
                    describe=describe,
                )
                memory = SourceMemory(warehouse, hook.settings)
                source = TableSource(
                    hook,
                    table=self.table,
                    kind=self.source,
                    timestamp_field=self.timestamp_field,
                    key_fields=self.key_fields,
                    expand=self.expand,
                    describe=describe,
                    memory=memory,
                )
                migrate_table(warehouse, target, _migration_plan(source, self.timestamp_field))
                result, highest = self._load(warehouse, source, plan, tenant=tenant, target=target, started=started)
                memory.save()
                if self.track_deletes and not source.tracks_deletions:
                    result = self._reconcile_keys(warehouse, source, result, tenant=tenant, target=target)
                self._lineage = self._read_lineage(
                    hook, source, warehouse, tenant=tenant, target=target, rows=result.rows
                )
        finally:
            hook.close(parallel=True)  # not a signal handler: on_kill, which is, closes sequentially
            self._hook = None
        summary = _summary(tenant, self.table, plan, result, highest)
        self.log.info("%s: done: %s", describe, summary)
        self._publish_asset_events(context, summary)
        return summary

    def _load(
        self, warehouse: Warehouse, source: TableSource, plan: RunPlan, *, tenant: str, target: str, started: datetime
    ) -> tuple[LoadResult, datetime | None]:
        """Stream the planned window into the warehouse; commit data and state in one transaction."""
        reader = self._reader(source, source.fetch, self.batch_size)
        progress = _Progress(self.log, source.describe, plan.window)
        mode = "replace" if plan.mode == FULL else "merge"
        with load_in_writer_process(  # SQLite: staging runs on the other core, beside the decoding of pages
            warehouse,
            table=target,
            tenant=tenant,
            key_fields=source.key_fields,
            mode=mode,
            declared_types=source.declared_types,
        ) as load:
            windows = self._with_catch_up(plan.window, started) if plan.mode == FULL else [plan.window]
            for window in windows:
                for batch in reader.read(window):
                    load.write_columns(source.to_columns(batch))
                    progress.add(source.timestamps(batch))
            if self.track_deletes and source.tracks_deletions:
                source.mark_deletions(load, since=plan.window.start)
            state = SyncState(
                tenant=tenant,
                table=target,
                watermark=progress.highest if plan.moves_watermark else None,
                window_start=plan.window.start,
                window_end=plan.window.end,
                rows=progress.rows,
                mode=plan.mode,
            )
            with self._signing_out(unless=self.track_deletes and not source.tracks_deletions):
                result = load.commit(state)
        source.remember_largest_answer(reader.largest_answer)
        return result, progress.highest

    @contextmanager
    def _signing_out(self, *, unless: bool) -> Iterator[None]:
        """Sign out of Acumatica while the warehouse commits, when nothing more is read (`unless` more reads
        follow): the sign-out round trip hides behind the commit instead of following it."""
        if unless:
            yield
            return
        with ThreadPoolExecutor(1, thread_name_prefix="acumatica-sign-out") as pool:
            signed_out = pool.submit(self._hook.close, parallel=True)  # the normal end of work, no signal handler
            yield
            signed_out.result()

    def _reconcile_keys(
        self, warehouse: Warehouse, source: TableSource, result: LoadResult, *, tenant: str, target: str
    ) -> LoadResult:
        """Mark rows whose key Acumatica no longer lists (rows synced during the listing are never marked)."""
        listing_started = datetime.now(timezone.utc)
        reader = self._reader(source, source.fetch_keys, MAX_PAGE_SIZE)
        windows = self._with_catch_up(TimeSlice(None, None), listing_started)
        keys = (key for window in windows for batch in reader.read(window) for key in source.keys_of(batch))
        marked = warehouse.reconcile_keys(
            table=target, tenant=tenant, key_fields=source.key_fields, present_keys=keys, started_at=listing_started
        )
        self.log.info("%s: %d rows no longer in Acumatica marked deleted", source.describe, marked)
        return dataclasses.replace(result, marked_deleted=result.marked_deleted + marked)

    def _reader(self, source: TableSource, fetch: PageFetcher, page_size: int) -> SliceReader:
        return SliceReader(
            fetch,
            timestamps=source.fetch_timestamps,
            keys=source.fetch_keys,
            timestamp_field=self.timestamp_field,
            page_size=page_size,
            workers=self._hook.max_concurrent_requests,
            record_ids=source.record_ids,
            probe_page_size=self._hook.probe_page_size,
            description=source.describe,
            answered=source.largest_answer,
        )

    def _with_catch_up(self, window: TimeSlice, started: datetime) -> list[TimeSlice]:
        """`window`, then once more what changed since `started`: a record changed while we read every
        table moves past the slices already read, so an open-ended read must look again."""
        if not self.timestamp_field:
            return [window]
        return [window, TimeSlice(floor_ms(started) - self.time_offset * 1000 * ONE_MS, None)]

    def _publish_asset_events(self, context: Context, summary: dict[str, Any]) -> None:
        """Tell downstream DAGs what landed: rows and watermark on each outlet asset's event."""
        extra = {key: summary[key] for key in ("tenant", "table", "rows", "watermark", "window_start", "window_end")}
        for outlet in self.outlets or []:
            if isinstance(outlet, Asset):  # an alias names its assets itself (see bundle.assets)
                context["outlet_events"][outlet].extra = extra

    def _read_lineage(
        self, hook: AcumaticaHook, source: TableSource, warehouse: Warehouse, *, tenant: str, target: str, rows: int
    ) -> SyncLineage | None:
        """What `get_openlineage_facets_on_complete` reports; a failure to read it is logged, never fails the run."""
        settings = hook.settings
        endpoint = f"{settings.endpoint_name}.{settings.endpoint_version}" if self.source == ENTITY else self.source
        try:
            return sync_lineage(
                instance_url=settings.instance_url,
                endpoint=endpoint,
                tenant=tenant,
                table=self.table,
                input_fields=source.field_types or source.declared_types,
                engine=warehouse.engine,
                schema=self.target_schema,
                target=target,
                rows=rows,
            )
        except Exception as error:  # noqa: BLE001 - lineage is an extra: the data landed, say so and go on
            self.log.warning("%s: no lineage for this run: %s", source.describe, error)
            return None

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """OpenLineage: the Acumatica table in, the warehouse table out, with their schemas and the rows this run
        wrote (see operators.lineage). Reported when apache-airflow-providers-openlineage is installed."""
        return operator_lineage(self._lineage)

    def on_kill(self) -> None:
        """Sign out now: an Acumatica session left open holds a licence slot for about ten minutes."""
        if self._hook is not None:
            self._hook.close()


class _Progress:
    """Counts rows and the newest timestamp, and logs a line per batch: rows, rows/s, window."""

    def __init__(self, log: logging.Logger, describe: str, window: TimeSlice) -> None:
        self._log = log
        self._describe = describe
        self._window = window
        self._started = time.monotonic()
        self.rows = 0
        self.highest: datetime | None = None

    def add(self, timestamps: Sequence[datetime | None]) -> None:
        """Count a batch by its records' timestamps."""
        self.rows += len(timestamps)
        stamps = [stamp for stamp in timestamps if stamp is not None]
        if stamps:
            newest = max(stamps)
            self.highest = newest if self.highest is None else max(self.highest, newest)
        elapsed = max(time.monotonic() - self._started, 1e-9)
        self._log.info(
            "%s: %d rows so far (%.0f rows/s), window %s", self._describe, self.rows, self.rows / elapsed, self._window
        )


def _summary(tenant: str, table: str, plan: RunPlan, result: LoadResult, highest: datetime | None) -> dict[str, Any]:
    """The run's XCom: counts and instants only, never data."""
    return {
        "tenant": tenant,
        "table": table,
        "mode": plan.mode,
        "rows": result.rows,
        "inserted": result.inserted,
        "updated": result.updated,
        "deleted": result.marked_deleted,
        "window_start": _iso(plan.window.start),
        "window_end": _iso(plan.window.end),
        "watermark": _iso(result.state.watermark),
        "newest_loaded": _iso(highest),
    }


def _migration_plan(source: TableSource, timestamp_field: str | None) -> MigrationPlan:
    """How a table of an earlier layout becomes this source's: date fields stored as date-times become dates (in
    this tenant's profile time zone), durations gain their minutes, the timestamp is kept as `_last_modified` only."""
    return MigrationPlan(
        retype={field: ("Edm.Date", source.local_date) for field in source.date_fields},
        derive={field + MINUTES_SUFFIX: (field, "Edm.Int64", parse_duration) for field in source.duration_fields},
        drop=[timestamp_field] if timestamp_field else [],
    )


def _iso(instant: datetime | None) -> str | None:
    return instant.isoformat() if instant else None


def _is_template(value: Any) -> bool:
    return isinstance(value, str) and "{{" in value
