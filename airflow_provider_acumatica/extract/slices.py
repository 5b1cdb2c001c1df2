"""Time slices of a window, and where a window's records lie: a histogram of (sampled) timestamps, from which
the window is cut into contiguous slices of about one page each (a crowded instant alone).

Pure computation, no requests: `slicing` reads the slices this module plans.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from itertools import repeat
from operator import floordiv, rshift

ONE_MS = timedelta(milliseconds=1)
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
#: Records (counted, or estimated from a sample) sharing one millisecond from which that instant is a mass update.
CROWDED_INSTANT = 64


def to_ms(instant: datetime) -> int:
    """Milliseconds since the epoch of an aware datetime (the finest step Acumatica renders)."""
    return (instant - EPOCH) // ONE_MS


def from_ms(ms: int) -> datetime:
    return EPOCH + ms * ONE_MS


@dataclass(frozen=True)
class TimeSlice:
    """The half-open range [start, end) of the timestamp field; None is unbounded."""

    start: datetime | None
    end: datetime | None
    expected: int = field(default=0, compare=False)
    """Records the sample estimated in it, where it planned the slice around them (0: unknown)."""

    @property
    def is_instant(self) -> bool:
        return self.start is not None and self.end is not None and self.end - self.start <= ONE_MS

    def holds(self, instant: datetime) -> bool:
        return (self.start is None or self.start <= instant) and (self.end is None or instant < self.end)

    def split_at(self, middle: datetime) -> list[TimeSlice]:
        """[start, m), [m, m+1ms), [m+1ms, end): each strictly smaller than this slice."""
        after = middle + ONE_MS
        parts = [TimeSlice(self.start, middle), TimeSlice(middle, after), TimeSlice(after, self.end)]
        return [part for part in parts if not _is_empty(part)]

    def __str__(self) -> str:
        start = self.start.isoformat() if self.start else "the beginning"
        end = self.end.isoformat() if self.end else "now"
        return f"[{start}, {end})"


def _is_empty(part: TimeSlice) -> bool:
    return part.start is not None and part.end is not None and part.end <= part.start


class TimestampHistogram:
    """Counts of timestamps per bucket of `resolution_ms`, coarsened as needed to stay under `max_buckets`; and,
    to the millisecond, the crowded instants (mass updates) found within a page of timestamps.

    Memory stays bounded whatever the table size. A crowded instant is planned as a slice of its own instead of
    being discovered by the overflow of a coarse bucket's slice (a wasted request and a split per instant).
    """

    def __init__(self, max_buckets: int = 50_000) -> None:
        self.max_buckets = max_buckets
        self.resolution_ms = 1
        self.counts: Counter[int] = Counter()
        self.crowded: dict[int, int] = {}
        """Records per instant (ms), for instants holding at least CROWDED_INSTANT records in one page (or sample)."""

    def add(self, ms: int, count: int = 1) -> None:
        bucket = ms // self.resolution_ms
        self.counts[bucket] = self.counts.get(bucket, 0) + count
        if len(self.counts) > self.max_buckets:
            self._coarsen()

    def add_page(self, stamps: list[datetime | None], weight: float = 1) -> None:
        """Count one page of timestamps (None: a record without one, not counted), each for `weight` records when
        the page is a sample. Counted in C (Counter of an iterable), not record by record in Python.

        An instant is crowded when it counts CROWDED_INSTANT records or more, from two sampled records on (two
        records of a sample sharing a millisecond are a mass update, not chance)."""
        instants = [to_ms(stamp) for stamp in stamps if stamp is not None]
        per_instant = Counter(instants)
        for ms, count in per_instant.items():
            if count * weight >= CROWDED_INSTANT and (count > 1 or weight <= 1):
                self.crowded[ms] = self.crowded.get(ms, 0) + round(count * weight)
        size = self.resolution_ms
        if weight == 1:
            self.counts.update(instants if size == 1 else map(floordiv, instants, repeat(size)))
        else:
            for ms, count in per_instant.items():
                bucket = ms // size
                self.counts[bucket] = self.counts.get(bucket, 0) + max(1, round(count * weight))
        if len(self.counts) > self.max_buckets:
            self._coarsen()
        if len(self.crowded) > self.max_buckets:  # keep the most crowded half: the others fit coarse slices
            kept = sorted(self.crowded.items(), key=lambda item: item[1])[-(self.max_buckets // 2) :]
            self.crowded = dict(kept)

    def _coarsen(self) -> None:
        """Widen the buckets by the smallest power of two that brings them under `max_buckets` (sparse timestamps need
        many doublings before buckets merge: found by bisection), then count every record again at that width, in C."""
        fewest, most = 1, 64
        while fewest < most:
            shift = (fewest + most) // 2
            if len(set(map(rshift, self.counts, repeat(shift)))) <= self.max_buckets:
                most = shift
            else:
                fewest = shift + 1
        self.counts = Counter(map(rshift, self.counts.elements(), repeat(fewest)))
        self.resolution_ms <<= fewest

    def pieces(self) -> list[tuple[int, int, int]]:
        """(start ms, end ms, count) in time order: every non-empty bucket, with each crowded instant carved out
        of its bucket as a 1 ms piece; the bucket's other records are spread over the rest by width."""
        size = self.resolution_ms
        crowded_in: dict[int, list[int]] = {}
        for ms in sorted(self.crowded):
            crowded_in.setdefault(ms // size, []).append(ms)
        pieces = []
        for bucket in sorted(self.counts):
            start, end, count = bucket * size, (bucket + 1) * size, self.counts[bucket]
            instants = crowded_in.get(bucket)
            if not instants or size == 1:
                pieces.append((start, end, count))
                continue
            pieces += _carved(start, end, count, {ms: self.crowded[ms] for ms in instants})
        return pieces


def _carved(start: int, end: int, count: int, instants: dict[int, int]) -> list[tuple[int, int, int]]:
    """The bucket [start, end) of `count` records as pieces: each crowded instant alone, the gaps between them
    sharing the remaining records in proportion to their widths."""
    rest = max(0, count - sum(instants.values()))
    gaps, cursor = [], start
    for ms in instants:
        gaps.append((cursor, ms))
        cursor = ms + 1
    gaps.append((cursor, end))
    width = sum(gap_end - gap_start for gap_start, gap_end in gaps) or 1
    pieces, shared, covered = [], 0, 0
    for (gap_start, gap_end), ms in zip(gaps, [*instants, None]):
        covered += gap_end - gap_start
        share = rest * covered // width - shared
        shared += share
        if gap_end > gap_start:
            pieces.append((gap_start, gap_end, share))
        if ms is not None:
            pieces.append((ms, ms + 1, instants[ms]))
    return pieces


def plan_slices(histogram: TimestampHistogram, window: TimeSlice, per_slice: int) -> list[TimeSlice]:
    """Cut `window` into contiguous slices of about `per_slice` records each, from the (sampled) histogram.

    A piece holding more than `per_slice` records becomes a slice of its own (an instant, where it is a
    crowded instant or the histogram is at 1 ms).
    """
    slices: list[TimeSlice] = []
    cursor, filled = window.start, 0
    for start_ms, end_ms, count in histogram.pieces():
        if filled and filled + count > per_slice:
            boundary = from_ms(start_ms)
            slices.append(TimeSlice(cursor, boundary))
            cursor, filled = boundary, 0
        if count > per_slice:
            start, end = from_ms(start_ms), from_ms(end_ms)
            if cursor is None or cursor < start:
                slices.append(TimeSlice(cursor, start))
            slices.append(TimeSlice(start, end, count))
            cursor = end
            continue
        filled += count
    if not slices or cursor is None or window.end is None or cursor < window.end:
        slices.append(TimeSlice(cursor, window.end))
    return slices
