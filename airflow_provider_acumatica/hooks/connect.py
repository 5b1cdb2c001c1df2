"""Connect flow of an `oauth2_code` connection: one browser sign-in starts the rotating refresh-token chain.

`ConnectFlow` builds the authorization URL (PKCE S256 + state), checks the identity server's answer and
trades the code for tokens through `AcumaticaHook.exchange_code`; the command line (`airflow-acumatica
connect`, cli/connect.py, also run as `python -m airflow_provider_acumatica.hooks.connect`) and the UI plugin
(plugins/app.py) both use it. Codes, tokens and the client secret are never printed or logged.
"""

from __future__ import annotations

import dataclasses
import hmac
import sys
from urllib.parse import parse_qs, urlsplit

import requests
import sqlalchemy as sa

from airflow_provider_acumatica.client.api import default_token_store
from airflow_provider_acumatica.client.errors import AcumaticaError
from airflow_provider_acumatica.hooks.acumatica import AcumaticaHook

DEFAULT_REDIRECT_URI = "http://localhost:8765/oauth/callback"
DEFAULT_TIMEOUT_SECONDS = 300.0
REGISTER_HINT = (
    "Register exactly this redirect URI for the client in Acumatica's Connected Applications form (SM303010), "
    "or pass the registered one with --redirect-uri."
)


class ConnectError(Exception):
    """The connect flow failed; the message says why and what to do (it never holds a secret)."""


@dataclasses.dataclass(frozen=True)
class Callback:
    """What the identity server sent back to the redirect URI (the query string of the redirect)."""

    code: str | None = None
    state: str | None = None
    error: str | None = None
    error_description: str | None = None

    @classmethod
    def from_query(cls, query: str) -> Callback:
        values = {name: found[0] for name, found in parse_qs(query).items()}
        return cls(values.get("code"), values.get("state"), values.get("error"), values.get("error_description"))


class ConnectFlow:
    """One authorization of one connection: the URL the user opens, then the callback checked and exchanged."""

    def __init__(
        self, hook: AcumaticaHook, redirect_uri: str, state: str | None = None, register_hint: str = REGISTER_HINT
    ) -> None:
        require_code_flow(hook)
        self.hook = hook
        self.redirect_uri = redirect_uri
        self.register_hint = register_hint
        self.url, self._state, self.code_verifier = hook.authorization_url(redirect_uri, state)

    def check_authorization_request(self) -> None:
        """Best effort: ask the identity server for the URL without following it, so that a refusal it answers
        at once (unknown client, redirect URI not registered) is reported before the user opens a browser.

        Without a browser session the server only redirects to its sign-in page, so nothing is granted here; an
        answer it renders as a page instead of a refusal status is left to the browser and the timeout."""
        settings = self.hook.settings
        try:
            answer = requests.get(self.url, allow_redirects=False, timeout=settings.timeout, verify=settings.verify_ssl)
        except requests.RequestException as error:
            raise ConnectError(
                f"cannot reach {settings.instance_url}: {type(error).__name__}. "
                "Check the connection's Host and the network."
            ) from None
        if answer.status_code >= 400:
            raise ConnectError(
                f"the identity server refused the authorization request (HTTP {answer.status_code}: "
                f"{_server_reason(answer)}) for client {settings.client_id!r} and redirect URI "
                f"{self.redirect_uri!r}. {self.register_hint}"
            )
        location = answer.headers.get("Location", "")
        if answer.is_redirect and location.startswith(self.redirect_uri):
            refused = Callback.from_query(urlsplit(location).query)
            if refused.error:
                raise ConnectError(refusal(refused))

    def complete(self, callback: Callback) -> str:
        """Check the callback and start the chain; return what to tell the user (raise ConnectError)."""
        if callback.error:
            raise ConnectError(refusal(callback))
        if not callback.state or not hmac.compare_digest(callback.state, self._state):
            raise ConnectError(
                "the callback's state does not match this authorization request (a stale or forged "
                "redirect): nothing was stored. Run the command again and use the URL it prints."
            )
        if not callback.code:
            raise ConnectError(
                "the callback carries no authorization code: paste the full address the browser "
                f"was sent to (it starts with {self.redirect_uri}?code=...)."
            )
        exchange(self.hook, self.redirect_uri, callback.code, self.code_verifier)
        return (
            f"Connected: the refresh-token chain of connection {self.hook.acumatica_conn_id!r} "
            f"(tenant {self.hook.tenant}) is stored in {self.masked_token_store()}. "
            "It rotates on every refresh; tasks read the newest token from there."
        )

    def masked_token_store(self) -> str:
        url = self.hook.settings.token_store or default_token_store()
        return sa.engine.make_url(url).render_as_string(hide_password=True)


def require_code_flow(hook: AcumaticaHook) -> None:
    """Only an `oauth2_code` connection can be connected in a browser."""
    settings = hook.settings
    if settings.auth_type != "oauth2_code":
        raise ConnectError(
            f"Acumatica connection {hook.acumatica_conn_id!r} has auth_type {settings.auth_type!r}: set the extra "
            "auth_type to 'oauth2_code' (with the connected application's client_id and client_secret) to connect."
        )


def exchange(hook: AcumaticaHook, redirect_uri: str, code: str, code_verifier: str) -> None:
    """Trade the authorization code for the first tokens of the chain, stored in the token store."""
    try:
        hook.exchange_code(redirect_uri, code, code_verifier)
    except AcumaticaError as error:
        raise ConnectError(
            f"{error}. The code is single-use and expires within minutes: start the sign-in again and finish "
            f"promptly. The redirect URI must be the one of the authorization request ({redirect_uri})."
        ) from None
    except requests.RequestException as error:
        raise ConnectError(
            f"the token request to {hook.settings.instance_url} failed: "
            f"{type(error).__name__}. Start the sign-in again."
        ) from None


def refusal(callback: Callback) -> str:
    """What the identity server's refusal means and what to do about it."""
    detail = f" ({callback.error_description})" if callback.error_description else ""
    hints = {
        "access_denied": "The user declined, or may not use this connected application: sign in as a user "
        "with access and consent.",
        "invalid_scope": "Fix the connection's extra 'scope' (e.g. 'api offline_access').",
        "unauthorized_client": "Allow the authorization code flow for this client in SM303010.",
    }
    hint = hints.get(callback.error or "", "Check the connected application in SM303010. " + REGISTER_HINT)
    return f"the identity server refused the authorization: {callback.error}{detail}. {hint}"


def _server_reason(answer: requests.Response) -> str:
    """The OAuth error of a refusal body when it has one (never the body itself: it may echo anything)."""
    try:
        body = answer.json()
    except ValueError:
        return answer.reason or "refused"
    if not isinstance(body, dict):
        return answer.reason or "refused"
    return str(body.get("error_description") or body.get("error") or answer.reason or "refused")


if __name__ == "__main__":  # the former home of the command: `airflow-acumatica connect` is the same
    from airflow_provider_acumatica.cli.connect import main

    sys.exit(main())
