"""Slice planning: the probe's histogram and the window cut from it into contiguous slices of about one page,
crowded instants alone (pure computation)."""

from __future__ import annotations

import random
from collections import Counter
from datetime import datetime, timezone

import pytest

from airflow_provider_acumatica.extract.slices import (
    ONE_MS,
    TimeSlice,
    TimestampHistogram,
    from_ms,
    plan_slices,
    to_ms,
)

BASE = to_ms(datetime(2026, 1, 1, tzinfo=timezone.utc))


def histogram_of(stamps: list[int], max_buckets: int = 50_000) -> TimestampHistogram:
    histogram = TimestampHistogram(max_buckets)
    for ms in stamps:
        histogram.add(ms)
    return histogram


def contains(part: TimeSlice, ms: int) -> bool:
    instant = from_ms(ms)
    return (part.start is None or part.start <= instant) and (part.end is None or instant < part.end)


def assert_partition(slices: list[TimeSlice], window: TimeSlice, stamps: list[int], per_slice: int) -> None:
    assert slices[0].start == window.start and slices[-1].end == window.end
    for left, right in zip(slices, slices[1:]):
        assert left.end == right.start, "slices must be contiguous"
    for ms in stamps:
        assert sum(contains(part, ms) for part in slices) == 1, f"{from_ms(ms)} must fall in exactly one slice"
    for part in slices:
        inside = sum(contains(part, ms) for ms in stamps)
        assert part.is_instant or inside <= per_slice, f"{part} holds {inside} > {per_slice}"


def test_spread_timestamps_become_slices_of_at_most_one_page():
    stamps = sorted(BASE + step * 1000 for step in range(25))
    window = TimeSlice(from_ms(BASE - 5), from_ms(BASE + 10**6))
    slices = plan_slices(histogram_of(stamps), window, per_slice=4)
    assert_partition(slices, window, stamps, 4)
    assert len(slices) >= 7


def test_a_crowded_instant_gets_a_slice_of_its_own():
    stamps = sorted([BASE + 1, BASE + 2] + [BASE + 50] * 12 + [BASE + 60, BASE + 70])
    window = TimeSlice(None, None)
    slices = plan_slices(histogram_of(stamps), window, per_slice=3)
    assert_partition(slices, window, stamps, 3)
    assert TimeSlice(from_ms(BASE + 50), from_ms(BASE + 50) + ONE_MS) in slices


def test_random_timestamps_with_clusters_are_partitioned_exactly():
    rng = random.Random(7)
    stamps = [BASE + rng.randrange(0, 10**7) for _ in range(3000)] + [BASE + 4242] * 900 + [BASE + 10**7 - 1] * 500
    stamps.sort()
    window = TimeSlice(from_ms(BASE), None)
    slices = plan_slices(histogram_of(stamps), window, per_slice=200)
    assert_partition(slices, window, stamps, 200)


def test_a_window_that_fits_stays_whole():
    window = TimeSlice(from_ms(BASE), from_ms(BASE + 100))
    assert plan_slices(histogram_of([BASE + 1, BASE + 2]), window, per_slice=10) == [window]


def test_a_coarsened_histogram_stays_bounded_and_still_partitions_the_window():
    rng = random.Random(11)
    stamps = sorted(BASE + rng.randrange(0, 10**9) for _ in range(20_000))
    histogram = histogram_of(stamps, max_buckets=500)
    assert len(histogram.counts) <= 500 and histogram.resolution_ms > 1
    window = TimeSlice(None, from_ms(BASE + 10**9))
    slices = plan_slices(histogram, window, per_slice=300)
    assert slices[0].start is None and slices[-1].end == window.end
    for left, right in zip(slices, slices[1:]):
        assert left.end == right.start
    for part in slices:  # a slice may only overflow where one coarse bucket alone holds more than a page
        inside = sum(contains(part, ms) for ms in stamps)
        assert inside <= 300 or part.end - part.start <= histogram.resolution_ms * ONE_MS


