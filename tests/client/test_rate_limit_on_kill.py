"""on_kill while the interrupted thread is inside the per-minute rate limiter: the signal handler's sign-outs
must not wait for the limiter's lock, which that thread holds and cannot release until the handler returns."""

from __future__ import annotations

import contextlib
import signal
import threading

import pytest

from airflow_provider_acumatica.client.errors import AcumaticaClosedError
from airflow_provider_acumatica.hooks.acumatica import AcumaticaHook


class _SelfDeadlockAlarm:
    """The limiter's real lock, failing at once where it would wait forever: taken again by its holder.

    Not a mock of anything that cannot exist here (the deadlock can): it only turns a hung suite into a clear
    failure. Condition() needs acquire/release and, for a lock that is not an RLock, `_is_owned`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.holder: int | None = None

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        if self.holder == threading.get_ident():
            raise AssertionError("deadlock: the rate limiter's lock taken again by the thread holding it")
        taken = self._lock.acquire(blocking, timeout)
        if taken:
            self.holder = threading.get_ident()
        return taken

    def release(self) -> None:
        self.holder = None
        self._lock.release()

    def _is_owned(self) -> bool:
        return self.holder == threading.get_ident()

    __enter__ = acquire

    def __exit__(self, *exc_info) -> None:
        self.release()


def test_on_kill_while_the_main_thread_holds_the_rate_limiters_lock_signs_out_every_session(
    new_sandbox, acumatica_connection
):
    # The limiter reads its clock under its lock: the test's clock sends SIGUSR1 to the main thread from there,
    # once, while the main thread asks for a page. pthread_kill runs the Python handler before it returns, so
    # the handler surely runs with the lock held by the thread it interrupted. It does what on_kill does.
    sandbox = new_sandbox(rows=20, tenants=("Company",))
    hook = AcumaticaHook(acumatica_connection(sandbox, requests_per_minute=997))  # never reached: no waiting
    client = hook.get_conn()
    with contextlib.ExitStack() as leases:  # three signed-in sessions, as three concurrent requests leave them
        for _ in range(3):
            leases.enter_context(client.authenticator.lease())
    limiter, alarm = client.transport.limits.rate, _SelfDeadlockAlarm()
    limiter_clock, limiter_lock = limiter.clock, limiter._released
    limiter._released = threading.Condition(alarm)
    signalled: list[bool] = []
    on_kill_saw: list[tuple[bool, int]] = []  # (main thread held the lock, open sessions after close)

    def on_kill(signum, frame) -> None:
        held = alarm.holder == threading.main_thread().ident
        hook.close()
        on_kill_saw.append((held, sandbox.control.counters()["open_sessions"]))

    def clock_that_kills_once() -> float:
        if not signalled:  # set first: the handler's own requests read this clock too
            signalled.append(True)
            signal.pthread_kill(threading.main_thread().ident, signal.SIGUSR1)
        return limiter_clock()

    previous = signal.signal(signal.SIGUSR1, on_kill)
    limiter.clock = clock_that_kills_once
    try:
        with pytest.raises(AcumaticaClosedError):  # the page's session was signed out under it
            client.get_entity_page("CostCode", top=1)
    finally:
        signal.signal(signal.SIGUSR1, previous)
        limiter.clock, limiter._released = limiter_clock, limiter_lock  # the limiter outlives this test
    counters = sandbox.control.counters()
    assert on_kill_saw == [(True, 0)]
    assert counters["logouts"] == 3 and counters["open_sessions"] == 0
