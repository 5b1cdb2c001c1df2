"""HTTP to one Acumatica instance: concurrency cap, rate limit, retries with backoff, logging by verbosity.

One `requests.Session` per client (its connection pool sized to the concurrency cap). The concurrency cap
(a semaphore) and the requests-per-minute limiter are shared by every client of the same connection in a
process, so the threads of a task together stay inside the licence. Each request is retried on 429, 5xx,
connection errors, timeouts and truncated bodies, with exponential backoff and full jitter, honouring
`Retry-After`, bounded by `max_retries` and `retry_max_seconds`. A 401 triggers a renewal of the
credentials (new sign-in, newer token from the store, or token refresh) and an immediate retry. One renewal
is always allowed; more only while the authenticator says the refused credentials may just have been too
old (on a loaded machine a request can reach the server after its token died, and so can the retry), each
one counted against the retry budget: fresh credentials refused after a renewal is a real refusal. Log lines
are formatted here and redacted by the `SecretMasker`; credential headers are never shown. A caller's
deadline (on_kill's sign-outs) bounds a request too: its timeouts and its retries.
"""

from __future__ import annotations

import bisect
import collections
import contextlib
import datetime
import email.utils
import http.cookiejar
import json
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, NamedTuple, Protocol

import requests
from requests.adapters import HTTPAdapter

from airflow_provider_acumatica.client.errors import AcumaticaApiError, AcumaticaAuthError, AcumaticaValidationError
from airflow_provider_acumatica.client.masking import SecretMasker
from airflow_provider_acumatica.client.settings import AcumaticaSettings

_TRANSIENT_ERRORS = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)
_BODY_LOG_LIMIT = 4000
_WINDOW_SECONDS = 60.0
_UNWAITED_RECHECK_SECONDS = 0.5
HANDOFF_SECONDS = 0.001
"""How long a thread giving back a concurrency permit lets a thread waiting for it go first (see _Limits)."""


class Credentials(Protocol):
    """What one request is authenticated with (a signed-in session, a bearer token, basic auth)."""

    def apply(self, request_kwargs: dict[str, Any]) -> None: ...

    def absorb(self, response: requests.Response) -> None: ...


class Authenticator(Protocol):
    """Hands out credentials for a request and renews them after a 401."""

    def lease(self) -> contextlib.AbstractContextManager[Credentials]: ...

    def renew(self, credentials: Credentials) -> bool:
        """Renew after a 401; True when the refused credentials may just have been too old (expired on the way,
        or obtained elsewhere), so that a refusal of the renewed ones is worth another renewal."""
        ...


