"""Reading a moving window by slices: every record once, within the licence's concurrency, against the sandbox."""

from __future__ import annotations

import dataclasses
import threading
from datetime import datetime, timedelta, timezone

from airflow_provider_acumatica.client.queries import lt
from airflow_provider_acumatica.client.records import RecordBatch
from airflow_provider_acumatica.client.settings import DEFAULT_PROBE_PAGE_SIZE
from airflow_provider_acumatica.extract import slicing
from airflow_provider_acumatica.extract.slices import TimeSlice, from_ms, to_ms
from airflow_provider_acumatica.extract.slicing import SliceReader
from airflow_provider_acumatica.extract.sources import TableSource
from airflow_provider_acumatica.hooks.acumatica import AcumaticaHook

BASE = to_ms(datetime(2026, 1, 1, tzinfo=timezone.utc))


class _GatedTable:
    """An in-memory table behind fetchers that count the calls under way and hold each until `gate` calls have
    been under way at once (or 5 s pass, and the test fails on `peak`). Not the sandbox: what is
    counted are the requests the reader keeps waiting for the transport's permit, which no server sees."""

    def __init__(self, stamps: list[int], gate: int) -> None:
        self.stamps = sorted(stamps)
        self.gate = gate
        self.peak = 0
        self._under_way = 0
        self._lock = threading.Lock()
        self._open = threading.Event()

    def _held(self) -> None:
        with self._lock:
            self._under_way += 1
            self.peak = max(self.peak, self._under_way)
            if self._under_way >= self.gate:
                self._open.set()
        if not self._open.wait(timeout=5):
            self._open.set()  # the gate was never reached: the test fails on `peak`, once, not per call
        with self._lock:
            self._under_way -= 1

    def _inside(self, start: datetime | None, end: datetime | None) -> list[int]:
        part = TimeSlice(start, end)
        return [ms for ms in self.stamps if part.holds(from_ms(ms))]

    def timestamps(self, start, end, *, top: int, skip: int) -> list[datetime]:
        return [from_ms(ms) for ms in self._inside(start, end)[skip : skip + top]]

    def gated_timestamps(self, start, end, *, top: int, skip: int) -> list[datetime]:
        self._held()
        return self.timestamps(start, end, top=top, skip=skip)

    def fetch(self, start, end, *, top: int, skip: int) -> RecordBatch:
        page = self._inside(start, end)[skip : skip + top]
        return RecordBatch(
            {"id": [str(ms) for ms in page], "LastModifiedDateTime": [from_ms(ms) for ms in page]}, len(page)
        )

    def gated_fetch(self, start, end, *, top: int, skip: int) -> RecordBatch:
        self._held()
        return self.fetch(start, end, top=top, skip=skip)


def _gated_reader(
    table: _GatedTable, *, gate_probe: bool, probe_page_size: int = DEFAULT_PROBE_PAGE_SIZE
) -> SliceReader:
    """A reader with a licence of 3 whose probe (`gate_probe`) or else whose fetch goes through the gate."""
    return SliceReader(
        table.fetch if gate_probe else table.gated_fetch,
        timestamps=table.gated_timestamps if gate_probe else table.timestamps,
        timestamp_field="LastModifiedDateTime",
        page_size=100,
        workers=3,
        probe_page_size=probe_page_size,
    )


def test_as_many_requests_again_as_the_licence_allows_wait_to_take_each_freed_slot():
    """The licence's requests tend to end together, and one is done only once its page is decoded: with a single
    request waiting, the other slots freed at that moment idled until the reader had settled their pages."""
    table = _GatedTable([BASE + 7 * n for n in range(3000)], gate=6)
    read = [
        record_id
        for batch in _gated_reader(table, gate_probe=False).read(TimeSlice(None, from_ms(BASE + 10**6)))
        for record_id in batch.column("id")
    ]
    assert sorted(map(int, read)) == table.stamps
    assert table.peak == 6  # twice the licence of 3: never more, as each holds a page once answered


def test_the_probe_keeps_one_page_more_than_the_licence_allows_under_way():
    """A probe page takes a few hundred milliseconds to decode: the next page must already wait for the slot."""
    table = _GatedTable([BASE + 7 * n for n in range(3000)], gate=4)
    reader = _gated_reader(table, gate_probe=True, probe_page_size=500)
    read = [
        record_id for batch in reader.read(TimeSlice(None, from_ms(BASE + 10**6))) for record_id in batch.column("id")
    ]
    assert sorted(map(int, read)) == table.stamps
    assert table.peak == 4  # the licence of 3, and one more


