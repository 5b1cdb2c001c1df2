"""The read plan's cost to the server: against the sandbox charging server work per record (a little, to keep
tests fast), what the sandbox counts — records rendered, requests, sign-ins — not how long it took."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from test_slicing import time_entry_reader

from airflow_provider_acumatica.client.records import RecordBatch
from airflow_provider_acumatica.extract.slices import TimeSlice, from_ms, to_ms
from airflow_provider_acumatica.extract.slicing import SliceReader
from airflow_provider_acumatica.hooks.acumatica import AcumaticaHook
from airflow_provider_acumatica.operators.acumatica_to_sql import AcumaticaToSqlOperator

SERVER_COST = {"ms_per_record": 0.01, "max_concurrent": 3, "tenants": ("Company",)}


def truth_ids(sandbox) -> list[str]:
    return sorted(record["id"] for record in sandbox.control.truth("Company", "TimeEntry")["records"])


def read_ids(reader: SliceReader, window: TimeSlice) -> list[str]:
    return [record_id for batch in reader.read(window) for record_id in batch.column("id")]


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


def test_a_window_that_fits_one_page_costs_one_request_and_one_sign_in(new_sandbox, acumatica_connection):
    sandbox = new_sandbox(rows=3000, seed=5, **SERVER_COST)
    now = sandbox.control.now()
    changed = set(sandbox.control.update("Company", "TimeEntry", random=300))
    with AcumaticaHook(acumatica_connection(sandbox)) as hook:
        sandbox.control.reset_counters()
        read = read_ids(time_entry_reader(hook, 500), TimeSlice(now - timedelta(seconds=1), None))
    counters = sandbox.control.counters()
    assert set(read) == changed and len(read) == len(changed)
    # sign-in, the endpoint's swagger.json (column types, once a run), the page, one check that nothing follows a
    # short answer of 300 records, sign-out
    assert (counters["logins"], counters["requests"], counters["records_rendered"]) == (1, 5, 300)


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


def test_a_quiet_incremental_run_costs_three_requests(new_sandbox, acumatica_connection, tmp_path):
    """Sign-in, one page of the window (the few records the time offset reads again), sign-out. (The endpoint's
    swagger.json is read once per process: here by the first run; an Airflow task, a process of its own, reads it
    too, a fourth request.)"""
    sandbox = new_sandbox(rows=600, seed=13, **SERVER_COST)
    conn_id = acumatica_connection(sandbox)
    operator = AcumaticaToSqlOperator(
        task_id="quiet", table="TimeEntry", acumatica_conn_id=conn_id, sql_url=f"sqlite:///{tmp_path / 'warehouse.db'}"
    )
    first = operator.execute(context={})
    sandbox.control.reset_counters()
    quiet = operator.execute(context={})
    counters = sandbox.control.counters()
    assert first["rows"] == 600 and quiet["inserted"] == 0 and quiet["rows"] < 100
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
