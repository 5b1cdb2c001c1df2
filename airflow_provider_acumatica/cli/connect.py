"""`airflow-acumatica connect`: the loopback flow of an `oauth2_code` connection, from a terminal.

It prints the authorization URL, receives the identity server's redirect once on the redirect URI (a
one-shot HTTP listener; `--no-listen` reads the pasted redirected address from stdin instead, for headless
servers), and prints where the chain is stored. The UI's Connect button (plugins/) does the same in a browser.
"""

from __future__ import annotations

import argparse
import html
import http.server
import threading
from collections.abc import Callable
from typing import TextIO
from urllib.parse import urlsplit

from airflow_provider_acumatica.cli.common import CommandError, open_hook, positive_seconds, run_command, say
from airflow_provider_acumatica.hooks.connect import (
    DEFAULT_REDIRECT_URI,
    DEFAULT_TIMEOUT_SECONDS,
    REGISTER_HINT,
    Callback,
    ConnectError,
    ConnectFlow,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--conn-id", required=True, help="the Airflow connection (auth_type oauth2_code)")
    parser.add_argument(
        "--redirect-uri",
        default=DEFAULT_REDIRECT_URI,
        help=f"as registered in Connected Applications (SM303010); default {DEFAULT_REDIRECT_URI}",
    )
    parser.add_argument(
        "--no-listen",
        action="store_true",
        help="do not listen: paste the redirected address instead (headless servers)",
    )
    parser.add_argument(
        "--timeout",
        type=positive_seconds,
        default=DEFAULT_TIMEOUT_SECONDS,
        help=f"seconds to wait for the callback (default {DEFAULT_TIMEOUT_SECONDS:g})",
    )


def main(argv: list[str] | None = None) -> int:
    """`python -m airflow_provider_acumatica.hooks.connect`, the command's former name: this command alone."""
    import sys

    parser = argparse.ArgumentParser(
        prog="python -m airflow_provider_acumatica.hooks.connect", description="Same as `airflow-acumatica connect`."
    )
    add_arguments(parser)
    return run_command(run, parser.parse_args(argv), sys.stdin, sys.stdout, sys.stderr)


def run(arguments: argparse.Namespace, stdin: TextIO, stdout: TextIO, stderr: TextIO) -> int:
    try:
        message = connect(
            arguments.conn_id, arguments.redirect_uri, not arguments.no_listen, arguments.timeout, stdin, stdout
        )
    except ConnectError as error:
        raise CommandError(f"Not connected: {error}") from None
    say(stdout, message)
    return 0


class CallbackListener:
    """A one-shot HTTP listener on the redirect URI's host, port and path; bound as soon as it is created."""

    def __init__(self, redirect_uri: str) -> None:
        parts = urlsplit(redirect_uri)
        if parts.scheme != "http" or not parts.hostname:
            raise ConnectError(
                f"cannot listen on redirect URI {redirect_uri!r}: only an http:// URI of this machine "
                "(e.g. http://localhost:8765/oauth/callback) can be received here; use --no-listen."
            )
        self.path = parts.path or "/"
        try:
            self._server = http.server.ThreadingHTTPServer((parts.hostname, parts.port or 80), _CallbackHandler)
        except OSError as error:
            raise ConnectError(
                f"cannot listen on {parts.hostname}:{parts.port or 80} ({error.strerror}): choose a "
                "free port in --redirect-uri (registered in SM303010 too), or use --no-listen."
            ) from None
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
                        f"instead, fix what it says. {REGISTER_HINT}"
                    )
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
            return (
                (200, f"{self._outcome} You can close this tab.")
                if isinstance(self._outcome, str)
                else (400, f"Not connected: {self._outcome}")
            )

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
        body = (
            f"<!doctype html><meta charset='utf-8'><title>Acumatica connect</title><p>{html.escape(message)}</p>"
        ).encode()
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
        hook = open_hook(conn_id)
    except CommandError as error:
        raise ConnectError(str(error)) from None
    with hook:
        flow = ConnectFlow(hook, redirect_uri)
        flow.check_authorization_request()
        listener = CallbackListener(redirect_uri) if listen else None
        settings = hook.settings
        say(
            stdout,
            f"Connection {conn_id!r}: tenant {settings.tenant} at {settings.instance_url}, "
            f"client {settings.client_id}.",
        )
        if listener is not None:
            host, port = listener.address
            say(stdout, f"Listening on {host}:{port} for {redirect_uri} (up to {timeout:g} s).")
        say(stdout, "Open this URL in a browser and sign in to Acumatica:\n\n" + flow.url + "\n")
        if listener is not None:
            return listener.wait(flow.complete, timeout)
        say(
            stdout,
            f"The browser then goes to {redirect_uri}?code=... (the page may not load: that is fine). "
            "Paste that full address here and press Enter:",
        )
        pasted = stdin.readline().strip()
        if not pasted:
            raise ConnectError("nothing was pasted: run the command again and paste the redirected address.")
        return flow.complete(Callback.from_query(urlsplit(pasted).query))
