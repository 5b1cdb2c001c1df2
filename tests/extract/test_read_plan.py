"""The read plan's cost to the server: against the sandbox charging server work per record (a little, to keep
tests fast), what the sandbox counts — records rendered, requests, sign-ins — not how long it took."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from test_slicing import time_entry_reader, time_entry_source

from airflow_provider_acumatica.client.records import RecordBatch
from airflow_provider_acumatica.client.schema import SCHEMAS
from airflow_provider_acumatica.extract.memory import SourceMemory
from airflow_provider_acumatica.extract.slices import TimeSlice, from_ms, to_ms
from airflow_provider_acumatica.extract.slicing import SliceReader
from airflow_provider_acumatica.hooks.acumatica import AcumaticaHook
from airflow_provider_acumatica.operators.acumatica_to_sql import AcumaticaToSqlOperator
from airflow_provider_acumatica.warehouse.loader import Warehouse

SERVER_COST = {"ms_per_record": 0.01, "max_concurrent": 3, "tenants": ("Company",)}
OPERATOR_PROCESS = Path(__file__).parents[1] / "operators" / "operator_process.py"
"""Runs one operator load in a process of its own (for the kill tests of tests/operators)."""


def truth_ids(sandbox) -> list[str]:
    return sorted(record["id"] for record in sandbox.control.truth("Company", "TimeEntry")["records"])


def read_ids(reader: SliceReader, window: TimeSlice) -> list[str]:
    return [record_id for batch in reader.read(window) for record_id in batch.column("id")]


def read_remembering(hook: AcumaticaHook, warehouse: Warehouse, window: TimeSlice) -> list[str]:
    """TimeEntry's records in `window` (pages of 500), read as the operator reads them: with what the warehouse
    remembers of the instance, and remembering what this read learnt of it (extract.memory)."""
    memory = SourceMemory(warehouse, hook.settings)
    source = time_entry_source(hook, memory)
    reader = SliceReader(
        source.fetch,
        timestamps=source.fetch_timestamps,
        keys=source.fetch_keys,
        timestamp_field="LastModifiedDateTime",
        page_size=500,
        workers=3,
        record_ids=source.record_ids,
        answered=source.largest_answer,
    )
    read = read_ids(reader, window)
    source.remember_largest_answer(reader.largest_answer)
    memory.save()
    return read


@pytest.mark.parametrize("rows", [3000, 12000])
def test_an_initial_load_renders_each_record_about_once(new_sandbox, acumatica_connection, rows):
    """The sample costs a few percent of the records, a slice that overflows a page; crowded instants are asked
    for whole. The probe of every timestamp this replaces rendered every record twice."""
    sandbox = new_sandbox(rows=rows, seed=3, **SERVER_COST)
    with AcumaticaHook(acumatica_connection(sandbox)) as hook:
        sandbox.control.reset_counters()
        read = read_ids(time_entry_reader(hook, 500), TimeSlice(None, datetime.now(timezone.utc)))
        counters = sandbox.control.counters()
    assert sorted(read) == truth_ids(sandbox)
    assert counters["records_rendered"] <= 1.2 * rows
    assert (
        counters["peak_concurrency"] <= 3 and counters["throttled_429"] == 0
    )  # how many it reaches is the benchmark's


def test_a_window_that_fits_one_page_costs_one_request_and_one_sign_in(new_sandbox, acumatica_connection, sqlite_url):
    """Read as a run in a process of its own reads it, after an earlier run of the same instance."""
    sandbox = new_sandbox(rows=3000, seed=5, **SERVER_COST)
    conn_id = acumatica_connection(sandbox)
    now = sandbox.control.now()
    earlier = now - timedelta(minutes=1)
    sandbox.control.update("Company", "TimeEntry", random=400, timestamp=earlier.isoformat())
    with Warehouse(sqlite_url) as warehouse:
        with AcumaticaHook(conn_id) as hook:  # the earlier run: 400 records in one answer
            assert len(read_remembering(hook, warehouse, TimeSlice(earlier, now))) == 400
        SCHEMAS.clear()  # what that process read of the endpoint is gone with it
        changed = set(sandbox.control.update("Company", "TimeEntry", random=300))
        with AcumaticaHook(conn_id) as hook:
            sandbox.control.reset_counters()
            read = read_remembering(hook, warehouse, TimeSlice(now, None))
    counters = sandbox.control.counters()
    assert set(read) == changed and len(read) == len(changed)
    # sign-in, the page, sign-out: the warehouse remembers the endpoint's field types (no swagger.json) and that the
    # instance answered 400 records at once (no check that nothing follows this short answer of 300: it is no cap)
    assert (counters["logins"], counters["requests"], counters["records_rendered"]) == (1, 3, 300)


def test_a_window_larger_than_a_page_is_planned_from_its_first_page_and_a_sample(new_sandbox, acumatica_connection):
    sandbox = new_sandbox(rows=6000, seed=9, **SERVER_COST)
    now = sandbox.control.now()
    window = TimeSlice(now - timedelta(days=240), now)
    inside = sorted(
        record["id"]
        for record in sandbox.control.truth("Company", "TimeEntry")["records"]
        if window.holds(datetime.fromisoformat(record["LastModifiedDateTime"].replace("Z", "+00:00")))
    )
    with AcumaticaHook(acumatica_connection(sandbox)) as hook:
        sandbox.control.reset_counters()
        read = read_ids(time_entry_reader(hook, 500), window)
        rendered = sandbox.control.counters()["records_rendered"]
    assert sorted(set(read)) == inside and len(inside) > 1500
    assert rendered <= 1.5 * len(inside)  # the first page, read again by its slices, and the sample


def test_a_quiet_incremental_run_costs_three_requests(new_sandbox, acumatica_connection, sqlite_url):
    """Sign-in, one page of the window (the few records the time offset reads again), sign-out; in a process of its
    own, as Airflow runs a task: the endpoint's field types are the warehouse's note of the first run's swagger.json."""
    sandbox = new_sandbox(rows=600, seed=13, **SERVER_COST)
    conn_id = acumatica_connection(sandbox)
    operator = AcumaticaToSqlOperator(task_id="first", table="TimeEntry", acumatica_conn_id=conn_id, sql_url=sqlite_url)
    first = operator.execute(context={})
    sandbox.control.reset_counters()
    quiet_run = [sys.executable, str(OPERATOR_PROCESS), conn_id, sqlite_url, ""]
    subprocess.run(quiet_run, check=True, capture_output=True)
    counters = sandbox.control.counters()
    assert first["rows"] == 600 and counters["records_rendered"] < 100
    assert (counters["logins"], counters["logouts"], counters["requests"]) == (1, 1, 3)


