"""Pacing of one connection's requests: a concurrency cap and a requests-per-minute limit, shared in a process.

Every client of the same connection in a process shares one `ConnectionLimits`, so that the threads of a task
together stay inside the licence.
"""

from __future__ import annotations

import bisect
import collections
import contextlib
import threading
import time
from collections.abc import Callable, Iterator

from airflow_provider_acumatica.client.settings import AcumaticaSettings

_WINDOW_SECONDS = 60.0
_UNWAITED_RECHECK_SECONDS = 0.5
HANDOFF_SECONDS = 0.001
"""How long a thread giving back a concurrency permit lets a thread waiting for it go first (see ConnectionLimits)."""


class RateLimiter:
    """At most `limit` requests in any sliding 60-second window, as the server counts them.

    A request holds its place from the moment it is sent until 60 s after its answer arrived: the server
    counts it at some instant in between, so however long requests travel (a loaded worker, a slow
    network), no minute of the server's ever sees more than `limit` of them.

    A request that must not wait (a sign-out, perhaps from on_kill's signal handler) takes a place at once,
    free or not, and without the lock: the handler runs on the main thread, which it may have interrupted
    inside this limiter, holding the lock it would then wait for forever. Its place still counts, so the
    requests that do wait stay within the limit; at worst the sign-out itself is one too many, which the
    server delays or answers with a 429 that its retries absorb.
    """

    def __init__(self, limit: int, clock: Callable[[], float] = time.monotonic, sleep=time.sleep) -> None:
        self.limit = limit
        self.clock = clock  # replaceable, like `sleep`, so the window can follow another clock
        self.sleep = sleep
        self._finished: collections.deque[float] = collections.deque()
        self._in_flight = 0
        self._released = threading.Condition(threading.Lock())
        # places of requests that did not wait: [answer time, None until answered], added without the lock
        # (a deque's append is atomic, also against a signal handler) and moved to `_finished` under it
        self._unwaited: collections.deque[list[float | None]] = collections.deque()

    @contextlib.contextmanager
    def slot(self, *, wait: bool = True) -> Iterator[float]:
        """Hold a place for one request while it is sent and answered; yields the seconds waited for it.
        `wait=False` takes a place at once without touching the lock (see the class)."""
        if not wait:
            place: list[float | None] = [None]
            self._unwaited.append(place)
            try:
                yield 0.0
            finally:
                place[0] = self.clock()
            return
        waited = self._acquire()
        try:
            yield waited
        finally:
            with self._released:
                self._in_flight -= 1
                self._finished.append(self.clock())
                self._released.notify_all()

    def _acquire(self) -> float:
        waited = 0.0
        while True:
            with self._released:
                now = self.clock()
                self._collect_unwaited()
                while self._finished and now - self._finished[0] >= _WINDOW_SECONDS:
                    self._finished.popleft()
                if self._in_flight + len(self._unwaited) + len(self._finished) < self.limit:
                    self._in_flight += 1
                    return waited
                if not self._finished:  # every place is held by a request still under way
                    # one that did not wait cannot take the lock to say it is done: look again after a while
                    self._released.wait(_UNWAITED_RECHECK_SECONDS if self._unwaited else None)
                    continue
                pause = _WINDOW_SECONDS - (now - self._finished[0])
            self.sleep(pause)
            waited += pause

    def _collect_unwaited(self) -> None:
        """Move the answered places of requests that did not wait (oldest first) among the finished ones, in
        answer-time order; one still under way keeps those behind it where they are, counted all the same."""
        while self._unwaited and self._unwaited[0][0] is not None:
            bisect.insort(self._finished, self._unwaited.popleft()[0])


class ConnectionLimits:
    """The per-connection, per-process concurrency cap and rate limiter."""

    _registry: dict[tuple, ConnectionLimits] = {}
    _registry_lock = threading.Lock()

    def __init__(self, max_concurrent: int, requests_per_minute: int | None) -> None:
        self.permits = threading.BoundedSemaphore(max_concurrent)
        self.rate = RateLimiter(requests_per_minute) if requests_per_minute else None
        self._waiting = 0
        self._waiting_lock = threading.Lock()

    def wait_for_permit(self) -> None:
        """Take a concurrency permit, waiting for one, counted among the waiting meanwhile."""
        with self._waiting_lock:
            self._waiting += 1
        try:
            self.permits.acquire()
        finally:
            with self._waiting_lock:
                self._waiting -= 1

    def give_back_permit(self) -> None:
        """Give a permit back; to a thread that waits for it, step aside for a moment (HANDOFF_SECONDS), so that it
        sends its request before this thread decodes its answer. Decoding a page holds the GIL for tens of
        milliseconds (msgspec parses it in one call), and the licence's requests tend to end together: without
        it, the freed slot idled through one or more decodes per request (benchmarks/bench_extract_load.py)."""
        self.permits.release()
        if self._waiting:  # read without the lock: a stale count costs one millisecond, or one handoff
            time.sleep(HANDOFF_SECONDS)

    @classmethod
    def of(cls, settings: AcumaticaSettings) -> ConnectionLimits:
        key = (settings.conn_id, settings.instance_url, settings.max_concurrent_requests, settings.requests_per_minute)
        with cls._registry_lock:
            if key not in cls._registry:
                cls._registry[key] = cls(settings.max_concurrent_requests, settings.requests_per_minute)
            return cls._registry[key]
