"""Rate limiter and retry policy on a simulated clock (a minute of real waiting cannot fit in a test)."""

from __future__ import annotations

import random
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
