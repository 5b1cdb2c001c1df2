"""Rate limiter and retry policy on a simulated clock (a minute of real waiting cannot fit in a test)."""

from __future__ import annotations

import random
import threading
import time

from airflow_provider_acumatica.client.transport import RateLimiter, RetryPolicy


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def assert_at_most_per_minute(moments: list[float], limit: int) -> None:
    moments = sorted(moments)
    for index, start in enumerate(moments):
        assert sum(1 for moment in moments[index:] if moment - start < 60) <= limit


def test_no_sliding_minute_exceeds_the_limit():
    clock = FakeClock()
    limiter = RateLimiter(7, clock=clock, sleep=clock.sleep)
    rng = random.Random(3)
    sent = []
    for _ in range(200):
        clock.now += rng.choice([0, 0, 0.5, 3, 20])
        with limiter.slot():
            sent.append(clock.now)
    assert_at_most_per_minute(sent, 7)
    assert sent[-1] - sent[0] >= (200 // 7 - 1) * 60  # it did have to wait


def test_slow_requests_never_crowd_a_servers_minute():
    """The server counts a request at some instant between sending and answer: any instant must do."""
    clock = FakeClock()
    limiter = RateLimiter(5, clock=clock, sleep=clock.sleep)
    rng = random.Random(5)
    arrivals = []
    for _ in range(120):
        clock.now += rng.choice([0, 0, 0.2, 2])
        with limiter.slot():
            sent = clock.now
            clock.now += rng.choice([0.01, 0.5, 8, 45])  # the answer takes this long
            arrivals.append(rng.uniform(sent, clock.now))
    assert_at_most_per_minute(arrivals, 5)


def test_backoff_grows_is_jittered_bounded_and_honours_retry_after():
    policy = RetryPolicy(max_retries=5, max_seconds=100, base_seconds=1.0, cap_seconds=8)
    delays = [policy.delay(attempt, None) for attempt in range(1, 7)]
    assert 0.5 <= delays[0] <= 1 and 1 <= delays[1] <= 2 and 4 <= delays[5] <= 8
    assert policy.delay(1, 3.0) == 3.0 and policy.delay(1, 500.0) == 8
    assert policy.allows(5, started=time.monotonic(), delay=1)
    assert not policy.allows(6, started=time.monotonic(), delay=1)
    assert not policy.allows(1, started=time.monotonic() - 99.5, delay=1)


def test_places_taken_without_waiting_count_in_the_window_answered_or_not():
    clock = FakeClock()
    limiter = RateLimiter(2, clock=clock, sleep=clock.sleep)
    with limiter.slot(wait=False) as waited:  # a sign-out under way from 1000 holds one place of two
        assert waited == 0
        with limiter.slot():
            clock.now += 1  # answered at 1001: the last place is taken until 1061
        with limiter.slot():
            assert clock.now == 1061
    clock.now = 2000
    for _ in range(3):  # the third finds no free place and goes all the same: a sign-out never waits
        with limiter.slot(wait=False) as waited:
            assert waited == 0 and clock.now == 2000
    with limiter.slot():  # 3 places taken at 2000: waits until only one is left in its minute
        assert clock.now == 2060


def test_a_request_waiting_only_for_a_place_taken_without_waiting_gets_one_once_it_is_answered():
    # An answer that did not wait cannot take the lock to wake the waiting: they must look again by themselves
    # (without that, this test hangs in join()).
    clock, looked = FakeClock(), threading.Event()

    def read_clock() -> float:
        looked.set()
        return clock()

    limiter = RateLimiter(1, clock=read_clock, sleep=clock.sleep)
    got_place_at: list[float] = []

    def wait_for_a_place() -> None:
        with limiter.slot():
            got_place_at.append(clock.now)

    waiting = threading.Thread(target=wait_for_a_place, name="waits-for-the-rate-limiter")
    with limiter.slot(wait=False):  # the only place, under way
        waiting.start()
        looked.wait()  # it read the clock under the lock, and holds it until it waits for a place
        with limiter._released:
            pass  # so it waits now
    waiting.join()
    assert got_place_at == [1060]  # answered at 1000, its place free a minute later


def _answer(retry_after_header):
    import requests

    response = requests.Response()
    if retry_after_header is not None:
        response.headers["Retry-After"] = retry_after_header
    return response


def test_retry_after_is_read_as_seconds_or_as_an_http_date():
    from datetime import datetime, timedelta, timezone
    from email.utils import format_datetime

    from airflow_provider_acumatica.client.transport import retry_after

    assert retry_after(_answer("7")) == 7.0 and retry_after(_answer("1.5")) == 1.5
    in_a_minute = format_datetime(datetime.now(timezone.utc) + timedelta(seconds=60), usegmt=True)
    assert 55 <= retry_after(_answer(in_a_minute)) <= 60
    assert retry_after(_answer("Wed, 21 Oct 2015 07:28:00 GMT")) == 0.0  # a date gone by: no wait
    assert retry_after(_answer(None)) is None and retry_after(_answer("soon")) is None
    assert retry_after(_answer("-3")) == 0.0
