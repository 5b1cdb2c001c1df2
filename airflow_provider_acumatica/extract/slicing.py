"""Read one time window of an Acumatica table completely, even while its records change under us.

Acumatica pages only with $top/$skip and has no $orderby on the REST API. Plain $skip paging over a
filter whose result set moves (a record updated or deleted while we page shifts every later record
one place forward) silently skips rows. So a window is cut into time slices that each fit in ONE
request: a slice answered with fewer than $top records is complete at that instant, whatever moves
later. A slice that comes back full is split in three at the median of the timestamps it returned
([start, m), the instant m, (m, end)), so every split makes progress. A single instant holding more
records than a page (a mass update) that the probe counted is asked for whole, in one answer of up to
INSTANT_PAGE_LIMIT records (no more than the server has shown it answers at once). Otherwise, or when that
answer comes back full, the instant is paged with $skip, because only there can a shifting page hide a record;
so after each pass one request lists the keys now at that instant (a single answer: nothing can shift under
it), and the instant is paged again only if that listing names a record the pass missed. (An instant too
large for one listing is re-read until a whole pass finds nothing new.)

Before fetching, a cheap probe ($select of the timestamp alone) learns where the records lie, so that
slices hold about one page each and can be fetched in parallel within the licence's concurrency.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, TypeVar

from airflow_provider_acumatica.client.errors import AcumaticaApiError, AcumaticaAuthError
from airflow_provider_acumatica.client.records import RecordBatch
from airflow_provider_acumatica.client.settings import DEFAULT_PROBE_PAGE_SIZE
from airflow_provider_acumatica.extract.slices import TimeSlice, TimestampHistogram, from_ms, plan_slices, to_ms

log = logging.getLogger(__name__)

#: Share of a page a slice of an open-ended window is planned to, leaving room for newcomers.
OPEN_SLICE_FILL = 0.8
#: Passes over one crowded instant (or a table without timestamps) before its stragglers wait for the next run.
MAX_PASSES = 5
#: The most records one request asks for to read a mass-updated instant whole (the largest batch_size).
INSTANT_PAGE_LIMIT = 10_000
#: Pages past the distinct records seen after which $skip is taken to be ignored by the server.
RUNAWAY_PAGES = 10
_NOTHING = RecordBatch({}, 0)
T = TypeVar("T")


class PageFetcher(Protocol):
    """One request: the records in [start, end) of the timestamp field, $top/$skip applied."""

    def __call__(self, start: datetime | None, end: datetime | None, *, top: int, skip: int) -> RecordBatch: ...


class TimestampFetcher(Protocol):
    """One request like `PageFetcher`'s, answering only the records' timestamps (None where a record has none)."""

    def __call__(
        self, start: datetime | None, end: datetime | None, *, top: int, skip: int
    ) -> list[datetime | None]: ...



@dataclass
class _InstantPaging:
    """State of $skip paging inside one instant, checked after each pass against a listing of its keys."""

    part: TimeSlice
    seen_ids: set[str] = field(default_factory=set)
    skip: int = 0
    new_in_pass: int = 0
    passes: int = 1
    checking: bool = False
    """The pass is over; one request listing the keys now in `part` is under way."""
    listable: bool = True
    """False once `part` held more records than one listing request returns."""

    def next_pass(self) -> None:
        self.passes += 1
        self.skip = 0
        self.new_in_pass = 0


class SliceReader:
    """Yields batches of records that together hold every record of a window, each at most once per pass."""

    def __init__(
        self,
        fetch: PageFetcher,
        *,
        timestamps: TimestampFetcher,
        keys: PageFetcher | None = None,
        timestamp_field: str | None,
        page_size: int,
        workers: int = 1,
        record_ids: Callable[[RecordBatch], list[str]] = lambda batch: list(map(str, batch.column("id"))),
        probe_page_size: int = DEFAULT_PROBE_PAGE_SIZE,
        description: str = "",
    ) -> None:
        self._fetch = fetch
        self._timestamps = timestamps
        self._keys = keys if timestamp_field else None  # a keys-only listing needs something to select
        self._timestamp_field = timestamp_field
        self._page_size = page_size
        self._probe_page_size = probe_page_size
        self._workers = max(1, workers)
        self._record_ids = record_ids
        self._description = description
        self._cap_checked = False
        self._answered = 0
        """The most records the server gave in one answer (a probe page): larger $top may be capped silently."""
        self.requests = 0

    def read(self, window: TimeSlice) -> Iterator[RecordBatch]:
        """Every record whose timestamp lies in `window`, in batches of at most one page."""
        if window.start is None and self._timestamp_field is not None:
            # From the beginning: most likely an initial load, so learn its size before fetching records.
            yield from self._read_tasks(self._plan(window))
            return
        first = self._get(window, top=self._page_size, skip=0)
        if len(first) < self._page_size and self._confirms_end(window, len(first)):
            if first:
                yield first
            return
        if self._timestamp_field is None or self._timestamp_field not in first.fields:
            # Nothing to slice by (a reference table): page it all, re-reading until a pass is stable.
            batch, follow_up = self._settle_instant_page(_InstantPaging(window), first)
            yield batch
            yield from self._read_tasks(follow_up)
            return
        yield from self._read_tasks(self._plan(window))

    def _get(self, part: TimeSlice, *, top: int, skip: int) -> RecordBatch:
        return self._request(self._fetch, part, top=top, skip=skip)

    def _get_timestamps(self, part: TimeSlice, *, top: int, skip: int) -> list[datetime | None]:
        return self._request(self._timestamps, part, top=top, skip=skip)

    def _list_keys(self, part: TimeSlice) -> RecordBatch:
        return self._request(self._keys, part, top=self._probe_page_size, skip=0)

    def _request(self, fetcher: Callable[..., T], part: TimeSlice, *, top: int, skip: int) -> T:
        """One request of `fetcher` for `part`, counted."""
        self.requests += 1
        return fetcher(part.start, part.end, top=top, skip=skip)

    def _plan(self, window: TimeSlice) -> list[TimeSlice]:
        """Probe the timestamps of the window (cheap $select pages, fetched in parallel) and cut slices."""
        histogram = self._probe(window)
        slices = plan_slices(histogram, window, self._slice_capacity(window))
        log.info("%s: window %s planned as %d slices, %d records counted", self._description, window, len(slices),
                 sum(histogram.counts.values()))
        return slices

    def _probe(self, window: TimeSlice) -> TimestampHistogram:
        """Every timestamp of the window, counted.

        When the first page comes back short with more records behind it, the server caps its pages: what was
        counted past it at the wrong size is dropped, and the probe pages on at the server's size.
        """
        histogram = TimestampHistogram()
        pool = ThreadPoolExecutor(self._workers + 1)
        try:
            first = self._probe_pages(pool, window, histogram, self._probe_page_size, skip=0)
            if len(first) < self._probe_page_size and not self._confirms_end(window, len(first)):
                histogram = TimestampHistogram()
                histogram.add_page(first)
                self._probe_pages(pool, window, histogram, len(first), skip=len(first))
        finally:
            pool.shutdown(wait=False, cancel_futures=True)  # pages asked for past the end are not waited for
        return histogram

    def _probe_pages(
        self, pool: ThreadPoolExecutor, window: TimeSlice, histogram: TimestampHistogram, size: int, *, skip: int
    ) -> list[datetime | None]:
        """Count timestamp pages of `size` from `skip` on until one comes back short; return the first page.

        One request more than the licence runs at once is kept under way, waiting for the transport's permit, so
        that a slot freed while pages are decoded (a few hundred milliseconds each) is taken at once; and each
        page is counted while the next ones travel. No more than one: a probe page is large while it is read
        (50,000 records of a timestamp alone are ~19 MB of JSON), and a page past the window's end is a request
        spent for nothing. Pages asked for past the short one are not needed: they are left to finish on their
        own. A full page equal to the first ends the probe too: otherwise a server that ignores $skip would be
        probed forever.
        """
        running: dict[Future, int] = {}
        first_skip, first = skip, []
        end: int | None = None
        """The skip of the first short page, once one came back."""
        arrived: list[list[datetime | None]] = []
        while True:
            while end is None and len(running) <= self._workers:
                running[pool.submit(self._get_timestamps, window, top=size, skip=skip)] = skip
                skip += size
            for page in arrived:  # counted once the next requests are on their way
                histogram.add_page(page)
            arrived = []
            needed = [future for future, at in running.items() if end is None or at < end]
            if not needed:
                return first
            done, _ = wait(needed, return_when=FIRST_COMPLETED)
            for future in done:
                at, page = running.pop(future), self._probe_page(future, size)
                self._answered = max(self._answered, len(page))
                first = page if at == first_skip else first
                arrived.append(page)
                if len(page) < size or (at != first_skip and page == first):
                    # a short page ends the window; the first page again means a server ignoring $skip (or one
                    # instant filling both): what is counted is enough to plan, the fetch's own guard tells which
                    end = at if end is None else min(end, at)

    def _probe_page(self, future: Future, size: int) -> list[datetime | None]:
        """A probe page's timestamps; a request that got no answer, or a server error, says what to change: asking
        `size` timestamps at once may be more than a slow instance answers within the connection's timeout."""
        try:
            return future.result()
        except AcumaticaApiError as error:
            if isinstance(error, AcumaticaAuthError) or (error.status is not None and error.status < 500):
                raise  # a sign-in that failed says so itself: the probe's size is not the matter
            of = f" of {self._description}" if self._description else ""
            raise AcumaticaApiError(error.method, error.path, error.status, (
                f"{error.message}; this request{of} probes {size} timestamps at once: if the instance cannot answer "
                "that many in time, lower the Acumatica connection's probe_page_size (default "
                f"{DEFAULT_PROBE_PAGE_SIZE}) or raise its timeout")) from error

    def _confirms_end(self, part: TimeSlice, returned: int) -> bool:
        """Whether a short answer really ends `part`: nothing may follow it.

        Some instances answer at most N records whatever $top asks; trusting such a page as complete
        would lose the rest. Checked once per read, with a one-record request; when the server caps,
        its cap becomes our page size.
        """
        if returned == 0 or self._cap_checked:
            return True
        self._cap_checked = True
        if not self._get_timestamps(part, top=1, skip=returned):
            return True
        log.warning("%s: the server answers at most %d records per request; reading pages of that size",
                    self._description, returned)
        self._page_size = min(self._page_size, returned)
        return False

    def _slice_capacity(self, window: TimeSlice) -> int:
        """Records a planned slice may hold: up to a page less one when the window is closed (records
        only leave it while we read: a change moves them past its end), else a margin for newcomers."""
        if window.end is not None:
            return max(1, self._page_size - 1)
        return max(1, int(self._page_size * OPEN_SLICE_FILL))

    def _read_tasks(self, tasks: list[TimeSlice | _InstantPaging]) -> Iterator[RecordBatch]:
        """Fetch slices in parallel; split the ones that overflow; page the crowded instants.

        Freed request slots are refilled before batches are handed on, so the licence's concurrency
        stays in use while the caller stores a batch; and as many requests again as the licence allows are
        under way, waiting for the transport's permit, so that every slot is taken again the moment it is freed:
        the licence's requests tend to end together, and a request is done only once its page is decoded.
        At most twice the licence's batches are held at once.
        """
        pending = list(reversed(tasks))
        running: dict[Future, TimeSlice | _InstantPaging] = {}
        in_flight = 2 * self._workers
        with ThreadPoolExecutor(in_flight) as pool:

            def refill() -> None:
                while pending and len(running) < in_flight:
                    task = pending.pop()
                    running[self._submit(pool, task)] = task

            refill()
            while running:
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                batches = []
                for future in done:
                    batch, follow_up = self._settle(running.pop(future), future.result())
                    pending.extend(reversed(follow_up))
                    batches.append(batch)
                refill()
                yield from (batch for batch in batches if batch)

    def _submit(self, pool: ThreadPoolExecutor, task: TimeSlice | _InstantPaging) -> Future:
        if isinstance(task, _InstantPaging) and task.checking:
            return pool.submit(self._list_keys, task.part)
        if isinstance(task, _InstantPaging):
            return pool.submit(self._get, task.part, top=self._page_size, skip=task.skip)
        return pool.submit(self._get, task, top=self._top(task), skip=0)

    def _top(self, part: TimeSlice) -> int:
        """$top for a slice: a page; but an instant the probe counted more records in than a page holds is asked
        for whole (with a margin), when the server has answered that many at once and INSTANT_PAGE_LIMIT allows:
        one answer, in which nothing can shift, instead of a page per batch_size and a listing of its keys."""
        if not part.is_instant or part.expected < self._page_size:
            return self._page_size
        whole = part.expected + part.expected // 4 + 1
        return whole if whole <= min(INSTANT_PAGE_LIMIT, self._answered) else self._page_size

    def _settle(
        self, task: TimeSlice | _InstantPaging, records: RecordBatch
    ) -> tuple[RecordBatch, list[TimeSlice | _InstantPaging]]:
        """What a finished request yields, and what must be fetched next because of it."""
        if isinstance(task, _InstantPaging) and task.checking:
            return self._settle_check(task, records)
        if isinstance(task, _InstantPaging):
            return self._settle_instant_page(task, records)
        if len(records) < self._top(task):
            return records, []
        if task.is_instant:  # a whole-instant answer that came back full counts as a first pass over it
            paging = _InstantPaging(task)
            return self._settle_instant_page(paging, records)
        middle = self._median_timestamp(records)
        if not task.holds(middle):
            # Timestamps that do not fall where the server put them (wall times of a repeated hour read
            # without an offset) cannot guide a split: page this slice until a pass is stable instead.
            log.info("%s: slice %s overflowed and its timestamps cannot split it; paging it", self._description, task)
            return self._settle_instant_page(_InstantPaging(task), records)
        log.info("%s: slice %s overflowed a page; splitting at %s", self._description, task, middle.isoformat())
        return _NOTHING, task.split_at(middle)

    def _settle_instant_page(
        self, paging: _InstantPaging, records: RecordBatch
    ) -> tuple[RecordBatch, list[TimeSlice | _InstantPaging]]:
        ids = self._record_ids(records)
        fresh = [position for position, record_id in enumerate(ids) if record_id not in paging.seen_ids]
        paging.seen_ids.update(ids[position] for position in fresh)
        paging.new_in_pass += len(fresh)
        if len(records) == self._page_size:
            paging.skip += self._page_size
            if paging.skip > len(paging.seen_ids) + RUNAWAY_PAGES * self._page_size:
                raise RuntimeError(
                    f"{self._description}: paged past {paging.skip} records of {paging.part} but only "
                    f"{len(paging.seen_ids)} distinct ones came back: the server seems to ignore $skip. "
                    "Check the endpoint with a plain $top/$skip request."
                )
            return records.take(fresh), [paging]
        return records.take(fresh), self._after_pass(paging)

    def _after_pass(self, paging: _InstantPaging) -> list[TimeSlice | _InstantPaging]:
        """What follows a whole pass over `paging.part`: a key listing, another pass, or nothing."""
        if paging.passes < MAX_PASSES and self._keys is not None and paging.listable:
            paging.checking = True  # one light listing shows whether paging missed anything
            return [paging]
        if paging.passes < MAX_PASSES and (paging.passes == 1 or paging.new_in_pass):
            log.info(
                "%s: instant %s holds %d records; pass %d found %d new, reading it again to be sure",
                self._description, paging.part.start, len(paging.seen_ids), paging.passes, paging.new_in_pass,
            )
            paging.next_pass()
            return [paging]
        if paging.new_in_pass:
            log.warning("%s: %s still changing after %d passes; its newest records wait for the next run",
                        self._description, paging.part, paging.passes)
        return []

    def _settle_check(
        self, paging: _InstantPaging, listed: RecordBatch
    ) -> tuple[RecordBatch, list[TimeSlice | _InstantPaging]]:
        """After a pass: done when one listing of every key now in the instant shows none unread.

        A record can only be skipped by $skip paging when another leaves the instant while it is paged;
        a single unpaged listing has no such gap. Records that left were changed: later reads hold them.
        """
        paging.checking = False
        if len(listed) >= self._probe_page_size:  # too many to list at once: re-read passes decide instead
            paging.listable = False
            return _NOTHING, self._after_pass(paging)
        unread = sum(record_id not in paging.seen_ids for record_id in self._record_ids(listed))
        if not unread:
            return _NOTHING, []
        log.info("%s: %s holds %d records unread after pass %d (records moved while it was paged); reading "
                 "it again", self._description, paging.part, unread, paging.passes)
        paging.next_pass()
        return _NOTHING, [paging]

    def _median_timestamp(self, records: RecordBatch) -> datetime:
        stamps = sorted(map(to_ms, records.column(self._timestamp_field)))
        return from_ms(stamps[len(stamps) // 2])
