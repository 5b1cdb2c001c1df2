"""Where a window's records lie, learned from a small sample of their timestamps instead of all of them.

Acumatica spends its server work per record it renders, timestamps alone included, within a licence of a few
concurrent requests: a probe of every timestamp would cost the server as much as the data itself. So the window
is sampled in blocks of `$select`ed timestamps at $skip positions that double (0, a page, 2 pages, 4 pages...),
each block a share of the positions it stands for; the first block that comes back short (or empty) bounds the
window's size, which a few one-record requests narrow down. Each sampled timestamp is counted for the records
its block stands for, so the histogram planned from holds estimates, not counts: slices are planned with a
margin, and a slice that still comes back full is split from its own records (see `slicing`).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime

from airflow_provider_acumatica.client.errors import AcumaticaApiError, AcumaticaAuthError
from airflow_provider_acumatica.client.settings import DEFAULT_PROBE_PAGE_SIZE
from airflow_provider_acumatica.extract.slices import TimeSlice, TimestampHistogram, to_ms

#: One sampled timestamp per this many records of the positions a block stands for.
SAMPLE_SHARE = 32
#: The fewest timestamps a sample block asks for.
MIN_BLOCK = 16
#: Points over which the records between two sampled positions of a time-ordered key are spread.
SPREAD_POINTS = 64
#: Rounds of one-record requests that narrow down the window's size, each to 1/(workers + 1) of what is left.
SIZE_ROUNDS = 3

Timestamps = Callable[..., list]
"""One request: (part, *, top, skip) -> the timestamps of those records (None where a record has none)."""


@dataclass
class _Block:
    skip: int
    top: int
    stands_for: int
    """Positions [skip, skip + stands_for) this block is a sample of."""
    stamps: list | None = None


class WindowSampler:
    """Samples one window's timestamps within the licence's concurrency; see the module's docstring."""

    def __init__(
        self,
        timestamps: Timestamps,
        *,
        page_size: int,
        workers: int,
        probe_page_size: int = DEFAULT_PROBE_PAGE_SIZE,
        description: str = "",
    ) -> None:
        self._timestamps = timestamps
        self._page_size = page_size
        self._workers = workers
        self._probe_page_size = probe_page_size
        self._description = description

    def sample(self, window: TimeSlice, head: list | None = None) -> tuple[TimestampHistogram, int]:
        """The window's estimated histogram and number of records. `head`: the timestamps of the window's first
        page when it was read already (a census of those positions, not a sample)."""
        blocks = [_Block(0, len(head), len(head), head)] if head else []
        points: list[tuple[int, datetime]] = []
        pool = ThreadPoolExecutor(self._workers + 1)
        try:
            low, high = self._gallop(pool, window, blocks)
            if high is None or high - low > 1:
                low, high = self._narrow(pool, window, low, high, points)
        finally:
            pool.shutdown(wait=False, cancel_futures=True)  # blocks asked for past the end are not waited for
        records = low if high is None else (low + high) // 2
        points += [(block.skip + at, stamp) for block in blocks for at, stamp in enumerate(block.stamps or ())]
        points = sorted((position, stamp) for position, stamp in points if stamp is not None)
        if len(blocks) > 2 and all(a[1] <= b[1] for a, b in zip(points, points[1:])):
            return _interpolated(points, records), records
        histogram = TimestampHistogram()
        for block in blocks:
            if block.stamps:  # the last block stands for every position from its own on
                stands_for = records - block.skip if block is blocks[-1] else block.stands_for
                covered = max(0, min(stands_for, records - block.skip))
                histogram.add_page(block.stamps, weight=covered / len(block.stamps))
        return histogram, max(records, sum(len(block.stamps or ()) for block in blocks))

    def _block(self, index: int) -> _Block:
        """Block 0 stands for the first page of positions, block i for [page * 2**(i-1), page * 2**i)."""
        skip = 0 if index == 0 else self._page_size << (index - 1)
        stands_for = self._page_size if index == 0 else skip
        return _Block(skip, min(self._probe_page_size, max(MIN_BLOCK, stands_for // SAMPLE_SHARE)), stands_for)

    def _gallop(self, pool: ThreadPoolExecutor, window: TimeSlice, blocks: list[_Block]) -> tuple[int, int | None]:
        """Fetch blocks in rounds of one more than the licence runs at once, until one comes back short: the window
        ends inside it. Returns the window's size as [low, high) (high None: unknown). A block equal to the start of
        the first one means a server ignoring $skip (or one instant filling both): it ends the sampling too, and
        the fetch's own guard tells which."""
        fetched = {index: block for index, block in enumerate(blocks)}
        running: dict[Future, int] = {}
        ended: int | None = None
        index = len(blocks)
        while True:
            if ended is None and not running:  # rounds, not a pipeline: as many blocks past the end whatever the timing
                for _ in range(self._workers + 1):
                    fetched[index] = block = self._block(index)
                    running[pool.submit(self._timestamps, window, top=block.top, skip=block.skip)] = index
                    index += 1
            needed = [future for future, at in running.items() if ended is None or at < ended]
            if not needed:
                break
            finished, _ = wait(needed, return_when=FIRST_COMPLETED)
            for future in finished:
                at = running.pop(future)
                fetched[at].stamps = self._answer(future, fetched[at].top)
            first = fetched[0].stamps
            for at, block in fetched.items():
                if block.stamps is not None and (
                    len(block.stamps) < block.top
                    or (at and first is not None and block.stamps == first[: len(block.stamps)])
                ):
                    ended = at if ended is None else min(ended, at)
        blocks[:] = [fetched[at] for at in range(ended + 1)]
        last = blocks[-1]
        return last.skip + len(last.stamps), last.skip + len(last.stamps) + 1 if len(last.stamps) < last.top else None

    def _narrow(
        self, pool: ThreadPoolExecutor, window: TimeSlice, low: int, high: int | None, points: list
    ) -> tuple[int, int | None]:
        """Narrow [low, high) (high None: doubling from low) with one-record requests at evenly spaced positions;
        the (position, timestamp) each answers goes to `points`."""
        for _ in range(SIZE_ROUNDS):
            if high is not None and high - low <= max(MIN_BLOCK, low // 16):
                break
            top = high if high is not None else 2 * low
            positions = sorted(
                {low + (top - low) * step // (self._workers + 1) for step in range(1, self._workers + 1)}
            )
            futures = [
                (position, pool.submit(self._timestamps, window, top=1, skip=position)) for position in positions
            ]
            for position, future in futures:
                answer = self._answer(future, 1)
                if answer:
                    points.append((position, answer[0]))
                    low = max(low, position + 1)
                elif high is None or position < high:
                    high = position
        return low, high

    def _answer(self, future: Future, size: int) -> list:
        """A sample request's timestamps; a request that got no answer, or a server error, says what to change."""
        try:
            return future.result()
        except AcumaticaApiError as error:
            if isinstance(error, AcumaticaAuthError) or (error.status is not None and error.status < 500):
                raise  # a sign-in that failed says so itself: the sample's size is not the matter
            of = f" of {self._description}" if self._description else ""
            raise AcumaticaApiError(
                error.method,
                error.path,
                error.status,
                (
                    f"{error.message}; this request{of} probes {size} timestamps at once: if the instance cannot answer "
                    "that many in time, lower the Acumatica connection's probe_page_size (default "
                    f"{DEFAULT_PROBE_PAGE_SIZE}) or raise its timeout"
                ),
            ) from error


def _interpolated(points: list[tuple[int, datetime]], records: int) -> TimestampHistogram:
    """The histogram of a window whose key order follows its timestamps (sequential keys of records rarely
    changed): a block of consecutive keys is then a narrow range of time, not a random draw, so the records
    between two sampled positions are spread over the time between their timestamps instead."""
    histogram = TimestampHistogram()
    points = [*points, (max(records, points[-1][0] + 1), points[-1][1])]
    for (position, stamp), (following, until) in zip(points, points[1:]):
        histogram.add(to_ms(stamp))
        between, start, end = following - position - 1, to_ms(stamp), to_ms(until)
        if between <= 0:
            continue
        if end <= start:
            histogram.crowded[start] = histogram.crowded.get(start, 0) + between + 1
            histogram.add(start, between)
            continue
        spread = min(between, SPREAD_POINTS)
        for step in range(spread):
            share = between * (step + 1) // spread - between * step // spread
            histogram.add(start + (end - start) * (2 * step + 1) // (2 * spread), share)
    return histogram
