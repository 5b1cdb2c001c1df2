"""Seeded timestamps of the generated data: a year before the anchor, DST-transition instants, clusters."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo

DST_ZONES = ("America/New_York", "America/Los_Angeles", "Europe/Berlin", "Europe/London", "Australia/Sydney")
YEAR_MS = 365 * 24 * 3600 * 1000
_DST_OFFSETS_MINUTES = (-90, -59, -30, -1, 0, 1, 30, 59, 90)


def default_anchor() -> datetime:
    """Today's UTC midnight: data generated on the same day with the same seed is identical."""
    return datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)


@lru_cache(maxsize=8)
def dst_transitions(start: datetime, end: datetime, zones=DST_ZONES) -> tuple[datetime, ...]:
    """UTC instants in [start, end) at which one of `zones` changes its offset (spring gaps, autumn repeats)."""
    found = []
    for name in zones:
        zone = ZoneInfo(name)
        moment = start.replace(minute=0, second=0, microsecond=0)
        previous = moment.astimezone(zone).utcoffset()
        while moment < end:
            moment += timedelta(hours=1)
            offset = moment.astimezone(zone).utcoffset()
            if offset != previous:
                found.append(moment)
                previous = offset
    return tuple(sorted(found))


class Timeline:
    """Where generated records' timestamps fall: uniform over the year, plus DST instants and clusters."""

    def __init__(self, anchor: datetime, rng: random.Random) -> None:
        self.anchor = anchor
        self.start = anchor - timedelta(milliseconds=YEAR_MS)
        self._rng = rng
        self.dst_instants = [
            transition + timedelta(minutes=minutes, milliseconds=rng.randrange(1000))
            for transition in dst_transitions(self.start, anchor)
            for minutes in _DST_OFFSETS_MINUTES
        ]

    def random_stamp(self) -> datetime:
        """A uniformly random millisecond of the past year."""
        return self.start + timedelta(milliseconds=self._rng.randrange(YEAR_MS))

    def stamps(self, count: int, cluster_sizes: list[int]) -> list[datetime]:
        """`count` timestamps: the DST instants (a few records each), `cluster_sizes` clusters of one exact
        shared stamp each, and uniform random stamps for the rest; in random order."""
        stamps = []
        for size in cluster_sizes:
            stamps.extend([self.random_stamp()] * size)
        for instant in self.dst_instants:
            stamps.extend([instant] * min(3, max(0, count - len(stamps)) // 10))
        stamps.extend(self.random_stamp() for _ in range(count - len(stamps)))
        del stamps[count:]
        self._rng.shuffle(stamps)
        return stamps


def cluster_sizes(rows: int, rng: random.Random) -> list[int]:
    """Clusters of one shared timestamp in a large table: one larger than a 1,000-record page from 2,500
    rows on, a second from 5,000, one more per 100,000; a small one below 2,500 rows."""
    if rows < 2500:
        return [rows // 5] if rows >= 50 else []
    sizes = [1000 + rng.randint(37, 250)]
    if rows >= 5000:
        sizes.append(1000 + rng.randint(1, 500))
    sizes.extend(1000 + rng.randint(500, 4000) for _ in range(rows // 100_000))
    return sizes
