"""Signing in to Acumatica: cookie sessions, OAuth2 bearer tokens (requests-oauthlib), HTTP Basic for OData.

Cookie sessions are signed in lazily, one per concurrently running request at most (so never more than
`max_concurrent_requests` licence slots), reused while the client lives, and ALWAYS signed out by `close()`:
one after another on the calling thread (safe in a signal handler, such as on_kill) within
`SIGN_OUT_DEADLINE_SECONDS` in all, or, with `parallel=True` at the normal end of work, all at once. A sign-in
still under way then signs its own session out and fails with AcumaticaClosedError; a 401 after close() fails
so without signing in again. A sign-in refused with "API Login Limit" is retried with backoff by the transport,
within its bounds. OAuth2 tokens come from the shared
`TokenStore` (see tokens.py for why and how); an access token is reused until shortly before it expires. A 401
takes a newer token from the store or refreshes; the renewal tells the transport whether the refused token may
simply have been too old (it had expired by our clock: a slow request on a loaded machine; or another worker
got it, on its clock and its timing), in which case a refusal of the renewed token still deserves
another renewal rather than a failure.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests
import tenacity
from oauthlib.oauth2 import LegacyApplicationClient, OAuth2Error, WebApplicationClient
from requests.cookies import RequestsCookieJar, extract_cookies_to_jar
from requests_oauthlib import OAuth2Session

from airflow_provider_acumatica.client.errors import AcumaticaApiError, AcumaticaAuthError, AcumaticaClosedError
from airflow_provider_acumatica.client.masking import SecretMasker
from airflow_provider_acumatica.client.settings import AcumaticaSettings
from airflow_provider_acumatica.client.sign_in import is_login_limit, login_retryable, seats_taken_error, sign_in_error
from airflow_provider_acumatica.client.tokens import TokenChain, TokenStore, seed_hash
from airflow_provider_acumatica.client.transport import Transport, retry_after
from airflow_provider_acumatica.utils.retry import RetryPolicy

LOGIN_PATH = "/entity/auth/login"
LOGOUT_PATH = "/entity/auth/logout"
TOKEN_PATH = "/identity/connect/token"
AUTHORIZE_PATH = "/identity/connect/authorize"

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


class BearerToken:
    """Credentials of one request: the access token, when it expires, and whether this process got it."""

    def __init__(self, token: str, expires_at: float, granted_here: bool) -> None:
        self.token = token
        self.expires_at = expires_at
        self.granted_here = granted_here

    def apply(self, request_kwargs: dict[str, Any]) -> None:
        request_kwargs["headers"] = {**request_kwargs.get("headers", {}), "Authorization": f"Bearer {self.token}"}

    def absorb(self, response: requests.Response) -> None:
        return None


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


class OAuthTokens:
    """OAuth2 access tokens for one connection, shared through the token store by every worker."""

    def __init__(
        self, settings: AcumaticaSettings, store: TokenStore, transport: Transport, masker: SecretMasker
    ) -> None:
        self.settings = settings
        self.store = store
        self.transport = transport
        self.masker = masker
        self.retry = RetryPolicy(settings.max_retries, settings.retry_max_seconds, settings.backoff_seconds)
        self._chain = TokenChain()
        self._granted_here = False
        self._lock = threading.Lock()
        self._used: BearerToken | None = None
        """The last token a request of this process carried: the session to sign out at close."""

    @contextlib.contextmanager
    def lease(self) -> Iterator[BearerToken]:
        with self._lock:
            if not self._chain.access_valid():
                self._renew_from_store(stale=None)
            token = self._used = BearerToken(self._chain.access_token, self._chain.expires_at, self._granted_here)
        yield token

    def close(self, *, parallel: bool = False) -> None:
        """Sign out the licence session our access token opened (a bearer `POST /entity/auth/logout`), as a cookie
        session is: the token stays usable (another worker sharing the chain opens a new session on its next
        request), but this run no longer holds a seat. Nothing to do if no request was sent. Like the cookie
        sessions' close: sequential by default (on_kill), within SIGN_OUT_DEADLINE_SECONDS and without waiting for
        the rate limiter; `parallel=True` (the normal end of work) with the full retry budget."""
        token, self._used = self._used, None
        if token is None:
            return
        route: dict[str, Any] = (
            {}
            if parallel
            else {"max_retries": 2, "wait_for_rate": False, "deadline": time.monotonic() + SIGN_OUT_DEADLINE_SECONDS}
        )
        try:
            self.transport.request("POST", LOGOUT_PATH, credentials=token, decode=None, **route)
        except AcumaticaApiError as error:
            self.transport.log.warning(
                "Acumatica tenant %r: the OAuth session was not signed out (%s); it ends by itself when its access "
                "token expires, holding a licence seat until then",
                self.settings.tenant,
                error,
            )

    def renew(self, credentials: BearerToken) -> bool:
        """After a 401: a newer token from the store, or a refresh. True when the refused token may just have
        been too old: it had expired by now (judged before waiting for any lock), or another worker got it."""
        maybe_stale = not credentials.granted_here or time.time() >= credentials.expires_at
        with self._lock:
            self._renew_from_store(stale=credentials.token)
        return maybe_stale

    def _renew_from_store(self, stale: str | None) -> None:
        """Under the chain's row lock: take a fresh token someone else got, or refresh ourselves."""
        settings = self.settings
        with self.store.locked(settings.token_key) as chain:
            current_seed = seed_hash(settings.refresh_token)
            if current_seed and chain.seed_hash != current_seed:
                chain.seed_hash, chain.refresh_token, chain.access_token = current_seed, settings.refresh_token, None
            refreshed = not chain.access_valid() or chain.access_token == stale
            if refreshed:
                self._grant(chain)
            self._chain, self._granted_here = TokenChain(**vars(chain)), refreshed
        self.masker.add(chain.access_token, chain.refresh_token)
        if refreshed:  # logged after the row lock is released: a slow log sink must not stall other workers
            self.transport.log.info(
                "Acumatica OAuth: new access token for tenant %s, valid %.0f s",
                settings.tenant,
                chain.expires_at - chain.issued_at,
            )

    def _grant(self, chain: TokenChain) -> None:
        settings = self.settings
        if chain.refresh_token:
            try:
                granted = self._token_call(
                    "refresh_token",
                    lambda session, **kw: session.refresh_token(
                        self.transport.url(TOKEN_PATH), refresh_token=chain.refresh_token, **kw
                    ),
                )
            except AcumaticaAuthError:
                if settings.auth_type != "oauth2_password":
                    raise
                granted = None  # the chain is broken, but we hold the user's credentials: start a new one
            if granted is not None:
                return _keep(chain, *granted)
        if settings.auth_type == "oauth2_password":
            granted = self._token_call(
                "password",
                lambda session, **kw: session.fetch_token(
                    self.transport.url(TOKEN_PATH),
                    username=settings.login,
                    password=settings.password,
                    include_client_id=True,
                    scope=settings.scope,
                    **kw,
                ),
            )
            return _keep(chain, *granted)
        raise AcumaticaAuthError(
            "POST",
            TOKEN_PATH,
            None,
            f"no usable refresh token for client {settings.client_id!r} on tenant {settings.tenant!r}: connect "
            "it — press Connect on the connection's page of the Airflow UI (Browse > Acumatica), or run "
            f"`airflow-acumatica connect --conn-id {settings.conn_id}` — or set the connection extra "
            "'refresh_token'. If it was connected before, check that every worker has the same [core] fernet_key "
            "and token_store: a chain stored under another key cannot be read.",
        )

    def _token_call(self, grant: str, call) -> tuple[dict, float]:
        """One token request with requests-oauthlib, retried while the server is busy or unreachable; returns
        the token and the time the successful request was sent."""
        retrying = self.retry.retrying(
            tenacity.retry_if_exception_type(_TOKEN_ENDPOINT_DOWN),
            before_sleep=lambda state: self.transport.log.warning(
                "Acumatica token endpoint busy (%s); retrying in %.2f s",
                type(state.outcome.exception()).__name__,
                state.upcoming_sleep,
            ),
        )
        try:
            return retrying(self._token_request, grant, call)
        except _TOKEN_ENDPOINT_DOWN as error:
            raise AcumaticaApiError(
                "POST",
                TOKEN_PATH,
                getattr(error, "status", None),
                f"token endpoint unavailable: {type(error).__name__}",
            ) from None

    def _token_request(self, grant: str, call) -> tuple[dict, float]:
        settings = self.settings
        client = LegacyApplicationClient(settings.client_id) if grant == "password" else None
        session = OAuth2Session(client_id=settings.client_id, client=client, scope=settings.scope)
        session.register_compliance_hook("access_token_response", _check_token_response)
        session.register_compliance_hook("refresh_token_response", _check_token_response)
        rate = self.transport.limits.rate
        sent_at = time.time()
        try:
            with session, rate.slot() if rate is not None else contextlib.nullcontext():
                return call(
                    session,
                    client_id=settings.client_id,
                    client_secret=settings.client_secret,
                    timeout=settings.timeout,
                    verify=settings.verify_ssl,
                ), sent_at
        except Warning as scope_changed:  # oauthlib: the server granted other scopes than asked for
            token = getattr(scope_changed, "token", None)
            if isinstance(token, dict) and token.get("access_token"):
                return token, sent_at
            raise
        except OAuth2Error as error:
            raise AcumaticaAuthError(
                "POST",
                TOKEN_PATH,
                error.status_code,
                f"{grant} grant refused for client {settings.client_id!r} on tenant {settings.tenant!r}: "
                f"{error.error}. {_TOKEN_HINTS.get(error.error, _TOKEN_HINT)}",
            ) from None


