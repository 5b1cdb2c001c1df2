"""Signing out over real HTTP: all sessions at once at the normal end of work, one by one from on_kill within
its deadline."""

from __future__ import annotations

import contextlib
import logging
import signal
import threading

from airflow_provider_acumatica.hooks.acumatica import AcumaticaHook

LOGOUT = "/entity/auth/logout"


def _hook_with_sessions(sandbox, acumatica_connection, sessions: int = 3, **options) -> AcumaticaHook:
    """A hook whose client holds `sessions` signed-in sessions (leased at once, as concurrent requests do)."""
    hook = AcumaticaHook(acumatica_connection(sandbox, max_concurrent_requests=sessions, **options))
    authenticator = hook.get_conn().authenticator
    with contextlib.ExitStack() as leases:
        for _ in range(sessions):
            leases.enter_context(authenticator.lease())
    assert sandbox.control.counters()["open_sessions"] == sessions
    return hook


def test_a_parallel_close_signs_out_every_session_at_once_and_a_later_close_sends_nothing(
    new_sandbox, acumatica_connection
):
    # Each sign-out takes 300 ms on the server, so sign-outs sent together are surely there together;
    # one after another they never overlap (peak 1).
    sandbox = new_sandbox(rows=20, tenants=("Company",))
    hook = _hook_with_sessions(sandbox, acumatica_connection)
    sandbox.control.inject_fault("slow", count=3, path_contains=LOGOUT, delay_ms=300)
    sandbox.control.reset_counters()
    hook.close(parallel=True)
    counters = sandbox.control.counters()
    assert counters["logouts"] == 3 and counters["open_sessions"] == 0
    assert counters["peak_concurrency"] > 1  # the sign-outs were on the server at the same time

    sandbox.control.reset_counters()
    hook.close()  # what on_kill does if it comes afterwards: nothing left to sign out
    assert sandbox.control.counters()["requests"] == 0


def test_parallel_sign_outs_absorb_429s_from_a_licence_allowing_fewer_concurrent_requests(
    new_sandbox, acumatica_connection
):
    # The licence runs 1 request at a time, the connection 3: two of three sign-outs at once meet a 429 and
    # must be retried within the connection's normal budget (8 retries), or their sessions stay open.
    sandbox = new_sandbox(rows=20, tenants=("Company",), max_concurrent=1)
    hook = _hook_with_sessions(sandbox, acumatica_connection)
    sandbox.control.inject_fault("slow", count=3, path_contains=LOGOUT, delay_ms=100)
    sandbox.control.reset_counters()
    hook.close(parallel=True)
    counters = sandbox.control.counters()
    assert counters["throttled_429"] > 0
    assert counters["logouts"] == 3 and counters["open_sessions"] == 0


def test_parallel_sign_outs_hold_a_concurrency_permit_each(new_sandbox, acumatica_connection):
    # Two of the connection's three permits are taken (by other work of the process): the three sign-outs,
    # slow enough on the server to overlap otherwise, go one at a time through the permit left.
    sandbox = new_sandbox(rows=20, tenants=("Company",))
    hook = _hook_with_sessions(sandbox, acumatica_connection)
    permits = hook.get_conn().transport.limits.permits
    sandbox.control.inject_fault("slow", count=3, path_contains=LOGOUT, delay_ms=100)
    sandbox.control.reset_counters()
    assert permits.acquire(blocking=False) and permits.acquire(blocking=False)
    try:
        hook.close(parallel=True)
    finally:
        permits.release()
        permits.release()
    counters = sandbox.control.counters()
    assert counters["logouts"] == 3 and counters["open_sessions"] == 0 and counters["peak_concurrency"] == 1


class _OnThirdWait(logging.Handler):
    """Sends SIGUSR1 to the main thread once three sign-outs wait for a concurrency permit (verbosity 4 says so)."""

    def __init__(self) -> None:
        super().__init__()
        self.waiting = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "waiting for a free concurrent-request slot" in record.getMessage():
            self.waiting += 1  # one handler lock serialises emit(): no race on the count
            if self.waiting == 3:
                signal.pthread_kill(threading.main_thread().ident, signal.SIGUSR1)