class _KeyOrderedByTime:
    """An in-memory table whose key order follows its timestamps (sequential keys, records rarely changed, as
    project transactions): a sample block of consecutive keys is then a narrow range of time, not a random
    draw. Not the sandbox, whose keys are random GUIDs; it counts the records each request returns."""

    def __init__(self, stamps: list[int]) -> None:
        self.stamps = sorted(stamps)
        self.rendered = 0

    def _page(self, start, end, top: int, skip: int) -> list[int]:
        part = TimeSlice(start, end)
        page = [ms for ms in self.stamps if part.holds(from_ms(ms))][skip : skip + top]
        self.rendered += len(page)
        return page

    def timestamps(self, start, end, *, top: int, skip: int) -> list[datetime]:
        return [from_ms(ms) for ms in self._page(start, end, top, skip)]

    def fetch(self, start, end, *, top: int, skip: int) -> RecordBatch:
        page = self._page(start, end, top, skip)
        return RecordBatch(
            {"id": [f"{ms}-{n}" for n, ms in enumerate(page)], "LastModifiedDateTime": [from_ms(ms) for ms in page]},
            len(page),
        )


def test_a_key_order_that_follows_time_still_reads_everything_once_at_bounded_cost():
    base = to_ms(datetime(2026, 1, 1, tzinfo=timezone.utc))
    stamps = [base + 1000 * n + (n % 7) for n in range(20_000)] + [base + 4_000_000] * 900
    table = _KeyOrderedByTime(stamps)
    reader = SliceReader(
        table.fetch,
        timestamps=table.timestamps,
        timestamp_field="LastModifiedDateTime",
        page_size=1000,
        workers=3,
        record_ids=lambda batch: [str(to_ms(stamp)) for stamp in batch.column("LastModifiedDateTime")],
    )
    read = [
        to_ms(stamp)
        for batch in reader.read(TimeSlice(None, from_ms(base + 10**9)))
        for stamp in batch.column("LastModifiedDateTime")
    ]
    assert sorted(read) == table.stamps
    assert table.rendered <= 1.5 * len(stamps)