def _keep(chain: TokenChain, token: dict, sent_at: float) -> None:
    """Store a granted token in the chain. Its life counts from when the request was SENT: the server's
    `expires_in` starts when it issues the token, and on a loaded machine the answer may take longer to
    arrive than the renewal margin, so counting from the answer would hand out tokens already dead."""
    chain.access_token = token["access_token"]
    chain.refresh_token = token.get("refresh_token") or chain.refresh_token
    chain.issued_at = sent_at
    chain.expires_at = sent_at + float(token.get("expires_in") or 3600)
    chain.refreshes += 1


_TOKEN_HINT = "Check client_id, client_secret, username and password, or re-authorize the application."
_TOKEN_HINTS = {
    "insecure_transport": "OAuth needs an https instance URL (OAUTHLIB_INSECURE_TRANSPORT=1 only for local tests).",
    "invalid_grant": "The refresh token is spent or expired, or the credentials are wrong: connect again "
    "(oauth2_code: Browse > Acumatica in the Airflow UI, or `airflow-acumatica connect`), or check username and "
    "password (oauth2_password).",
}


class _TokenServerBusy(Exception):
    def __init__(self, status: int, retry_after: float | None) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.retry_after = retry_after


_TOKEN_ENDPOINT_DOWN = (_TokenServerBusy, requests.ConnectionError, requests.Timeout)
"""A token request that failed for a passing reason: retried."""