def test_on_kill_during_a_parallel_close_neither_waits_nor_signs_out_twice(new_sandbox, acumatica_connection, caplog):
    # The race of a real kill, made deterministic: the test holds every permit, so the three sign-out threads
    # have each claimed their session and wait for a permit when a signal interrupts the main thread, which
    # waits for them inside close(parallel=True). The signal handler does what Airflow's on_kill does,
    # hook.close(); had it waited for those threads (which need the permits the handler gives back only
    # afterwards), this test would hang.
    sandbox = new_sandbox(rows=20, tenants=("Company",))
    hook = _hook_with_sessions(sandbox, acumatica_connection, verbosity=4)
    permits = hook.get_conn().transport.limits.permits
    for _ in range(3):
        assert permits.acquire(blocking=False)
    requests_during_on_kill = []

    def on_kill(signum, frame) -> None:
        hook.close()
        requests_during_on_kill.append(sandbox.control.counters()["requests"])
        for _ in range(3):
            permits.release()

    watcher, logger = _OnThirdWait(), hook.get_conn().log
    previous = signal.signal(signal.SIGUSR1, on_kill)
    sandbox.control.reset_counters()
    logger.addHandler(watcher)
    try:
        with caplog.at_level(logging.INFO, logger=logger.name):
            hook.close(parallel=True)
    finally:
        logger.removeHandler(watcher)
        signal.signal(signal.SIGUSR1, previous)
    counters = sandbox.control.counters()
    assert requests_during_on_kill == [0]  # on_kill left the three sessions to the threads signing them out
    assert counters["requests"] == counters["logouts"] == 3 and counters["open_sessions"] == 0


def _close_with_hang_guard(hook: AcumaticaHook) -> None:
    """hook.close() as on_kill calls it, on a thread: failing, instead of hanging the suite, if it is still
    running after a minute (far beyond its deadline, far below anything the tests make the sandbox wait)."""
    closing = threading.Thread(target=hook.close, name="on-kill-close")
    closing.start()
    closing.join(timeout=60)
    assert not closing.is_alive(), "close() is still signing out past its deadline"


def _left_open_warnings(caplog) -> list[str]:
    return [record.getMessage() for record in caplog.records if "not signed out" in record.getMessage()]


def test_a_sequential_close_gives_up_on_a_sign_out_the_server_holds_and_names_the_sessions_left_open(
    new_sandbox, acumatica_connection, caplog
):
    # The sandbox holds sign-outs and never answers until released. Within its deadline (1 s here instead of
    # 4 s, to keep the test short) close() must stop waiting for the first and not even send the second
    # (or give it only what is left), then name both in one warning, leaving nothing of its own running.
    sandbox = new_sandbox(rows=20, tenants=("Company",))
    hook = _hook_with_sessions(sandbox, acumatica_connection, sessions=2)
    client = hook.get_conn()
    client.authenticator.sign_out_deadline_seconds = 1.0
    sandbox.control.inject_fault("slow", count=2, path_contains=LOGOUT, delay_ms=600_000)
    threads_before = set(threading.enumerate())
    try:
        with caplog.at_level(logging.WARNING, logger=client.log.name):
            _close_with_hang_guard(hook)
        assert sandbox.control.wait_held(1, timeout=0) >= 1  # close() returned while the server still held it
    finally:
        sandbox.control.clear_faults()
    [warning] = _left_open_warnings(caplog)
    assert "2 of 2 sessions not signed out" in warning and "session 1:" in warning and "session 2:" in warning
    left_running = [
        thread for thread in set(threading.enumerate()) - threads_before if "process_request_thread" not in thread.name
    ]  # the sandbox's own request threads aside
    assert left_running == []


def test_a_sequential_close_does_not_wait_for_a_retry_after_beyond_its_deadline(
    new_sandbox, acumatica_connection, caplog
):
    # The sandbox's licence allows 2 requests a minute, spent by the two sign-ins: each sign-out meets a 429
    # whose Retry-After (tens of seconds) ends after the 4 s deadline, so it is tried once and not retried
    # (before the deadline, close() waited up to 60 s for each of its 2 retries, per session).
    sandbox = new_sandbox(rows=20, tenants=("Company",), requests_per_minute=2)
    hook = _hook_with_sessions(sandbox, acumatica_connection, sessions=2)
    sandbox.control.reset_counters()
    with caplog.at_level(logging.WARNING, logger=hook.get_conn().log.name):
        _close_with_hang_guard(hook)
    counters = sandbox.control.counters()
    assert counters["requests"] == counters["throttled_429"] == 2 and counters["open_sessions"] == 2
    [warning] = _left_open_warnings(caplog)
    assert "2 of 2 sessions not signed out" in warning and "HTTP 429" in warning


def test_a_sequential_close_signs_out_every_session_of_a_normal_server(new_sandbox, acumatica_connection, caplog):
    # Sign-outs of 100 ms each, one after another, fit the deadline together: all signed out, no warning.
    sandbox = new_sandbox(rows=20, tenants=("Company",))
    hook = _hook_with_sessions(sandbox, acumatica_connection)
    sandbox.control.inject_fault("slow", count=3, path_contains=LOGOUT, delay_ms=100)
    sandbox.control.reset_counters()
    with caplog.at_level(logging.WARNING, logger=hook.get_conn().log.name):
        _close_with_hang_guard(hook)
    counters = sandbox.control.counters()
    assert counters["logouts"] == 3 and counters["open_sessions"] == 0
    assert _left_open_warnings(caplog) == []
