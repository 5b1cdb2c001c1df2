"""Acumatica's date-times as aware datetimes: an instant where the text has an offset, else profile-zone wall time.

A value without an offset is wall time in the profile time zone: in the autumn's repeated hour the earlier
instant is taken (fold=0, so incremental windows overlap rather than skip), a wall time in the spring gap is
moved forward by the gap. Milliseconds are kept. With ``convert_to_utc`` off the instant is expressed in the
profile zone instead of UTC.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable
from typing import Any
from zoneinfo import ZoneInfo

UTC = datetime.timezone.utc
_CACHE_LIMIT = 50_000


class DateTimeReader:
    """Turns ISO 8601 strings into aware datetimes in the output zone; remembers recent answers."""

    def __init__(self, profile_zone: ZoneInfo, convert_to_utc: bool = True) -> None:
        self.profile_zone = profile_zone
        self.output_zone = UTC if convert_to_utc else profile_zone
        self.cache: dict[str, datetime.datetime] = {}
        """Texts read recently -> their instants: hot loops look here before calling `read` (which fills it)."""

    @staticmethod
    def looks_like_datetime(text: str) -> bool:
        """Cheap shape test: YYYY-MM-DDTHH:MM..."""
        return len(text) >= 16 and text[10] == "T" and text[4] == "-" and text[7] == "-" and text[13] == ":"

    def read(self, text: str) -> datetime.datetime:
        """The instant `text` names; raises ValueError when it is not an ISO date-time."""
        cached = self.cache.get(text)
        if cached is not None:
            return cached
        value = self.parse(text)
        if len(self.cache) >= _CACHE_LIMIT:
            self.cache.clear()
        self.cache[text] = value
        return value

    def parse(self, text: str) -> datetime.datetime:
        """`read` without the cache; raises ValueError when `text` is not an ISO date-time."""
        return self.place(datetime.datetime.fromisoformat(text))

    def place(self, value: datetime.datetime) -> datetime.datetime:
        """A parsed date-time as an instant in the output zone; without an offset it is profile-zone wall time."""
        if value.tzinfo is None:
            value = value.replace(tzinfo=self.profile_zone, fold=0)
        return value.astimezone(self.output_zone)

    def read_column(self, values: Iterable[Any], *, cached: bool = True) -> list:
        """`read_if_datetime` of each text in `values` (other values kept). Uncached for values that seldom repeat,
        such as a probe's timestamps, where the cache only costs."""
        read, cache = (self.read, self.cache) if cached else (self.parse, {})
        return [
            cache.get(value) or read_or_keep(read, value)
            if value.__class__ is str and len(value) > 15 and value[10] == "T" and value[4] == "-"
            else value
            for value in values
        ]

    def read_if_datetime(self, text: str) -> Any:
        """`read(text)` when it has the shape of a date-time, else `text` unchanged."""
        return read_or_keep(self.read, text) if self.looks_like_datetime(text) else text


def read_or_keep(read: Callable[[str], datetime.datetime], text: str) -> Any:
    """``read(text)``, or ``text`` itself when it is not an ISO date-time after all."""
    try:
        return read(text)
    except ValueError:
        return text
