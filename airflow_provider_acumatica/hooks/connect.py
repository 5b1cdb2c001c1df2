"""Connect flow of an `oauth2_code` connection: one browser sign-in starts the rotating refresh-token chain.

Run `python -m airflow_provider_acumatica.hooks.connect --conn-id acumatica_company`: it prints the
authorization URL (PKCE S256 + state), receives the identity server's redirect once on the redirect URI
(a tiny one-shot HTTP listener; `--no-listen` reads the pasted redirected URL from stdin instead, for
headless servers), checks the state, trades the code for tokens through `AcumaticaHook.exchange_code`,
and prints where the chain is stored. Codes, tokens and the client secret are never printed or logged.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hmac
import html
import http.server
import os
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import TextIO
from urllib.parse import parse_qs, urlsplit

import requests
import sqlalchemy as sa
from airflow.exceptions import AirflowNotFoundException

from airflow_provider_acumatica.client.api import default_token_store
from airflow_provider_acumatica.client.errors import AcumaticaError
from airflow_provider_acumatica.hooks.acumatica import AcumaticaHook

DEFAULT_REDIRECT_URI = "http://localhost:8765/oauth/callback"
DEFAULT_TIMEOUT_SECONDS = 300.0
_PROCESS_CONTEXT = "_AIRFLOW_PROCESS_CONTEXT"  # Airflow's switch between server and worker secrets lookups
_REGISTER_HINT = (
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

    def __init__(self, hook: AcumaticaHook, redirect_uri: str, state: str | None = None,
                 register_hint: str = _REGISTER_HINT) -> None:
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
            raise ConnectError(f"cannot reach {settings.instance_url}: {type(error).__name__}. "
                               "Check the connection's Host and the network.") from None
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
            raise ConnectError("the callback's state does not match this authorization request (a stale or forged "
                               "redirect): nothing was stored. Run the command again and use the URL it prints.")
        if not callback.code:
            raise ConnectError("the callback carries no authorization code: paste the full address the browser "
                               f"was sent to (it starts with {self.redirect_uri}?code=...).")
        exchange(self.hook, self.redirect_uri, callback.code, self.code_verifier)
        return (f"Connected: the refresh-token chain of connection {self.hook.acumatica_conn_id!r} "
                f"(tenant {self.hook.tenant}) is stored in {self.masked_token_store()}. "
                "It rotates on every refresh; tasks read the newest token from there.")

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
        raise ConnectError(f"the token request to {hook.settings.instance_url} failed: "
                           f"{type(error).__name__}. Start the sign-in again.") from None


def refusal(callback: Callback) -> str:
    """What the identity server's refusal means and what to do about it."""
    detail = f" ({callback.error_description})" if callback.error_description else ""
    hints = {
        "access_denied": "The user declined, or may not use this connected application: sign in as a user "
                         "with access and consent.",
        "invalid_scope": "Fix the connection's extra 'scope' (e.g. 'api offline_access').",
        "unauthorized_client": "Allow the authorization code flow for this client in SM303010.",
    }
    hint = hints.get(callback.error or "", "Check the connected application in SM303010. " + _REGISTER_HINT)
    return f"the identity server refused the authorization: {callback.error}{detail}. {hint}"


class CallbackListener:
    """A one-shot HTTP listener on the redirect URI's host, port and path; bound as soon as it is created."""

    def __init__(self, redirect_uri: str) -> None:
        parts = urlsplit(redirect_uri)
        if parts.scheme != "http" or not parts.hostname:
            raise ConnectError(f"cannot listen on redirect URI {redirect_uri!r}: only an http:// URI of this machine "
                               "(e.g. http://localhost:8765/oauth/callback) can be received here; use --no-listen.")
        self.path = parts.path or "/"
        try:
            self._server = http.server.ThreadingHTTPServer((parts.hostname, parts.port or 80), _CallbackHandler)
        except OSError as error:
            raise ConnectError(f"cannot listen on {parts.hostname}:{parts.port or 80} ({error.strerror}): choose a "
                               "free port in --redirect-uri (registered in SM303010 too), or use --no-listen.") from None
        self._server.daemon_threads = True
        self._server.listener = self
        self._lock = threading.Lock()
        self._handle: Callable[[Callback], str] | None = None
        self._outcome: str | ConnectError | None = None
        self._done = threading.Event()

    @property
    def address(self) -> tuple[str, int]:
        return self._server.server_address[:2]

    def wait(self, handle: Callable[[Callback], str], timeout: float) -> str:
        """Serve until one callback was handled or `timeout` seconds passed; return `handle`'s message."""
        self._handle = handle
        serving = threading.Thread(target=self._server.serve_forever, name="acumatica-connect-listener", daemon=True)
        serving.start()
        try:
            self._done.wait(timeout)
            with self._lock:  # a callback still being handled finishes first; later ones are turned away
                if self._outcome is None:
                    self._outcome = ConnectError(
                        f"no callback reached {self.path} within {timeout:g} s. If the browser showed an error "
                        f"instead, fix what it says. {_REGISTER_HINT}")
        finally:
            self._server.shutdown()
            self._server.server_close()
            serving.join()
        if isinstance(self._outcome, ConnectError):
            raise self._outcome
        return self._outcome

    def answer(self, callback: Callback) -> tuple[int, str]:
        """Handle the first callback (later ones are told it is over): HTTP status and the page's message."""
        with self._lock:
            if self._outcome is not None:
                return 409, "This sign-in is over (already handled, or timed out): return to the terminal."
            try:
                self._outcome = self._handle(callback)
            except ConnectError as error:
                self._outcome = error
            return (200, f"{self._outcome} You can close this tab.") if isinstance(self._outcome, str) \
                else (400, f"Not connected: {self._outcome}")

    def finished(self) -> None:
        self._done.set()