def time_entry_source(hook: AcumaticaHook, memory=None) -> TableSource:
    """TimeEntry as the operator reads it by default (with what `memory`, a SourceMemory, keeps of the instance)."""
    return TableSource(
        hook,
        table="TimeEntry",
        kind="entity",
        timestamp_field="LastModifiedDateTime",
        key_fields=[],
        expand=[],
        describe="TimeEntry",
        memory=memory,
    )


def time_entry_reader(hook: AcumaticaHook, page_size: int, *, lists_keys: bool = True) -> SliceReader:
    source = time_entry_source(hook)
    return SliceReader(
        source.fetch,
        timestamps=source.fetch_timestamps,
        keys=source.fetch_keys if lists_keys else None,
        timestamp_field="LastModifiedDateTime",
        page_size=page_size,
        workers=3,
        record_ids=source.record_ids,
    )


def test_plain_skip_paging_loses_rows_under_deletes_where_the_slice_reader_does_not(new_sandbox, acumatica_connection):
    """Against the sandbox over HTTP: the same deletions fired while paging, read both ways."""
    sandbox = new_sandbox(rows=2000, seed=41, tenants=("Company",))
    now = datetime.now(timezone.utc)

    def delete_while_paging() -> None:
        sandbox.control.clear_faults()
        sandbox.control.inject_fault(
            "mutate",
            count=6,
            path_contains="TimeEntry",
            mutation={"tenant": "Company", "entity": "TimeEntry", "op": "delete", "random": 60},
        )

    def remaining() -> set[str]:
        return {record["id"] for record in sandbox.control.truth("Company", "TimeEntry")["records"]}

    with AcumaticaHook(acumatica_connection(sandbox)) as hook:
        delete_while_paging()
        plain = {
            record["id"]
            for record in hook.iter_entity("TimeEntry", filter=lt("LastModifiedDateTime", now), page_size=200)
        }
        assert remaining() - plain, "plain $skip paging should have skipped records nobody deleted"

        delete_while_paging()
        sliced = {
            record_id
            for batch in time_entry_reader(hook, 200).read(TimeSlice(None, now))
            for record_id in batch.column("id")
        }
        assert remaining() - sliced == set()


def test_a_server_that_caps_its_pages_below_top_loses_nothing(new_sandbox, acumatica_connection):
    """An instance answering at most 150 records whatever $top asks: short pages must not pass as complete."""
    sandbox = new_sandbox(rows=1200, seed=43, tenants=("Company",), max_page_size=150)
    now = datetime.now(timezone.utc)
    with AcumaticaHook(acumatica_connection(sandbox)) as hook:
        for window in (TimeSlice(None, now), TimeSlice(from_ms(to_ms(now) - 400 * 24 * 3600 * 1000), now)):
            read = [
                record_id for batch in time_entry_reader(hook, 500).read(window) for record_id in batch.column("id")
            ]
            truth = {record["id"] for record in sandbox.control.truth("Company", "TimeEntry")["records"]}
            assert set(read) == truth and len(read) == len(truth)


def _crowded_instant(sandbox) -> TimeSlice:
    stamps = [record["LastModifiedDateTime"] for record in sandbox.control.truth("Company", "TimeEntry")["records"]]
    instant = datetime.fromisoformat(max(set(stamps), key=stamps.count).replace("Z", "+00:00"))
    return TimeSlice(instant, instant + timedelta(milliseconds=1))


def test_a_crowded_instant_is_checked_by_one_key_listing_instead_of_a_second_pass(new_sandbox, acumatica_connection):
    sandbox = new_sandbox(rows=3000, seed=3, tenants=("Company",))  # one instant holds > 1,000 records
    instant = _crowded_instant(sandbox)
    with AcumaticaHook(acumatica_connection(sandbox)) as hook:
        checked, passes_only = time_entry_reader(hook, 200), time_entry_reader(hook, 200, lists_keys=False)
        read = [record_id for batch in checked.read(instant) for record_id in batch.column("id")]
        again = [record_id for batch in passes_only.read(instant) for record_id in batch.column("id")]
    assert sorted(read) == sorted(again) and len(read) == len(set(read)) > 1000
    pages_per_pass = len(read) // 200 + 1
    assert passes_only.requests - checked.requests == pages_per_pass - 1  # one listing instead of a whole pass