class RateLimiter:
    """At most `limit` requests in any sliding 60-second window, as the server counts them.

    A request holds its place from the moment it is sent until 60 s after its answer arrived: the server
    counts it at some instant in between, so however long requests travel (a loaded worker, a slow
    network), no minute of the server's ever sees more than `limit` of them.

    A request that must not wait (a sign-out, perhaps from on_kill's signal handler) takes a place at once,
    free or not, and without the lock: the handler runs on the main thread, which it may have interrupted
    inside this limiter, holding the lock it would then wait for forever. Its place still counts, so the
    requests that do wait stay within the limit; at worst the sign-out itself is one too many, which the
    server delays or answers with a 429 that its retries absorb.
    """

    def __init__(self, limit: int, clock: Callable[[], float] = time.monotonic, sleep=time.sleep) -> None:
        self.limit = limit
        self.clock = clock  # replaceable, like `sleep`, so the window can follow another clock
        self.sleep = sleep
        self._finished: collections.deque[float] = collections.deque()
        self._in_flight = 0
        self._released = threading.Condition(threading.Lock())
        # places of requests that did not wait: [answer time, None until answered], added without the lock
        # (a deque's append is atomic, also against a signal handler) and moved to `_finished` under it
        self._unwaited: collections.deque[list[float | None]] = collections.deque()

    @contextlib.contextmanager
    def slot(self, *, wait: bool = True) -> Iterator[float]:
        """Hold a place for one request while it is sent and answered; yields the seconds waited for it.
        `wait=False` takes a place at once without touching the lock (see the class)."""
        if not wait:
            place: list[float | None] = [None]
            self._unwaited.append(place)
            try:
                yield 0.0
            finally:
                place[0] = self.clock()
            return
        waited = self._acquire()
        try:
            yield waited
        finally:
            with self._released:
                self._in_flight -= 1
                self._finished.append(self.clock())
                self._released.notify_all()

    def _acquire(self) -> float:
        waited = 0.0
        while True:
            with self._released:
                now = self.clock()
                self._collect_unwaited()
                while self._finished and now - self._finished[0] >= _WINDOW_SECONDS:
                    self._finished.popleft()
                if self._in_flight + len(self._unwaited) + len(self._finished) < self.limit:
                    self._in_flight += 1
                    return waited
                if not self._finished:  # every place is held by a request still under way
                    # one that did not wait cannot take the lock to say it is done: look again after a while
                    self._released.wait(_UNWAITED_RECHECK_SECONDS if self._unwaited else None)
                    continue
                pause = _WINDOW_SECONDS - (now - self._finished[0])
            self.sleep(pause)
            waited += pause

    def _collect_unwaited(self) -> None:
        """Move the answered places of requests that did not wait (oldest first) among the finished ones, in
        answer-time order; one still under way keeps those behind it where they are, counted all the same."""
        while self._unwaited and self._unwaited[0][0] is not None:
            bisect.insort(self._finished, self._unwaited.popleft()[0])