@pytest.mark.parametrize("shape", ["spread", "clustered", "one dense run", "two far clusters"])
def test_coarsening_takes_the_smallest_power_of_two_that_fits_and_keeps_every_record(shape):
    """The searched power is checked against every power tried in turn, on timestamps spread through the window
    (the power the span alone gives) and clustered ones (far below it)."""
    rng = random.Random(3)
    stamps = {
        "spread": [BASE + rng.randrange(0, 10**9) for _ in range(5000)],
        "clustered": [BASE + cluster * 10**8 + rng.randrange(0, 3000) for cluster in range(5) for _ in range(1000)],
        "one dense run": [BASE + rng.randrange(0, 4000) for _ in range(5000)],
        "two far clusters": [BASE + rng.randrange(0, 700) for _ in range(2500)]
        + [BASE + 10**11 + rng.randrange(0, 700) for _ in range(2500)],
    }[shape]
    histogram = histogram_of(stamps, max_buckets=400)
    smallest = next(shift for shift in range(64) if len({ms >> shift for ms in stamps}) <= 400)
    assert histogram.resolution_ms == 1 << smallest
    assert sum(histogram.counts.values()) == len(stamps)
    assert histogram.counts == Counter(ms >> smallest for ms in stamps)


def test_a_mass_update_inside_a_coarse_bucket_is_planned_as_an_instant_of_its_own():
    # Coarsened, the histogram alone would plan the instant's whole bucket as one slice that overflows when
    # fetched (a wasted request and a split per mass update). Counted exactly from the probe pages, the instant
    # becomes its own slice, and the rest of its bucket still falls in slices of at most a page.
    rng = random.Random(5)
    crowd = BASE + 123_456_789
    stamps = [BASE + rng.randrange(0, 10**9) for _ in range(20_000)] + [crowd] * 700
    rng.shuffle(stamps)
    histogram = TimestampHistogram(max_buckets=500)
    for start in range(0, len(stamps), 5000):  # probe pages in server order: the crowd is spread over all
        histogram.add_page([from_ms(ms) for ms in stamps[start : start + 5000]])
    assert histogram.resolution_ms > 1 and list(histogram.crowded) == [crowd]
    assert (
        len(histogram.counts) <= 500 < len({ms // (histogram.resolution_ms // 2) for ms in stamps})
    )  # no coarser than needed
    assert 600 <= histogram.crowded[crowd] <= 700  # pages holding only a few of its records leave those uncounted
    assert sum(count for _, _, count in histogram.pieces()) == len(stamps)
    window = TimeSlice(None, from_ms(BASE + 10**9))
    slices = plan_slices(histogram, window, per_slice=300)
    assert TimeSlice(from_ms(crowd), from_ms(crowd) + ONE_MS) in slices
    assert slices[0].start is None and slices[-1].end == window.end
    assert all(left.end == right.start for left, right in zip(slices, slices[1:]))
    bucket = crowd // histogram.resolution_ms * histogram.resolution_ms
    for part in slices:
        if part.start is not None and from_ms(bucket) <= part.start < from_ms(bucket + histogram.resolution_ms):
            assert part.is_instant or sum(contains(part, ms) for ms in stamps) <= 300


def test_split_at_makes_progress_on_every_side():
    part = TimeSlice(from_ms(BASE), from_ms(BASE + 100))
    pieces = part.split_at(from_ms(BASE + 40))
    assert pieces == [
        TimeSlice(from_ms(BASE), from_ms(BASE + 40)),
        TimeSlice(from_ms(BASE + 40), from_ms(BASE + 41)),
        TimeSlice(from_ms(BASE + 41), from_ms(BASE + 100)),
    ]
    assert part.split_at(from_ms(BASE))[0] == TimeSlice(from_ms(BASE), from_ms(BASE + 1))
