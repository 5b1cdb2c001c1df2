"""HTTP to one Acumatica instance: requests sent within the connection's pace, retried, answered, logged.

One `requests.Session` per client (its connection pool sized to the concurrency cap); the pace (concurrency cap
and requests-per-minute limit) is the connection's, shared in the process (see pacing.py). Each request is
retried on 429, 5xx, connection errors, timeouts and truncated bodies under the one `RetryPolicy` (exponential
backoff with jitter, honouring `Retry-After`, bounded by `max_retries` and `retry_max_seconds`). A 401 triggers
a renewal of the credentials (new sign-in, newer token from the store, or token refresh) and an immediate retry.
One renewal is always allowed; more only while the authenticator says the refused credentials may just have
been too old (on a loaded machine a request can reach the server after its token died, and so can the retry),
each one counted against the retry budget: fresh credentials refused after a renewal is a real refusal. Log
lines are formatted here and redacted by the `SecretMasker`; credential headers are never shown. A caller's
deadline (on_kill's sign-outs) bounds a request too: its timeouts and its retries.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import email.utils
import http.cookiejar
import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, NamedTuple, Protocol

import requests
import tenacity
from requests.adapters import HTTPAdapter

from airflow_provider_acumatica.client.errors import AcumaticaApiError, AcumaticaAuthError, AcumaticaValidationError
from airflow_provider_acumatica.client.masking import SecretMasker
from airflow_provider_acumatica.client.pacing import ConnectionLimits
from airflow_provider_acumatica.client.pacing import RateLimiter as RateLimiter  # public: a connection's rate limit
from airflow_provider_acumatica.client.settings import AcumaticaSettings
from airflow_provider_acumatica.utils.retry import RetryPolicy

_TRANSIENT_ERRORS = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)
_BODY_LOG_LIMIT = 4000


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
    """One failed attempt: retryable or not, with what the final error should say. `renew`: credentials refused
    again after a renewal, though they may just have been too old; renewed again at once, within the retry budget."""

    def __init__(
        self,
        status: int | None,
        message: str,
        retry_after: float | None = None,
        body: Any = None,
        *,
        renew: bool = False,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after = 0.0 if renew else retry_after
        self.body = body
        self.renew = renew


class _Answer(NamedTuple):
    """An answer read whole: the response (status, headers, the request sent), its body and its seconds."""

    response: requests.Response
    body: bytes
    seconds: float

    @property
    def text(self) -> str:
        """The body as text, in the answer's encoding (UTF-8, JSON's, when it names none or an unknown one)."""
        try:
            return self.body.decode(self.response.encoding or "utf-8", errors="replace")
        except LookupError:
            return self.body.decode("utf-8", errors="replace")


def default_retryable(status: int | None, message: str) -> bool:
    """429, 5xx and answers that never arrived whole are worth another try."""
    return status is None or status == 429 or status >= 500


class Transport:
    """Sends requests to the instance within the connection's limits and retries what is transient."""

    def __init__(self, settings: AcumaticaSettings, masker: SecretMasker, logger: logging.Logger) -> None:
        self.settings = settings
        self.masker = masker
        self.log = logger
        self.limits = ConnectionLimits.of(settings)
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
        call = _Call(method, path, params, json_body, headers, wait_for_rate)
        renewed = False

        def exchange() -> Reply:
            nonlocal renewed
            while True:
                try:
                    return _decoded(self._attempt(call, authenticator, credentials, self._timeout(deadline)), decode)
                except _Renew as renewal:
                    if renewed:  # the renewed credentials were refused too
                        raise renewal.refusal() from None
                    renewed = True  # one renewal is always allowed, at once and uncounted

        policy = self.retry if max_retries is None else dataclasses.replace(self.retry, max_retries=max_retries)
        retrying = policy.retrying(
            tenacity.retry_if_exception(
                lambda error: isinstance(error, _Failure) and (error.renew or retryable(error.status, error.message))
            ),
            deadline=deadline,
            before_sleep=lambda state: self._warn_retry(call, state),
        )
        try:
            return retrying(exchange)
        except _Failure as failure:
            raise self._error(method, path, failure) from None

    def _warn_retry(self, call: _Call, state: tenacity.RetryCallState) -> None:
        failure = state.outcome.exception()
        if failure.renew:  # the renewal was traced already
            return
        self.log.warning(
            "%s",
            self.masker.redact(
                f"{call.method} {call.path} attempt {state.attempt_number} failed ({failure.status or 'no answer'}: "
                f"{failure.message}); retrying in {state.upcoming_sleep:.2f} s"
            ),
        )

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
    ) -> _Answer:
        """One exchange. The concurrency permit and the session are given back before the exchange is logged and
        its body decoded, so that the next request is already on its way while this answer is being handled
        (with several threads decoding, the log line alone held the licence's slot for milliseconds per request)."""
        if authenticator is None:
            answer = self._send(call, credentials, timeout)
        else:
            with self._permit(), authenticator.lease() as leased:
                try:
                    answer = self._send(call, leased, timeout)
                except _Failure as failure:
                    if failure.status != 401:
                        raise
                    self.trace(f"{call.method} {call.path}: 401, renewing credentials")
                    raise _Renew(authenticator.renew(leased)) from None
        self._log_exchange(answer, call.json_body)
        return answer

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

    def _send(self, call: _Call, credentials: Credentials | None, timeout: float) -> _Answer:
        """The request sent and its answer read whole (a failure is logged and raised)."""
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
                body = _read_body(response)
            except _TRANSIENT_ERRORS as error:
                raise _Failure(
                    None, f"{type(error).__name__} (connection reset, timeout or truncated answer)"
                ) from None
        answer = _Answer(response, body, time.monotonic() - started)
        if credentials is not None:
            credentials.absorb(response)
        if response.status_code >= 400:
            self._log_exchange(answer, call.json_body)
            raise _failure_of(answer)
        return answer

    def _log_exchange(self, answer: _Answer, json_body: Any) -> None:
        verbosity = self.settings.verbosity
        response, request = answer.response, answer.response.request
        self.log.info(
            "%s",
            self.masker.redact(
                f"{request.method} {request.path_url} -> {response.status_code} ({answer.seconds:.3f} s)"
            ),
        )
        if verbosity >= 2:
            self.log.info("%s", "request headers: " + self.masker.headers(request.headers))
            self.log.info("%s", "response headers: " + self.masker.headers(response.headers))
        if verbosity >= 3:
            limit = None if verbosity >= 5 else _BODY_LOG_LIMIT
            if json_body is not None:
                self.log.info("%s", "request body: " + self.masker.redact(_clip(json.dumps(json_body), limit)))
            if answer.body:
                self.log.info("%s", "response body: " + self.masker.redact(_clip(answer.text, limit)))

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


