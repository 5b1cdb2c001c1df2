"""The one retry policy as its loops run it through tenacity: which outcomes are retried, how long each wait is, when
it gives up. The waits are recorded instead of slept (the policy's own rule is under test, not the clock)."""

from __future__ import annotations

import time

import pytest
import tenacity

from airflow_provider_acumatica.utils.retry import RetryPolicy


class Busy(Exception):
    def __init__(self, retry_after: float | None = None) -> None:
        super().__init__("busy")
        self.retry_after = retry_after


def _failing(*errors: Exception, then: str = "done"):
    remaining = list(errors)

    def attempt() -> str:
        if remaining:
            raise remaining.pop(0)
        return then

    return attempt


def test_waits_double_up_to_the_cap_and_the_count_bounds_the_retries():
    waits: list[float] = []
    policy = RetryPolicy(max_retries=4, max_seconds=1000, base_seconds=1.0, cap_seconds=5.0, jitter=False)
    retrying = policy.retrying(tenacity.retry_if_exception_type(Busy), sleep=waits.append)
    assert retrying(_failing(Busy(), Busy(), Busy(), Busy())) == "done"
    assert waits == [1.0, 2.0, 4.0, 5.0]
    with pytest.raises(Busy):  # a fifth retry is beyond the count: the last error is raised as it is
        retrying(_failing(*(Busy() for _ in range(5))))


def test_a_wait_the_server_asks_for_replaces_the_backoff_capped():
    waits: list[float] = []
    policy = RetryPolicy(max_retries=5, max_seconds=1000, base_seconds=1.0, cap_seconds=30.0)
    retrying = policy.retrying(tenacity.retry_if_exception_type(Busy), sleep=waits.append)
    assert retrying(_failing(Busy(retry_after=7.0), Busy(retry_after=500.0))) == "done"
    assert waits == [7.0, 30.0]


def test_an_error_that_is_not_transient_is_raised_at_once():
    waits: list[float] = []
    retrying = RetryPolicy(5, 1000, 1.0).retrying(tenacity.retry_if_exception_type(Busy), sleep=waits.append)
    with pytest.raises(KeyError):
        retrying(_failing(KeyError("permanent")))
    assert waits == []


def test_no_retry_whose_wait_would_end_past_the_time_budget_or_the_deadline():
    waits: list[float] = []
    over_budget = RetryPolicy(None, max_seconds=10, base_seconds=4.0, jitter=False)
    with pytest.raises(Busy):  # no time passes in the recorded waits: the third, 16 s, would end past the 10 s
        over_budget.retrying(tenacity.retry_if_exception_type(Busy), sleep=waits.append)(_failing(*[Busy()] * 3))
    assert waits == [4.0, 8.0]
    waits.clear()
    past_deadline = RetryPolicy(None, max_seconds=1000, base_seconds=4.0, jitter=False)
    retrying = past_deadline.retrying(
        tenacity.retry_if_exception_type(Busy), deadline=time.monotonic() + 3, sleep=waits.append
    )
    with pytest.raises(Busy):
        retrying(_failing(Busy()))  # its first wait, 4 s, would end past the deadline 3 s away
    assert waits == []


def test_an_unwanted_result_is_polled_again_until_the_budget_ends():
    answers = iter([202, 202, 204])
    waits: list[float] = []
    polls = RetryPolicy(None, max_seconds=1000, base_seconds=0.5, cap_seconds=10.0, jitter=False)
    assert (
        polls.retrying(tenacity.retry_if_result(lambda status: status == 202), sleep=waits.append)(
            lambda: next(answers)
        )
        == 204
    )
    assert waits == [0.5, 1.0]
    with pytest.raises(tenacity.RetryError):
        RetryPolicy(2, 1000, 0.5, jitter=False).retrying(
            tenacity.retry_if_result(lambda status: status == 202), sleep=waits.append
        )(lambda: 202)