def test_records_deleted_while_a_crowded_instant_is_paged_hide_no_other(new_sandbox, acumatica_connection):
    sandbox = new_sandbox(rows=3000, seed=3, tenants=("Company",))
    instant = _crowded_instant(sandbox)
    # while the instant's second page is asked for, records go, some of them among the first page's
    sandbox.control.inject_fault(
        "mutate",
        count=1,
        path_contains="$skip=200",
        mutation={"tenant": "Company", "entity": "TimeEntry", "op": "delete", "random": 150},
    )
    with AcumaticaHook(acumatica_connection(sandbox)) as hook:
        read = {record_id for batch in time_entry_reader(hook, 200).read(instant) for record_id in batch.column("id")}
    at_instant = {
        record["id"]
        for record in sandbox.control.truth("Company", "TimeEntry")["records"]
        if instant.holds(datetime.fromisoformat(record["LastModifiedDateTime"].replace("Z", "+00:00")))
    }
    assert at_instant and at_instant - read == set()


def _read_from_the_beginning(hook: AcumaticaHook, reader: SliceReader) -> list[str]:
    return [
        record_id
        for batch in reader.read(TimeSlice(None, datetime.now(timezone.utc)))
        for record_id in batch.column("id")
    ]


def test_a_mass_updated_instant_the_probe_counted_is_read_in_one_request(
    new_sandbox, acumatica_connection, monkeypatch
):
    """The probe knows how many records the instant holds: asked for whole, it needs no $skip pages and no listing
    of its keys (one answer: nothing can shift in it). Read the paged way too (whole reads switched off)."""
    sandbox = new_sandbox(rows=3000, seed=3, tenants=("Company",))  # one instant holds > 1,000 records
    truth = sorted(record["id"] for record in sandbox.control.truth("Company", "TimeEntry")["records"])
    crowd = len(truth) - len(
        {record["LastModifiedDateTime"] for record in sandbox.control.truth("Company", "TimeEntry")["records"]}
    )
    with AcumaticaHook(acumatica_connection(sandbox)) as hook:
        whole = time_entry_reader(hook, 200)
        read_whole = _read_from_the_beginning(hook, whole)
        monkeypatch.setattr(slicing, "INSTANT_PAGE_LIMIT", 0)
        paged = time_entry_reader(hook, 200)
        read_paged = _read_from_the_beginning(hook, paged)
    assert sorted(read_whole) == sorted(read_paged) == truth and crowd > 1000
    # its pages after the first, and the key listing; less the one-record checks for a page cap the whole reader makes
    # of each answer larger than any before it (the whole answer, and short slices before a full page was seen)
    assert paged.requests - whole.requests >= crowd // 200 - 3


def test_an_instant_holding_more_than_the_probe_counted_is_paged_after_all(new_sandbox, acumatica_connection):
    """A whole-instant answer that comes back full (the probe counted too few: records spread thinly over probe
    pages, or arriving late) is not taken as complete: it counts as a first pass, and the key listing after it
    sends the instant to be paged again."""
    sandbox = new_sandbox(rows=3000, seed=3, tenants=("Company",))
    truth = sorted(record["id"] for record in sandbox.control.truth("Company", "TimeEntry")["records"])
    with AcumaticaHook(acumatica_connection(sandbox)) as hook:
        reader = time_entry_reader(hook, 200)
        planned = reader._plan

        def undercounted(window: TimeSlice) -> list[TimeSlice]:  # the real plan, its instants' counts halved
            return [dataclasses.replace(part, expected=part.expected // 2) for part in planned(window)]

        reader._plan = undercounted
        assert sorted(_read_from_the_beginning(hook, reader)) == truth


def test_an_instant_is_not_asked_for_whole_beyond_what_the_server_answers_at_once(new_sandbox, acumatica_connection):
    """An instance capping its answers at 150 records would cut a whole-instant answer short without a sign: the
    instant is paged at the cap instead, and nothing is lost."""
    sandbox = new_sandbox(rows=3000, seed=3, tenants=("Company",), max_page_size=150)
    truth = sorted(record["id"] for record in sandbox.control.truth("Company", "TimeEntry")["records"])
    with AcumaticaHook(acumatica_connection(sandbox)) as hook:
        assert sorted(_read_from_the_beginning(hook, time_entry_reader(hook, 500))) == truth
