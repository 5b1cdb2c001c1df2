"""Read one time window of an Acumatica table completely, even while its records change under us.

Acumatica pages only with $top/$skip and has no $orderby on the REST API. Plain $skip paging over a
filter whose result set moves (a record updated or deleted while we page shifts every later record
one place forward) silently skips rows. So a window is cut into time slices that each fit in ONE
request: a slice answered with fewer than $top records is complete at that instant, whatever moves
later. A slice that comes back full is split in three at the median of the timestamps it returned
([start, m), the instant m, (m, end)), so every split makes progress. A single instant holding more
records than a page (a mass update) that the sample found is asked for whole, in one answer of up to
INSTANT_PAGE_LIMIT records (an answer shorter than asked is checked for a page cap). Otherwise, or when that
answer comes back full, the instant is paged with $skip, because only there can a shifting page hide a record;
so after each pass one request lists the keys now at that instant (a single answer: nothing can shift under
it), and the instant is paged again only if that listing names a record the pass missed. (An instant too
large for one listing is re-read until a whole pass finds nothing new.)

A window is first asked for in one page, as a run's window mostly fits in one (an incremental run: one
request). A window that does not, or one read from the beginning (an initial load), is sampled (see `sampling`:
a few percent of its timestamps, not all of them, as the server's work is per record rendered) so that slices
hold about one page each, sized so the licence's concurrent requests end together, and are fetched in parallel.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, TypeVar

from airflow_provider_acumatica.client.limits import MAX_PAGE_SIZE
from airflow_provider_acumatica.client.records import RecordBatch
from airflow_provider_acumatica.client.settings import DEFAULT_PROBE_PAGE_SIZE
from airflow_provider_acumatica.extract.sampling import WindowSampler
from airflow_provider_acumatica.extract.slices import TimeSlice, from_ms, plan_slices, to_ms

log = logging.getLogger(__name__)

#: Share of a page a slice of an open-ended window is planned to, leaving room for newcomers.
OPEN_SLICE_FILL = 0.8
#: Share of that a slice is planned to from a sample's estimates, leaving room for their error.
SAMPLED_FILL = 0.75
#: A short answer of fewer records is taken as complete without checking that nothing follows it: Acumatica
#: answers $top=N with N records (a Resource Governor limit is an error, not a short page), and an instance
#: capping its pages silently would cap them at more than this.
TRUSTED_SHORT_ANSWER = 100
#: Passes over one crowded instant (or a table without timestamps) before its stragglers wait for the next run.
MAX_PASSES = 5
#: The most records one request asks for to read a mass-updated instant whole (the largest batch_size).
INSTANT_PAGE_LIMIT = MAX_PAGE_SIZE
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
    """Yields batches of records that together hold every record of a window, each at most once per pass.

    `answered` is the most records the same instance gave in one answer of this table before (kept between runs
    by extract.memory), so that a short answer below it is known complete without a check."""

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
        answered: int = 0,
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
        self._answered = answered
        """The most records the server gave in one answer (in an earlier run too): a shorter answer is not a page cap."""
        self._cap: int | None = None
        """The most records the server answers at once, once found to cap its answers below $top."""
        self._head: list[datetime | None] | None = None
        """The timestamps of the window's first page, when it was read before planning."""
        self.requests = 0

    @property
    def largest_answer(self) -> int:
        """The most records the server gave in one answer, for later readers of the same instance (`answered`)."""
        return self._answered

    def read(self, window: TimeSlice) -> Iterator[RecordBatch]:
        """Every record whose timestamp lies in `window`, in batches of at most one page."""
        self._head = None
        if window.start is None and self._timestamp_field is not None:
            # From the beginning: most likely an initial load, so learn its size before fetching records.
            yield from self._read_tasks(self._plan(window))
            return
        first = self._get(window, top=self._page_size, skip=0)
        if len(first) < self._page_size and self._is_complete(window, len(first)):
            if first:
                yield first
            return
        if window.is_instant or self._timestamp_field is None or self._timestamp_field not in first.fields:
            # Nothing to slice by (one instant, or a reference table): page it all, re-reading until a pass is stable.
            batch, follow_up = self._settle_instant_page(_InstantPaging(window), first)
            yield batch
            yield from self._read_tasks(follow_up)
            return
        self._head = list(first.column(self._timestamp_field))
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
        """Sample the window's timestamps and cut it into slices of about a page, as many as a multiple of the
        licence's concurrent requests, so that they end together."""
        sampler = WindowSampler(
            self._get_timestamps,
            page_size=self._page_size,
            workers=self._workers,
            probe_page_size=self._probe_page_size,
            description=self._description,
        )
        histogram, records = sampler.sample(window, self._head)
        capacity = max(1, int(self._slice_capacity(window) * SAMPLED_FILL))
        if records > capacity:
            rounds = math.ceil(math.ceil(records / capacity) / self._workers)
            capacity = max(1, math.ceil(records / (rounds * self._workers)))
        # The largest instants first: the longest requests do not trail at the end, and the first answer larger than
        # a page spares the checks of every shorter answer after it (see _is_complete).
        slices = sorted(plan_slices(histogram, window, capacity), key=lambda part: -part.expected)
        log.info(
            "%s: window %s of about %d records planned as %d slices", self._description, window, records, len(slices)
        )
        return slices

    def _is_complete(self, part: TimeSlice, returned: int) -> bool:
        """Whether an answer shorter than asked holds all of `part`: not when it reaches a page cap the server was
        found to have; yes when the server answered more at once before, or it is small (TRUSTED_SHORT_ANSWER);
        else once checked (see `_confirms_end`)."""
        if self._cap is not None and returned >= self._cap:
            return False
        complete = (
            returned == 0
            or returned < self._answered
            or returned < TRUSTED_SHORT_ANSWER
            or self._confirms_end(part, returned)
        )
        if complete:
            self._answered = max(self._answered, returned)
        return complete

    def _confirms_end(self, part: TimeSlice, returned: int) -> bool:
        """Whether a short answer really ends `part`: nothing may follow it.

        Some instances answer at most N records whatever $top asks; trusting such a page as complete
        would lose the rest. Checked with a one-record request (once per new largest answer, which a reader
        may be given from earlier runs: a shorter one cannot be a cap); when the server caps, its cap becomes
        our page size.
        """
        if not self._get_timestamps(part, top=1, skip=returned):
            return True
        log.warning(
            "%s: the server answers at most %d records per request; reading pages of that size",
            self._description,
            returned,
        )
        self._cap = returned if self._cap is None else min(self._cap, returned)
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
        """$top for a slice: a page; but an instant the sample counted more records in than a page holds is asked
        for whole (with a margin), up to INSTANT_PAGE_LIMIT: one answer, in which nothing can shift, instead of a
        page per batch_size and a listing of its keys. An answer shorter than asked is checked like any other:
        a server capping its pages below it is found so, and the instant paged instead."""
        if not part.is_instant or part.expected < self._page_size:
            return self._page_size
        whole = part.expected + part.expected // 2 + 1  # the estimate is from a sample
        return whole if whole <= INSTANT_PAGE_LIMIT else self._page_size

    def _settle(
        self, task: TimeSlice | _InstantPaging, records: RecordBatch
    ) -> tuple[RecordBatch, list[TimeSlice | _InstantPaging]]:
        """What a finished request yields, and what must be fetched next because of it."""
        if isinstance(task, _InstantPaging) and task.checking:
            return self._settle_check(task, records)
        if isinstance(task, _InstantPaging):
            return self._settle_instant_page(task, records)
        if len(records) < self._top(task) and self._is_complete(task, len(records)):
            return records, []
        self._answered = max(self._answered, len(records))
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
                self._description,
                paging.part.start,
                len(paging.seen_ids),
                paging.passes,
                paging.new_in_pass,
            )
            paging.next_pass()
            return [paging]
        if paging.new_in_pass:
            log.warning(
                "%s: %s still changing after %d passes; its newest records wait for the next run",
                self._description,
                paging.part,
                paging.passes,
            )
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
        log.info(
            "%s: %s holds %d records unread after pass %d (records moved while it was paged); reading it again",
            self._description,
            paging.part,
            unread,
            paging.passes,
        )
        paging.next_pass()
        return _NOTHING, [paging]

    def _median_timestamp(self, records: RecordBatch) -> datetime:
        stamps = sorted(map(to_ms, records.column(self._timestamp_field)))
        return from_ms(stamps[len(stamps) // 2])
