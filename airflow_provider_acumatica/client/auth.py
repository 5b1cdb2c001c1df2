"""Signing in with OAuth2 (requests-oauthlib): bearer tokens for requests, the authorization code flow.

Tokens come from the shared `TokenStore` (see tokens.py for why and how); an access token is reused until
shortly before it expires. A 401 takes a newer token from the store or refreshes; the renewal tells the
transport whether the refused token may simply have been too old (it had expired by our clock: a slow request
on a loaded machine; or another worker got it, on its clock and its timing), in which case a refusal of the
renewed token still deserves another renewal rather than a failure.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import requests
import tenacity
from oauthlib.oauth2 import LegacyApplicationClient, OAuth2Error, WebApplicationClient
from requests_oauthlib import OAuth2Session

from airflow_provider_acumatica.client.errors import AcumaticaApiError, AcumaticaAuthError
from airflow_provider_acumatica.client.masking import SecretMasker
from airflow_provider_acumatica.client.sessions import LOGOUT_PATH, SIGN_OUT_DEADLINE_SECONDS
from airflow_provider_acumatica.client.settings import AcumaticaSettings
from airflow_provider_acumatica.client.tokens import TokenChain, TokenStore, seed_hash
from airflow_provider_acumatica.client.transport import Transport, retry_after
from airflow_provider_acumatica.utils.retry import RetryPolicy

TOKEN_PATH = "/identity/connect/token"
AUTHORIZE_PATH = "/identity/connect/authorize"


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