class RetryPolicy:
    """Exponential backoff with full jitter, capped per wait, bounded in count and in total time."""

    def __init__(self, max_retries: int, max_seconds: float, base_seconds: float, cap_seconds: float = 60.0) -> None:
        self.max_retries = max_retries
        self.max_seconds = max_seconds
        self.base_seconds = base_seconds
        self.cap_seconds = cap_seconds

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait before retry number `attempt` (1-based)."""
        if retry_after is not None:
            return min(retry_after, self.cap_seconds)
        ceiling = min(self.cap_seconds, self.base_seconds * 2 ** (attempt - 1))
        return random.uniform(ceiling / 2, ceiling)

    def allows(self, attempt: int, started: float, delay: float, deadline: float | None = None) -> bool:
        """Whether retry `attempt` may wait `delay` s: within the count and total time, and before `deadline`
        (a time.monotonic() instant) when there is one."""
        now = time.monotonic()
        return (
            attempt <= self.max_retries
            and now - started + delay <= self.max_seconds
            and (deadline is None or now + delay < deadline)
        )


class _Limits:
    """The per-connection, per-process concurrency cap and rate limiter."""

    _registry: dict[tuple, _Limits] = {}
    _registry_lock = threading.Lock()

    def __init__(self, max_concurrent: int, requests_per_minute: int | None) -> None:
        self.permits = threading.BoundedSemaphore(max_concurrent)
        self.rate = RateLimiter(requests_per_minute) if requests_per_minute else None
        self._waiting = 0
        self._waiting_lock = threading.Lock()

    def wait_for_permit(self) -> None:
        """Take a concurrency permit, waiting for one, counted among the waiting meanwhile."""
        with self._waiting_lock:
            self._waiting += 1
        try:
            self.permits.acquire()
        finally:
            with self._waiting_lock:
                self._waiting -= 1

    def give_back_permit(self) -> None:
        """Give a permit back; to a thread that waits for it, step aside for a moment (HANDOFF_SECONDS), so that it
        sends its request before this thread decodes its answer. Decoding a page holds the GIL for tens of
        milliseconds (msgspec parses it in one call), and the licence's requests tend to end together: without
        it, the freed slot idled through one or more decodes per request (benchmarks/bench_extract_load.py)."""
        self.permits.release()
        if self._waiting:  # read without the lock: a stale count costs one millisecond, or one handoff
            time.sleep(HANDOFF_SECONDS)

    @classmethod
    def of(cls, settings: AcumaticaSettings) -> _Limits:
        key = (settings.conn_id, settings.instance_url, settings.max_concurrent_requests, settings.requests_per_minute)
        with cls._registry_lock:
            if key not in cls._registry:
                cls._registry[key] = cls(settings.max_concurrent_requests, settings.requests_per_minute)
            return cls._registry[key]


class Reply(NamedTuple):
    """A successful answer: status, headers and the decoded body (None when there was none)."""

    status: int
    headers: Mapping[str, str]
    data: Any


class _Call(NamedTuple):
    """What one request sends, the same for each of its attempts."""

    method: str
    path: str
    params: dict[str, str] | None
    json_body: Any
    headers: dict[str, str] | None
    wait_for_rate: bool


class _Failure(Exception):
    """One failed attempt: retryable or not, with what the final error should say."""

    def __init__(self, status: int | None, message: str, retry_after: float | None = None, body: Any = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after = retry_after
        self.body = body


def default_retryable(status: int | None, message: str) -> bool:
    """429, 5xx and answers that never arrived whole are worth another try."""
    return status is None or status == 429 or status >= 500


class Transport:
    """Sends requests to the instance within the connection's limits and retries what is transient."""

    def __init__(self, settings: AcumaticaSettings, masker: SecretMasker, logger: logging.Logger) -> None:
        self.settings = settings
        self.masker = masker
        self.log = logger
        self.limits = _Limits.of(settings)
        self.retry = RetryPolicy(settings.max_retries, settings.retry_max_seconds, settings.backoff_seconds)
        self.session = requests.Session()
        self.session.cookies.set_policy(_NoSessionCookies())
        adapter = HTTPAdapter(pool_connections=2, pool_maxsize=settings.max_concurrent_requests + 2)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers.update({"Accept": "application/json"})

    def close(self) -> None:
        self.session.close()

    def url(self, path: str) -> str:
        return self.settings.instance_url + path

    def request(
        self,
        method: str,
        path: str,
        *,
        authenticator: Authenticator | None = None,
        credentials: Credentials | None = None,
        params: dict[str, str] | None = None,
        json_body: Any = None,
        headers: dict[str, str] | None = None,
        decode: Callable[[bytes], Any] | None = json.loads,
        retryable: Callable[[int | None, str], bool] = default_retryable,
        max_retries: int | None = None,
        wait_for_rate: bool = True,
        deadline: float | None = None,
    ) -> Reply:
        """Send, retrying transient failures; return the status, headers and decoded body (None when empty).

        With `authenticator`, each attempt holds a concurrency permit and leased credentials (renewed once
        on 401). With `credentials` (sign-in and sign-out), the request goes out directly with them.
        `wait_for_rate=False` (sign-outs that may run in a signal handler) never waits for the per-minute
        limiter, its lock included, yet counts in its window (see RateLimiter). `deadline`, a time.monotonic()
        instant (on_kill's sign-outs, which Airflow cuts short with SIGKILL), bounds the whole request: each
        attempt's timeout is cut to what is left of it, and a retry happens only if its wait ends before it.
        """
        started = time.monotonic()
        attempt, renewed = 0, False
        limit = self.retry.max_retries if max_retries is None else max_retries
        call = _Call(method, path, params, json_body, headers, wait_for_rate)
        while True:
            try:
                response = self._attempt(call, authenticator, credentials, self._timeout(deadline))
                return _decoded(response, decode)
            except _Renew as renewal:
                if renewed and not renewal.maybe_stale:
                    raise self._error(method, path, _Failure(401, "still not authorized after renewing")) from None
                if renewed:  # the renewed credentials were too old as well: renew again, within the budget
                    attempt += 1
                    if attempt > limit:
                        raise self._error(
                            method,
                            path,
                            _Failure(
                                401,
                                "still not authorized: each renewed token was too old when the request reached the "
                                "server (the machine or the server is too slow for the token lifetime)",
                            ),
                        ) from None
                renewed = True
                continue
            except _Failure as failure:
                attempt += 1
                delay = self.retry.delay(attempt, failure.retry_after)
                if (
                    not retryable(failure.status, failure.message)
                    or attempt > limit
                    or not self.retry.allows(attempt, started, delay, deadline)
                ):
                    raise self._error(method, path, failure) from None
                self.log.warning(
                    "%s",
                    self.masker.redact(
                        f"{method} {path} attempt {attempt} failed ({failure.status or 'no answer'}: "
                        f"{failure.message}); retrying in {delay:.2f} s"
                    ),
                )
                time.sleep(delay)

    def _timeout(self, deadline: float | None) -> float:
        """The connection's request timeout, cut to what is left before `deadline` (nothing left: a failure)."""
        if deadline is None:
            return self.settings.timeout
        left = deadline - time.monotonic()
        if left <= 0:
            raise _Failure(None, "not sent: its deadline had passed")
        return min(self.settings.timeout, left)

    def _attempt(
        self, call: _Call, authenticator: Authenticator | None, credentials: Credentials | None, timeout: float
    ) -> requests.Response:
        """One exchange. The concurrency permit and the session are given back before the exchange is logged and
        its body decoded, so that the next request is already on its way while this answer is being handled
        (with several threads decoding, the log line alone held the licence's slot for milliseconds per request)."""
        if authenticator is None:
            response, seconds = self._send(call, credentials, timeout)
        else:
            with self._permit(), authenticator.lease() as leased:
                try:
                    response, seconds = self._send(call, leased, timeout)
                except _Failure as failure:
                    if failure.status != 401:
                        raise
                    self.trace(f"{call.method} {call.path}: 401, renewing credentials")
                    raise _Renew(authenticator.renew(leased)) from None
        self._log_exchange(response, call.json_body, seconds)
        return response

    @contextlib.contextmanager
    def _permit(self) -> Iterator[None]:
        limits = self.limits
        if not limits.permits.acquire(blocking=False):
            self.trace("waiting for a free concurrent-request slot")
            limits.wait_for_permit()
        try:
            yield
        finally:
            limits.give_back_permit()

    def _send(self, call: _Call, credentials: Credentials | None, timeout: float) -> tuple[requests.Response, float]:
        """The request sent and its answer read: the response and its seconds (a failure is logged and raised)."""
        kwargs: dict[str, Any] = {"params": call.params, "timeout": timeout, "verify": self.settings.verify_ssl}
        if call.headers:
            kwargs["headers"] = dict(call.headers)
        if call.json_body is not None:
            kwargs["json"] = call.json_body
        if credentials is not None:
            credentials.apply(kwargs)
        limiter = self.limits.rate
        rate = limiter.slot(wait=call.wait_for_rate) if limiter is not None else contextlib.nullcontext(0.0)
        with rate as waited:
            if waited:
                self.trace(f"rate limit: waited {waited:.2f} s")
            started = time.monotonic()
            try:
                response = self.session.request(call.method, self.url(call.path), stream=True, **kwargs)
                _read_body(response)
            except _TRANSIENT_ERRORS as error:
                raise _Failure(
                    None, f"{type(error).__name__} (connection reset, timeout or truncated answer)"
                ) from None
        seconds = time.monotonic() - started
        if credentials is not None:
            credentials.absorb(response)
        if response.status_code >= 400:
            self._log_exchange(response, call.json_body, seconds)
            raise _failure_of(response)
        return response, seconds

    def _log_exchange(self, response: requests.Response, json_body: Any, seconds: float) -> None:
        verbosity = self.settings.verbosity
        request = response.request
        self.log.info(
            "%s", self.masker.redact(f"{request.method} {request.path_url} -> {response.status_code} ({seconds:.3f} s)")
        )
        if verbosity >= 2:
            self.log.info("%s", "request headers: " + self.masker.headers(request.headers))
            self.log.info("%s", "response headers: " + self.masker.headers(response.headers))
        if verbosity >= 3:
            limit = None if verbosity >= 5 else _BODY_LOG_LIMIT
            if json_body is not None:
                self.log.info("%s", "request body: " + self.masker.redact(_clip(json.dumps(json_body), limit)))
            if response.content:
                self.log.info("%s", "response body: " + self.masker.redact(_clip(response.text, limit)))

    def trace(self, message: str) -> None:
        if self.settings.verbosity >= 4:
            self.log.info("%s", self.masker.redact(message))

    def _error(self, method: str, path: str, failure: _Failure) -> AcumaticaApiError:
        message = self.masker.redact(failure.message)
        if failure.status == 422:
            return AcumaticaValidationError(method, path, message, _field_errors(failure.body), failure.body or {})
        if failure.status in (401, 403):
            return AcumaticaAuthError(method, path, failure.status, message)
        return AcumaticaApiError(method, path, failure.status, message)


