"""Resilience against a hostile instance: faults, throttling, the licence's limits, and secret-free logs."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from airflow_provider_acumatica.hooks.acumatica import AcumaticaHook
from airflow_provider_acumatica.sandbox import SANDBOX_CLIENT_SECRET, SANDBOX_PASSWORD


def _ids(sandbox, entity="TimeEntry"):
    return sorted(record["id"] for record in sandbox.control.truth("Company", entity)["records"])


def test_thousand_requests_with_ten_percent_faults_return_exactly_the_records(new_sandbox, acumatica_connection):
    sandbox = new_sandbox(rows=1000, tenants=("Company",))
    for kind in ("500", "503", "drop", "truncate"):
        sandbox.control.inject_fault(kind, rate=0.025, path_contains="/TimeEntry")
    conn_id = acumatica_connection(sandbox, max_retries=12, max_concurrent_requests=8)
    with AcumaticaHook(conn_id) as hook, ThreadPoolExecutor(8) as pool:
        # 1,000 one-record pages, fetched by 8 threads so that the test stays quick
        pages = list(pool.map(lambda skip: hook.get_entity_page("TimeEntry", top=1, skip=skip), range(1000)))
    counters = sandbox.control.counters()
    assert sorted(record["id"] for page in pages for record in page) == _ids(sandbox)
    assert all(len(page) == 1 for page in pages)
    assert counters["requests"] >= 1000 + 60  # faults did fire (about 100 expected) and were retried


@pytest.mark.parametrize("auth_type", ["cookie", "oauth2_password"])  # token requests go through the limiter too
def test_requests_per_minute_is_never_exceeded(new_sandbox, acumatica_connection, auth_type):
    sandbox = new_sandbox(rows=100, tenants=("Company",), requests_per_minute=12)
    with AcumaticaHook(acumatica_connection(sandbox, requests_per_minute=12, auth_type=auth_type)) as hook:
        limiter = hook.get_conn().transport.limits.rate
        # Waiting out real minutes does not fit in a test: the limiter reads and "sleeps" on the sandbox's
        # controllable clock instead, which is the clock the sandbox counts its per-minute window on.
        limiter.clock = lambda: sandbox.control.now().timestamp()
        limiter.sleep = lambda seconds: sandbox.control.advance_clock(seconds + 0.01)
        records = list(hook.iter_entity("TimeEntry", page_size=3))  # 34 pages, nearly 3 minutes' worth
    counters = sandbox.control.counters()
    assert len(records) == 100 and counters["throttled_429"] == 0 and counters["requests"] >= 35


def test_429s_are_absorbed_and_the_concurrency_cap_holds(new_sandbox, acumatica_connection):
    # 20 ms per answer: the hook's 3 concurrent requests surely overlap on the server, which allows 1
    sandbox = new_sandbox(rows=400, tenants=("Company",), max_concurrent=1, latency_ms=20)
    conn_id = acumatica_connection(sandbox, max_concurrent_requests=3, max_retries=30)
    with AcumaticaHook(conn_id) as hook, ThreadPoolExecutor(6) as pool:
        pages = list(pool.map(lambda skip: hook.get_entity_page("TimeEntry", top=20, skip=skip), range(0, 400, 20)))
    counters = sandbox.control.counters()
    assert sorted(record["id"] for page in pages for record in page) == _ids(sandbox)
    assert counters["throttled_429"] > 0  # the licence refused some, the hook retried them
    assert counters["peak_open_sessions"] <= 3 and counters["logins"] == counters["logouts"] <= 3


def test_the_concurrency_permit_is_free_while_an_answer_is_decoded(new_sandbox, acumatica_connection):
    # Parsing a page is CPU work of ours: holding the licence's request slot through it would idle the server.
    sandbox = new_sandbox(rows=20, tenants=("Company",))
    with AcumaticaHook(acumatica_connection(sandbox, max_concurrent_requests=1)) as hook:
        client = hook.get_conn()
        permits = client.transport.limits.permits
        free_while_decoding = []

        def decode(body: bytes):
            free_while_decoding.append(permits.acquire(blocking=False))
            permits.release()
            return client.records.loads(body)

        reply = client.transport.request(
            "GET",
            client.entity_path("TimeEntry"),
            authenticator=client.authenticator,
            params={"$top": "5"},
            decode=decode,
        )
    assert len(reply.data) == 5 and free_while_decoding == [True]


def test_api_login_limit_is_waited_out(new_sandbox, acumatica_connection):
    sandbox = new_sandbox(rows=20, tenants=("Company",))
    sandbox.control.inject_fault("login_limit", count=3)
    with AcumaticaHook(acumatica_connection(sandbox)) as hook:
        assert len(hook.get_entity_page("TimeEntry", top=5)) == 5
    counters = sandbox.control.counters()
    assert counters["login_limit_refusals"] == 3 and counters["logins"] == counters["logouts"] == 1


def test_verbosity_3_logs_bodies_but_no_secret(new_sandbox, acumatica_connection, caplog):
    sandbox = new_sandbox(rows=30, tenants=("Company",), token_ttl=3600)
    caplog.set_level(logging.DEBUG)
    secrets = []
    for auth_type in ("cookie", "oauth2_password"):
        with AcumaticaHook(
            acumatica_connection(sandbox, auth_type=auth_type, verbosity=3, conn_id=f"acu_{auth_type}")
        ) as hook:
            first = hook.get_entity_page("TimeEntry", top=2)
            hook.get_odata_page("PMProject", top=1)
            client = hook.get_conn()
            if auth_type == "cookie":
                secrets += [
                    cookie.value
                    for slot in client.authenticator._slots
                    for cookie in slot.jar
                    if len(cookie.value) >= 12
                ]
            else:
                chain = client.token_store.read(hook.settings.token_key)
                secrets += [chain.access_token, chain.refresh_token]
    text = caplog.text
    assert len(secrets) >= 3 and all(secrets)
    for secret in (*secrets, SANDBOX_PASSWORD, SANDBOX_CLIENT_SECRET):
        assert secret not in text
    assert first[0]["Employee"] in text and '"rowNumber"' in text  # response bodies are there
    assert '"name": "admin"' in text  # the sign-in request body is there, its password masked


def test_threads_share_one_hook_safely(shared_sandbox, acumatica_connection):
    shared_sandbox.control.reset_counters()
    conn_id = acumatica_connection(shared_sandbox, max_concurrent_requests=2)
    results: list[list[dict]] = []
    lock = threading.Lock()
    with AcumaticaHook(conn_id) as hook:

        def read(skip):
            page = hook.get_entity_page("TimeEntry", top=30, skip=skip)
            with lock:
                results.append(page)

        with ThreadPoolExecutor(5) as pool:
            list(pool.map(read, range(0, 300, 30)))
    counters = shared_sandbox.control.counters()
    assert sorted(record["id"] for page in results for record in page) == _ids(shared_sandbox)
    assert counters["peak_concurrency"] <= 2 and counters["peak_open_sessions"] <= 2
    assert counters["logins"] == counters["logouts"]
