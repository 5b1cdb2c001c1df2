"""close() racing sign-ins over real HTTP: a sign-in or a 401 under way when the sessions are signed out must
not leave a session open. The sandbox holds the request in a slow fault until the test has closed the client."""

from __future__ import annotations

import threading

import pytest

from airflow_provider_acumatica.client.errors import AcumaticaClosedError, AcumaticaError
from airflow_provider_acumatica.hooks.acumatica import AcumaticaHook

LOGIN = "/entity/auth/login"
COST_CODES = "/entity/Default/"


def _close_while_held(sandbox, hook: AcumaticaHook, path_contains: str) -> list:
    """Read one page on a worker thread while the sandbox holds its request to `path_contains`; close the hook
    (sequentially, as on_kill does) once the request is surely held, then release it. Returns what the read
    ended with: its records, or the error it raised."""
    client = hook.get_conn()
    outcome: list = []

    def read() -> None:
        try:
            outcome.append(client.get_entity_page("CostCode", top=1))
        except AcumaticaError as error:
            outcome.append(error)

    sandbox.control.inject_fault("slow", path_contains=path_contains, delay_ms=600_000)
    worker = threading.Thread(target=read, name="held-read")
    worker.start()
    try:
        assert sandbox.control.wait_held(1) == 1
        hook.close()
    finally:
        sandbox.control.clear_faults()
        worker.join()
    return outcome


@pytest.mark.parametrize("expired_session", [False, True], ids=["first sign-in", "renewal after a 401"])
def test_a_sign_in_under_way_when_close_runs_signs_its_session_out_and_fails(
    new_sandbox, acumatica_connection, expired_session
):
    # close() finds no signed-in session to end (the only one is still signing in, held by the sandbox); the
    # sign-in, once answered, must end that session itself instead of using it.
    sandbox = new_sandbox(rows=20, tenants=("Company",))
    hook = AcumaticaHook(acumatica_connection(sandbox))
    if expired_session:  # the next request meets a 401 and signs in again
        hook.get_conn().get_entity_page("CostCode", top=1)
        sandbox.control.advance_clock(sandbox.settings.session_idle_seconds)
    outcome = _close_while_held(sandbox, hook, LOGIN)
    assert len(outcome) == 1 and isinstance(outcome[0], AcumaticaClosedError)
    counters = sandbox.control.counters()
    assert counters["logins"] == 1 + expired_session and counters["logouts"] == 1
    assert counters["open_sessions"] == 0


def test_a_401_after_close_fails_without_signing_in_again(new_sandbox, acumatica_connection):
    # A read is held after its session was leased; close() signs that session out under it, so the read meets
    # a 401 once released: renewing would open a session nobody signs out.
    sandbox = new_sandbox(rows=20, tenants=("Company",))
    hook = AcumaticaHook(acumatica_connection(sandbox))
    outcome = _close_while_held(sandbox, hook, COST_CODES)
    assert len(outcome) == 1 and isinstance(outcome[0], AcumaticaClosedError)
    counters = sandbox.control.counters()
    assert counters["logins"] == counters["logouts"] == 1 and counters["open_sessions"] == 0