def _read_body(response: requests.Response) -> None:
    """Read the whole answer as `response.content` does, but in one read: `content` reads 10 KB at a time, each read
    a Python call that gives up the GIL and must get it back from the threads decoding other pages. A short body raises as `content` would (ChunkedEncodingError)."""
    response._content = b"".join(response.iter_content(chunk_size=None))  # noqa: SLF001 - what `content` caches
    response._content_consumed = True  # noqa: SLF001


def _decoded(response: requests.Response, decode: Callable[[bytes], Any] | None) -> Reply:
    """The successful answer with its body decoded; a body that does not parse was cut short (retryable)."""
    if not response.content or decode is None:
        return Reply(response.status_code, response.headers, None)
    try:
        return Reply(response.status_code, response.headers, decode(response.content))
    except ValueError:
        raise _Failure(None, f"answer body is not valid JSON ({len(response.content)} bytes, truncated?)") from None


class _Renew(Exception):
    """Internal signal: the credentials were renewed after a 401, send again."""

    def __init__(self, maybe_stale: bool) -> None:
        super().__init__()
        self.maybe_stale = maybe_stale


class _NoSessionCookies(http.cookiejar.DefaultCookiePolicy):
    """The shared Session keeps no cookies: each signed-in session slot keeps its own."""

    def set_ok(self, cookie, request) -> bool:
        return False