def _check_token_response(response: requests.Response) -> requests.Response:
    """Compliance hook: classify the token answer before oauthlib parses it."""
    if response.status_code == 429 or response.status_code >= 500:
        raise _TokenServerBusy(response.status_code, retry_after(response))
    if response.status_code >= 400:
        try:
            response.json()
        except ValueError:
            raise AcumaticaAuthError(
                "POST",
                TOKEN_PATH,
                response.status_code,
                "token request refused (invalid_grant or bad client; unreadable answer)",
            ) from None
    return response


def authorization_url(settings: AcumaticaSettings, redirect_uri: str, state: str | None = None) -> tuple[str, str, str]:
    """Start the authorization code flow with PKCE: return (URL to open, state, code_verifier to keep)."""
    client = WebApplicationClient(settings.client_id)
    verifier = client.create_code_verifier(64)
    challenge = client.create_code_challenge(verifier, "S256")
    session = OAuth2Session(settings.client_id, redirect_uri=redirect_uri, scope=settings.scope, state=state)
    url, state = session.authorization_url(
        settings.instance_url + AUTHORIZE_PATH, code_challenge=challenge, code_challenge_method="S256"
    )
    return url, state, verifier


def exchange_code(
    settings: AcumaticaSettings, store: TokenStore, redirect_uri: str, code: str, code_verifier: str | None
) -> None:
    """Finish the authorization code flow: trade `code` for tokens and start the chain in the store."""
    session = OAuth2Session(settings.client_id, redirect_uri=redirect_uri, scope=settings.scope)
    extra = {"code_verifier": code_verifier} if code_verifier else {}
    sent_at = time.time()
    try:
        token = session.fetch_token(
            settings.instance_url + TOKEN_PATH,
            code=code,
            client_secret=settings.client_secret,
            include_client_id=True,
            timeout=settings.timeout,
            verify=settings.verify_ssl,
            **extra,
        )
    except OAuth2Error as error:
        detail = f" ({error.description})" if error.description else ""
        raise AcumaticaAuthError(
            "POST", TOKEN_PATH, error.status_code, f"authorization code refused: {error.error}{detail}"
        ) from None
    with store.locked(settings.token_key) as chain:
        chain.seed_hash = seed_hash(settings.refresh_token)
        chain.refresh_token = None  # a new chain starts from the code's answer alone
        _keep(chain, token, sent_at)


logging.getLogger("requests_oauthlib.oauth2_session").addFilter(lambda record: False)  # it logs tokens at DEBUG
