"""Sign-in rides out what is transient (a 500 that does not blame the credentials, the licence's seat limit for
as long as a leaked session may hold its seat) and fails at once on refused credentials; over HTTP to the sandbox."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from airflow_provider_acumatica.client.errors import AcumaticaAuthError
from airflow_provider_acumatica.client.sign_in import login_retryable
from airflow_provider_acumatica.extract.slices import TimeSlice
from airflow_provider_acumatica.extract.slicing import SliceReader
from airflow_provider_acumatica.hooks.acumatica import AcumaticaHook


def test_a_sign_in_answered_500_is_retried(new_sandbox, acumatica_connection):
    sandbox = new_sandbox(rows=20, tenants=("Company",))
    sandbox.control.inject_fault("500", count=2, path_contains="/entity/auth/login")
    with AcumaticaHook(acumatica_connection(sandbox)) as hook:
        assert len(hook.get_entity_page("TimeEntry", top=5)) == 5
    counters = sandbox.control.counters()
    assert counters["logins"] == counters["logouts"] == 1


def test_a_500_saying_the_credentials_are_invalid_is_not_retried():
    assert login_retryable(500, "An error has occurred. - Invalid credentials. Please try again.") is False
    assert login_retryable(500, "An error has occurred. - Object reference not set to an instance of an object.")
    assert login_retryable(None, "ConnectionError")
    assert login_retryable(429, "API Login Limit") is False  # waited for by the sessions, not the transport


def test_wrong_password_fails_at_once_as_permanent(new_sandbox, acumatica_connection):
    sandbox = new_sandbox(rows=20, tenants=("Company",))
    with AcumaticaHook(acumatica_connection(sandbox, password="wrong")) as hook:
        with pytest.raises(AcumaticaAuthError, match="Check the connection's username, password") as refused:
            hook.get_entity_page("TimeEntry", top=5)
    assert refused.value.permanent and sandbox.control.counters()["requests"] <= 1


def _wait_for(condition, seconds: float = 30.0) -> None:
    """Poll a condition of another process (the sandbox's counters) until it holds, within a deadline."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


def test_api_login_limit_waits_for_a_seat_and_says_why(new_sandbox, acumatica_connection, caplog):
    sandbox = new_sandbox(rows=20, tenants=("Company",), max_sessions=1)
    holder = AcumaticaHook(acumatica_connection(sandbox, conn_id="holder"))
    holder.get_entity_page("TimeEntry", top=1)  # takes the only seat
    pages = []
    with AcumaticaHook(acumatica_connection(sandbox, login_limit_wait_seconds=60, backoff_seconds=0.05)) as hook:
        reader = threading.Thread(target=lambda: pages.append(hook.get_entity_page("TimeEntry", top=5)))
        with caplog.at_level(logging.WARNING):
            reader.start()
            _wait_for(lambda: sandbox.control.counters()["login_limit_refusals"] >= 2)
            holder.close(parallel=True)  # the seat frees up while the reader waits
            reader.join(60)
    assert pages and len(pages[0]) == 5
    assert any(
        "API Login Limit" in record.getMessage() and "login_limit_wait_seconds=60" in record.getMessage()
        for record in caplog.records
    )


def test_api_login_limit_gives_up_after_the_configured_wait(new_sandbox, acumatica_connection):
    sandbox = new_sandbox(rows=20, tenants=("Company",), max_sessions=1)
    with AcumaticaHook(acumatica_connection(sandbox, conn_id="holder")) as holder:
        holder.get_entity_page("TimeEntry", top=1)
        with AcumaticaHook(acumatica_connection(sandbox, login_limit_wait_seconds=0.3, backoff_seconds=0.05)) as hook:
            with pytest.raises(AcumaticaAuthError, match="Raise the connection's login_limit_wait_seconds") as taken:
                hook.get_entity_page("TimeEntry", top=5)
    assert not taken.value.permanent


def test_a_sign_in_failure_during_the_probe_is_not_blamed_on_the_probe_size():
    sign_in_failed = AcumaticaAuthError("POST", "/entity/auth/login", 500, "sign-in failed through every retry")

    def timestamps(start, end, *, top, skip):
        raise sign_in_failed

    reader = SliceReader(
        lambda *args, **kwargs: None,
        timestamps=timestamps,
        timestamp_field="LastModifiedDateTime",
        page_size=100,
        probe_page_size=1000,
    )
    with pytest.raises(AcumaticaAuthError) as raised:
        list(reader.read(TimeSlice(None, None)))
    assert raised.value is sign_in_failed and "probe_page_size" not in str(raised.value)