def _failure_of(response: requests.Response) -> _Failure:
    body = None
    try:
        body = response.json()
    except ValueError:
        pass
    message = _error_message(body) or response.reason or ""
    if body is None and response.text:
        message = f"{message}: {response.text[:300]}"
    return _Failure(response.status_code, message, retry_after(response), body)


def _error_message(body: Any) -> str:
    if not isinstance(body, dict):
        return ""
    parts = [body.get(key) for key in ("message", "exceptionMessage", "error", "error_description")]
    texts = [str(part) for part in parts if isinstance(part, str) and part]
    return " - ".join(dict.fromkeys(texts))


def _field_errors(body: Any, prefix: str = "") -> dict[str, str]:
    """`{"Field": error}` from a 422 echo of the entity (details as `Detail[0].Field`)."""
    errors: dict[str, str] = {}
    if not isinstance(body, dict):
        return errors
    for name, value in body.items():
        if isinstance(value, dict) and isinstance(value.get("error"), str):
            errors[prefix + name] = value["error"]
        elif isinstance(value, list):
            for index, item in enumerate(value):
                errors.update(_field_errors(item, f"{prefix}{name}[{index}]."))
    if isinstance(body.get("error"), str) and not prefix:
        errors.setdefault("(record)", body["error"])
    return errors


def retry_after(response: requests.Response) -> float | None:
    """Seconds the server asks us to wait (`Retry-After` as seconds or as an HTTP date), or None when it does not
    say (or says something unreadable): the one reading of the header, for requests and token refreshes alike."""
    value = (response.headers.get("Retry-After") or "").strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # an HTTP date is GMT; a sloppy server may leave the zone out
        when = when.replace(tzinfo=datetime.timezone.utc)
    return max(0.0, (when - datetime.datetime.now(datetime.timezone.utc)).total_seconds())


def _clip(text: str, limit: int | None) -> str:
    if limit is None or len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text)} characters)"
