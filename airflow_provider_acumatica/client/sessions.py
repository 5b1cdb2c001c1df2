"""Signing in with the connection's login and password: cookie sessions for REST, HTTP Basic for OData.

Cookie sessions are signed in lazily, one per concurrently running request at most (so never more than
`max_concurrent_requests` licence slots), reused while the client lives, and ALWAYS signed out by `close()`:
one after another on the calling thread (safe in a signal handler, such as on_kill) within
`SIGN_OUT_DEADLINE_SECONDS` in all, or, with `parallel=True` at the normal end of work, all at once. A sign-in
still under way then signs its own session out and fails with AcumaticaClosedError; a 401 after close() fails
so without signing in again. A sign-in refused with "API Login Limit" waits for a seat, backing off, up to
`login_limit_wait_seconds`.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests
import tenacity
from requests.cookies import RequestsCookieJar, extract_cookies_to_jar

from airflow_provider_acumatica.client.errors import AcumaticaApiError, AcumaticaAuthError, AcumaticaClosedError
from airflow_provider_acumatica.client.masking import SecretMasker
from airflow_provider_acumatica.client.settings import AcumaticaSettings
from airflow_provider_acumatica.client.sign_in import is_login_limit, login_retryable, seats_taken_error, sign_in_error
from airflow_provider_acumatica.client.transport import Transport
from airflow_provider_acumatica.utils.retry import RetryPolicy

LOGIN_PATH = "/entity/auth/login"
LOGOUT_PATH = "/entity/auth/logout"

SIGN_OUT_DEADLINE_SECONDS = 4.0
"""How long a sequential close (on_kill's) may take to sign out all its sessions together: Airflow's supervisor
SIGKILLs a task 5 s after its SIGTERM (`escalation_delay` in airflow.sdk.execution_time.supervisor), and on_kill
must return before that, with a little time left to do so. Each sign-out's timeout is cut to what is left and a
retry happens only if its wait ends in time; the sessions still open then are named in one warning."""


class SessionSlot:
    """One signed-in cookie session; its cookies live here, not in the shared requests.Session."""

    def __init__(self, masker: SecretMasker, number: int) -> None:
        self.number = number  # names the session in warnings (its cookies are secret)
        self.jar = RequestsCookieJar()
        self.signed_in = False
        # held while the session is being signed out: whoever fails to take it leaves the sign-out to its
        # holder, another thread or this one interrupted by a signal (a non-reentrant lock tells them apart)
        self.ending = threading.Lock()
        self._masker = masker

    def apply(self, request_kwargs: dict[str, Any]) -> None:
        request_kwargs["cookies"] = self.jar

    def absorb(self, response: requests.Response) -> None:
        extract_cookies_to_jar(self.jar, response.request, response.raw)
        # Session and auth cookies are long random strings; short ones (Locale, UserBranch, CompanyID) are not
        # secret and masking them would garble every log line that contains, say, "1".
        self._masker.add(*(cookie.value for cookie in self.jar if cookie.value and len(cookie.value) >= 12))


class CookieSessions:
    """A pool of cookie sessions, at most one per concurrent request, each signed out on close."""

    sign_out_deadline_seconds = SIGN_OUT_DEADLINE_SECONDS  # of a sequential close; tests may shorten it

    def __init__(self, settings: AcumaticaSettings, transport: Transport, masker: SecretMasker) -> None:
        self.settings = settings
        self.transport = transport
        self.masker = masker
        self._slots: list[SessionSlot] = []
        self._idle: list[SessionSlot] = []
        self._changed = threading.Condition(threading.RLock())
        self._closed = False
        self._numbers = itertools.count(1)
        self._sign_in_seconds = 0.0
        """How long the last sign-in took: how long a request waits for a busy session before signing in another."""

    @contextlib.contextmanager
    def lease(self) -> Iterator[SessionSlot]:
        slot = self._take()
        try:
            if not slot.signed_in:
                self._sign_in(slot)
        except BaseException:
            self._discard(slot)
            raise
        try:
            yield slot
        finally:
            self._give_back(slot)

    def renew(self, slot: SessionSlot) -> bool:
        """The session expired (401): sign in again, unless the pool is closed (close() may well be what ended
        it). False: the server's idle clock is unknown here."""
        with self._changed:  # atomic with close()'s listing: a session it lists is not being renewed
            if self._closed:
                raise self._closed_error()
            slot.jar.clear()
            slot.signed_in = False
        self._sign_in(slot)
        return False

    def sign_out_all(self, *, parallel: bool = False, deadline: float | None = None) -> None:
        """Sign out every open session (sessions in use by other threads included), each exactly once.

        By default one after another on the calling thread, without a concurrency permit and with 2 retries:
        it may be a signal handler (on_kill) that interrupted a thread holding a permit or a lock, such as a
        log handler's, which helper threads or a permit would wait for forever. `parallel=True`, for the
        normal end of work only, signs them out all at once on helper threads (a round trip in all rather
        than one per session), each through a concurrency permit with the full retry budget, since sign-outs
        at once can meet a licence allowing fewer concurrent requests (429) and a session left open holds a
        licence slot for ten minutes. The calling thread holds no lock while it waits for them; a sequential
        sign-out meanwhile (on_kill) skips the sessions they are ending instead of waiting. `deadline` (a
        time.monotonic() instant, sequential only) bounds the sign-outs together, see SIGN_OUT_DEADLINE_SECONDS.
        Sessions that could not be signed out are named in one warning.
        """
        with self._changed:
            slots = [slot for slot in self._slots if slot.signed_in]
        if parallel and slots:
            with ThreadPoolExecutor(len(slots), thread_name_prefix="acumatica-sign-out") as pool:
                failures = list(pool.map(lambda slot: self._sign_out(slot, parallel=True), slots))
        else:
            failures = [self._sign_out(slot, parallel=False, deadline=deadline) for slot in slots]
        self._warn_left_open(slots, failures, within_deadline=deadline is not None)

    def close(self, *, parallel: bool = False) -> None:
        """Refuse new sessions from now on and sign out everything (see `sign_out_all` for `parallel`); one after
        another, within `sign_out_deadline_seconds` in all, unless `parallel`."""
        deadline = None if parallel else time.monotonic() + self.sign_out_deadline_seconds
        with self._changed:
            self._closed = True
            self._changed.notify_all()
        self.sign_out_all(parallel=parallel, deadline=deadline)

    @property
    def open_sessions(self) -> int:
        with self._changed:
            return sum(slot.signed_in for slot in self._slots)

    def _take(self) -> SessionSlot:
        """An idle session, else a new one (up to one per concurrent request) — but only once a busy session has not
        come free within the time a sign-in takes: a sign-in that would not save time costs a licence seat, two
        round trips and a sign-out for nothing (a quiet run, the few requests of a small read)."""
        patience: float | None = None
        with self._changed:
            while True:
                if self._closed:
                    raise self._closed_error()
                if self._idle:
                    return self._idle.pop()
                if len(self._slots) < self.settings.max_concurrent_requests:
                    patience = time.monotonic() + self._sign_in_seconds if patience is None else patience
                    if not self._slots or time.monotonic() >= patience:
                        slot = SessionSlot(self.masker, next(self._numbers))
                        self._slots.append(slot)
                        return slot
                    self._changed.wait(patience - time.monotonic())
                    continue
                self._changed.wait()

    def _give_back(self, slot: SessionSlot) -> None:
        with self._changed:
            if slot in self._slots:
                self._idle.append(slot)
            self._changed.notify()

    def _discard(self, slot: SessionSlot) -> None:
        with self._changed:
            if slot in self._slots:
                self._slots.remove(slot)
            self._changed.notify()

    def _sign_in(self, slot: SessionSlot) -> None:
        settings = self.settings
        body = {"name": settings.login, "password": settings.password, "tenant": settings.tenant}
        if settings.branch:
            body["branch"] = settings.branch
        started = time.monotonic()
        self._post_login(slot, body)
        with self._changed:  # atomic with close()'s listing: either it lists this session, or we see it closed
            slot.signed_in = True
            closed = self._closed
            self._sign_in_seconds = time.monotonic() - started
        if closed:  # closed while signing in: close() may have missed this session, so end it here, at once
            self._warn_left_open([slot], [self._sign_out(slot, parallel=False)])
            raise self._closed_error()
        self.transport.trace(f"signed in to tenant {settings.tenant} ({self.open_sessions} open sessions)")

    def _post_login(self, slot: SessionSlot, body: dict[str, Any]) -> None:
        """Sign in, retrying what is transient (see login_retryable) and waiting up to `login_limit_wait_seconds`
        for a seat while the licence answers "API Login Limit", with a warning saying why at each wait."""
        settings = self.settings
        started = time.monotonic()
        seats = RetryPolicy(None, settings.login_limit_wait_seconds, settings.backoff_seconds, cap_seconds=30.0)
        retrying = seats.retrying(
            tenacity.retry_if_exception(
                lambda error: isinstance(error, AcumaticaApiError) and is_login_limit(error.message)
            ),
            before_sleep=self._warn_seats_taken,
            sleep=self._wait_unless_closed,
        )
        try:
            retrying(
                self.transport.request, "POST", LOGIN_PATH, credentials=slot, json_body=body, retryable=login_retryable
            )
        except AcumaticaApiError as error:
            if is_login_limit(error.message):
                raise seats_taken_error(settings, error, time.monotonic() - started) from None
            raise sign_in_error(settings, error) from None

    def _warn_seats_taken(self, state: tenacity.RetryCallState) -> None:
        self.transport.log.warning(
            'Acumatica tenant %r: sign-in refused with "API Login Limit": every API-user seat of the licence is '
            "taken (sessions of other tasks or workers, or left open by a killed process: those end after about "
            "10 idle minutes); waiting %.1f s for a seat (%.0f s waited, up to login_limit_wait_seconds=%g)",
            self.settings.tenant,
            state.upcoming_sleep,
            state.seconds_since_start,
            self.settings.login_limit_wait_seconds,
        )

    def _wait_unless_closed(self, seconds: float) -> None:
        """Wait for a seat; close() (on_kill) ends the wait at once."""
        with self._changed:
            if not self._closed:
                self._changed.wait(seconds)
            if self._closed:
                raise self._closed_error()

    def _closed_error(self) -> AcumaticaClosedError:
        return AcumaticaClosedError(f"Acumatica connection {self.settings.conn_id!r} is closed")

    def _sign_out(
        self, slot: SessionSlot, *, parallel: bool, deadline: float | None = None
    ) -> AcumaticaApiError | None:
        """Sign `slot` out unless it is signed out already or being signed out (then leave it to that caller);
        the error of a sign-out that failed, else None."""
        if not slot.ending.acquire(blocking=False):
            return None
        try:
            return self._log_out(slot, parallel, deadline) if slot.signed_in else None
        finally:
            slot.ending.release()

    def _log_out(self, slot: SessionSlot, parallel: bool, deadline: float | None) -> AcumaticaApiError | None:
        route: dict[str, Any]
        if parallel:  # a concurrency permit and the full retry budget (see sign_out_all)
            route = {"authenticator": _EndingSession(slot)}
        else:  # on the calling thread, perhaps a signal handler: no permit nor rate limiter lock; on_kill ends soon
            route = {"credentials": slot, "max_retries": 2, "wait_for_rate": False, "deadline": deadline}
        failure = None
        try:
            self.transport.request("POST", LOGOUT_PATH, decode=None, **route)
        except AcumaticaApiError as error:
            failure = error
        slot.signed_in = False  # signed out, or it ends by itself: either way not ours to use or end any more
        slot.jar.clear()
        if failure is None:
            self.transport.trace(f"signed out of tenant {self.settings.tenant}")
        return failure

    def _warn_left_open(
        self, slots: list[SessionSlot], failures: list[AcumaticaApiError | None], *, within_deadline: bool = False
    ) -> None:
        """One warning naming the sessions whose sign-out failed, and why."""
        left_open = [f"session {slot.number}: {error}" for slot, error in zip(slots, failures) if error is not None]
        if not left_open:
            return
        within = (
            (
                f" within the {self.sign_out_deadline_seconds:g} s a sequential close (on_kill) has before "
                "Airflow's SIGKILL"
            )
            if within_deadline
            else ""
        )
        self.transport.log.warning(
            "Acumatica tenant %r: %d of %d sessions not signed out%s; each ends by itself in about 10 minutes, "
            "holding a licence slot until then (%s)",
            self.settings.tenant,
            len(left_open),
            len(slots),
            within,
            "; ".join(left_open),
        )


class _EndingSession:
    """The authenticator of one parallel sign-out: it leases the session being ended, so that the request holds
    a concurrency permit like every other; a 401 means the session has ended already, so it is not renewed."""

    def __init__(self, slot: SessionSlot) -> None:
        self._slot = slot

    @contextlib.contextmanager
    def lease(self) -> Iterator[SessionSlot]:
        yield self._slot

    def renew(self, credentials: SessionSlot) -> bool:
        raise AcumaticaAuthError("POST", LOGOUT_PATH, 401, "the session had ended already")


class BasicAuth:
    """HTTP Basic credentials (the OData interface accepts them; no session is opened)."""

    def __init__(self, login: str, password: str) -> None:
        self._auth = (login, password)

    @contextlib.contextmanager
    def lease(self) -> Iterator[BasicAuth]:
        yield self

    def renew(self, credentials: BasicAuth) -> bool:
        raise AcumaticaAuthError("GET", "odata", 401, "HTTP Basic credentials refused: check username and password")

    def apply(self, request_kwargs: dict[str, Any]) -> None:
        request_kwargs["auth"] = self._auth

    def absorb(self, response: requests.Response) -> None:
        return None