class _CallbackHandler(http.server.BaseHTTPRequestHandler):
    timeout = 30  # a browser's speculative connection that sends nothing must not hold a thread for long

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        listener: CallbackListener = self.server.listener
        path, _, query = self.path.partition("?")
        if path != listener.path:
            self._page(404, "Not the Acumatica connect callback.")
            return
        status, message = listener.answer(Callback.from_query(query))
        try:
            self._page(status, message)
        finally:
            if status != 409:
                listener.finished()

    def _page(self, status: int, message: str) -> None:
        body = (f"<!doctype html><meta charset='utf-8'><title>Acumatica connect</title>"
                f"<p>{html.escape(message)}</p>").encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the request line holds the code
        return None


def connect(conn_id: str, redirect_uri: str, listen: bool, timeout: float, stdin: TextIO, stdout: TextIO) -> str:
    """Run the whole flow for connection `conn_id`; return the closing message (raise ConnectError)."""
    try:
        hook = AcumaticaHook(conn_id)
    except AirflowNotFoundException:
        raise ConnectError(f"Acumatica connection {conn_id!r} is not defined: create it (Admin > Connections, "
                           f"or AIRFLOW_CONN_{conn_id.upper()}) with auth_type oauth2_code.") from None
    except AcumaticaError as error:
        raise ConnectError(str(error)) from None
    with hook:
        flow = ConnectFlow(hook, redirect_uri)
        flow.check_authorization_request()
        listener = CallbackListener(redirect_uri) if listen else None
        settings = hook.settings
        _say(stdout, f"Connection {conn_id!r}: tenant {settings.tenant} at {settings.instance_url}, "
                     f"client {settings.client_id}.")
        if listener is not None:
            host, port = listener.address
            _say(stdout, f"Listening on {host}:{port} for {redirect_uri} (up to {timeout:g} s).")
        _say(stdout, "Open this URL in a browser and sign in to Acumatica:\n\n" + flow.url + "\n")
        if listener is not None:
            return listener.wait(flow.complete, timeout)
        _say(stdout, f"The browser then goes to {redirect_uri}?code=... (the page may not load: that is fine). "
                     "Paste that full address here and press Enter:")
        pasted = stdin.readline().strip()
        if not pasted:
            raise ConnectError("nothing was pasted: run the command again and paste the redirected address.")
        return flow.complete(Callback.from_query(urlsplit(pasted).query))


def main(argv: Sequence[str] | None = None, stdin: TextIO | None = None, stdout: TextIO | None = None,
         stderr: TextIO | None = None) -> int:
    """The command line; exit status 0 when connected, 1 when not (the reason goes to stderr)."""
    arguments = _parser().parse_args(argv)
    stdout, stderr = stdout or sys.stdout, stderr or sys.stderr
    try:
        with _metadata_db_connections():
            message = connect(arguments.conn_id, arguments.redirect_uri, not arguments.no_listen, arguments.timeout,
                              stdin or sys.stdin, stdout)
    except ConnectError as error:
        _say(stderr, f"Not connected: {error}")
        return 1
    _say(stdout, message)
    return 0


@contextlib.contextmanager
def _metadata_db_connections() -> Iterator[None]:
    """Let the command find connections kept in the metadata database, as `airflow connections` does: outside
    tasks and servers, Airflow 3 reads only environment variables and external secrets backends."""
    previous = os.environ.get(_PROCESS_CONTEXT)
    os.environ.setdefault(_PROCESS_CONTEXT, "server")
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(_PROCESS_CONTEXT, None)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m airflow_provider_acumatica.hooks.connect",
        description="Authorize an oauth2_code Acumatica connection in a browser and store its refresh-token chain.",
    )
    parser.add_argument("--conn-id", required=True, help="the Airflow connection (auth_type oauth2_code)")
    parser.add_argument("--redirect-uri", default=DEFAULT_REDIRECT_URI,
                        help=f"as registered in Connected Applications (SM303010); default {DEFAULT_REDIRECT_URI}")
    parser.add_argument("--no-listen", action="store_true",
                        help="do not listen: paste the redirected address instead (headless servers)")
    parser.add_argument("--timeout", type=_positive_seconds, default=DEFAULT_TIMEOUT_SECONDS,
                        help=f"seconds to wait for the callback (default {DEFAULT_TIMEOUT_SECONDS:g})")
    return parser


def _positive_seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = float("nan")
    if not seconds > 0:
        raise argparse.ArgumentTypeError(f"--timeout must be a number of seconds > 0, got {text!r}")
    return seconds


def _server_reason(answer: requests.Response) -> str:
    """The OAuth error of a refusal body when it has one (never the body itself: it may echo anything)."""
    try:
        body = answer.json()
    except ValueError:
        return answer.reason or "refused"
    if not isinstance(body, dict):
        return answer.reason or "refused"
    return str(body.get("error_description") or body.get("error") or answer.reason or "refused")


def _say(stream: TextIO, text: str) -> None:
    stream.write(text + "\n")
    stream.flush()


if __name__ == "__main__":
    sys.exit(main())