def _read_body(response: requests.Response) -> bytes:
    """The whole body, read in one read rather than `response.content`'s 10 KB at a time: each read is a Python call
    that gives up the GIL and must get it back from the threads decoding other pages. A short body raises as
    `content` would (ChunkedEncodingError). The body is kept beside the response (see _Answer), whose `content`,
    `text` and `json()` are not used afterwards."""
    return b"".join(response.iter_content(chunk_size=None))


def _decoded(answer: _Answer, decode: Callable[[bytes], Any] | None) -> Reply:
    """The successful answer with its body decoded; a body that does not parse was cut short (retryable)."""
    response = answer.response
    if not answer.body or decode is None:
        return Reply(response.status_code, response.headers, None)
    try:
        return Reply(response.status_code, response.headers, decode(answer.body))
    except ValueError:
        raise _Failure(None, f"answer body is not valid JSON ({len(answer.body)} bytes, truncated?)") from None


class _Renew(Exception):
    """Internal signal: the credentials were renewed after a 401, send again."""

    def __init__(self, maybe_stale: bool) -> None:
        super().__init__()
        self.maybe_stale = maybe_stale

    def refusal(self) -> _Failure:
        """The failure of renewed credentials refused again: worth another renewal only if they may have been
        too old (see `Authenticator.renew`)."""
        if not self.maybe_stale:
            return _Failure(401, "still not authorized after renewing")
        return _Failure(
            401,
            "still not authorized: each renewed token was too old when the request reached the server (the machine "
            "or the server is too slow for the token lifetime)",
            renew=True,
        )


class _NoSessionCookies(http.cookiejar.DefaultCookiePolicy):
    """The shared Session keeps no cookies: each signed-in session slot keeps its own."""

    def set_ok(self, cookie, request) -> bool:
        return False


def _failure_of(answer: _Answer) -> _Failure:
    response, body = answer.response, None
    try:
        body = json.loads(answer.body)
    except ValueError:
        pass
    message = _error_message(body) or response.reason or ""
    if body is None and answer.body:
        message = f"{message}: {answer.text[:300]}"
    return _Failure(response.status_code, message, retry_after(response), body)


def _error_message(body: Any) -> str:
    if not isinstance(body, dict):
        return ""
    odata = body.get("error")  # OData v4 answers {"error": {"code", "message"}}
    if isinstance(odata, dict):
        return " - ".join(str(odata[part]) for part in ("code", "message") if odata.get(part))
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
