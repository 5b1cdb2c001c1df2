"""Licence throttling: requests per minute on the sandbox clock, and concurrent requests, both -> 429."""

from __future__ import annotations

import threading

import requests
from conftest import REST, sign_in


def test_requests_per_minute_refused_with_retry_after_until_the_minute_passes(make_sandbox):
    sandbox = make_sandbox(requests_per_minute=5)
    session = sign_in(sandbox)
    statuses = [session.get(f"{sandbox.url}{REST}/WCCCode").status_code for _ in range(4)]  # the login was the 1st
    refused = session.get(f"{sandbox.url}{REST}/WCCCode")
    assert statuses == [200] * 4 and refused.status_code == 429
    assert int(refused.headers["Retry-After"]) >= 1 and refused.json()["exceptionType"]
    sandbox.control.advance_clock(61)
    assert session.get(f"{sandbox.url}{REST}/WCCCode").status_code == 200
    assert sandbox.control.counters()["throttled_429"] == 1


def test_concurrent_requests_beyond_the_limit_get_429(make_sandbox):
    sandbox = make_sandbox(max_concurrent=2)
    session_cookies = sign_in(sandbox).cookies
    sandbox.control.inject_fault("slow", count=2, delay_ms=30_000, path_contains="WCCCode")
    results, started = [], threading.Barrier(3)

    def slow_request():
        started.wait()
        results.append(requests.get(f"{sandbox.url}{REST}/WCCCode", cookies=session_cookies).status_code)

    threads = [threading.Thread(target=slow_request) for _ in range(2)]
    for thread in threads:
        thread.start()
    started.wait()
    for _ in range(500):  # bounded poll of real server state: both slow requests are in flight
        if sandbox.control.counters()["concurrent_requests"] == 2:
            break
    refused = requests.get(f"{sandbox.url}{REST}/CostCode", cookies=session_cookies)
    sandbox.control.clear_faults()  # releases the slow requests at once
    for thread in threads:
        thread.join()
    assert refused.status_code == 429 and "Retry-After" not in refused.headers
    assert sorted(results) == [200, 200]
    counters = sandbox.control.counters()
    assert counters["peak_concurrency"] == 2 and counters["throttled_429"] == 1
