"""Licence throttling: requests per minute (on the sandbox clock) and concurrent requests, both -> 429; and the
server work a list answer costs per record, spent while the request holds its concurrency slot."""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from datetime import datetime, timedelta

from airflow_provider_acumatica.sandbox.counters import Counters
from airflow_provider_acumatica.sandbox.errors import ApiError

_MINUTE = timedelta(minutes=1)
_answer = threading.local()
"""Records the list answer of this thread's request holds (each request is answered on a thread of its own)."""


def note_rendered(records: int) -> None:
    """Called where a list answer's page is cut: its records are the server work the request is charged."""
    _answer.records = getattr(_answer, "records", 0) + records


class Throttle:
    """Admits a request or refuses it with 429; a per-minute refusal carries Retry-After, a concurrency one not."""

    def __init__(
        self, requests_per_minute: int | None, max_concurrent: int | None, counters: Counters, ms_per_record: float = 0
    ) -> None:
        self.requests_per_minute = requests_per_minute
        self.ms_per_record = ms_per_record
        self.max_concurrent = max_concurrent
        self.counters = counters
        self._recent: deque[datetime] = deque()
        self._in_flight = 0
        self._lock = threading.Lock()

    def enter(self, now: datetime) -> None:
        """Count the request in, or raise ApiError(429) and count the refusal."""
        with self._lock:
            if self.requests_per_minute is not None:
                while self._recent and now - self._recent[0] >= _MINUTE:
                    self._recent.popleft()
                if len(self._recent) >= self.requests_per_minute:
                    wait = max(1, math.ceil((self._recent[0] + _MINUTE - now).total_seconds()))
                    self._refuse(
                        f"The limit of {self.requests_per_minute} requests per minute has been reached.",
                        {"Retry-After": str(wait)},
                    )
            if self.max_concurrent is not None and self._in_flight >= self.max_concurrent:
                self._refuse(f"The limit of {self.max_concurrent} concurrent API requests has been reached.", {})
            if self.requests_per_minute is not None:
                self._recent.append(now)
            self._in_flight += 1
            self.counters.set("concurrent_requests", self._in_flight)
        _answer.records = 0

    def charge(self) -> None:
        """Count the records this request's list answer rendered and spend their server work (slot still held)."""
        records, _answer.records = getattr(_answer, "records", 0), 0
        if records:
            self.counters.add("records_rendered", records)
            if self.ms_per_record:
                time.sleep(records * self.ms_per_record / 1000)

    def leave(self) -> None:
        with self._lock:
            self._in_flight -= 1
            self.counters.set("concurrent_requests", self._in_flight)

    def _refuse(self, detail: str, headers: dict[str, str]) -> None:
        self.counters.add("throttled_429")
        raise ApiError(429, detail, message="The request has been declined by the licence limits.", headers=headers)
