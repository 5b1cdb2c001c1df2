"""The HTTP layer: a threading HTTP/1.1 keep-alive server in front of SandboxApp and the control API,
and `start_sandbox`, which runs it in a background thread on a free port."""

from __future__ import annotations

import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, unquote, urlsplit

from airflow_provider_acumatica.sandbox.app import SandboxApp
from airflow_provider_acumatica.sandbox.client import SandboxControl
from airflow_provider_acumatica.sandbox.control import handle_control
from airflow_provider_acumatica.sandbox.responses import Response
from airflow_provider_acumatica.sandbox.settings import SandboxSettings

_REASONS = {412: "Precondition Failed", 422: "Unprocessable Entity", 429: "Too Many Requests"}


class _Handler(BaseHTTPRequestHandler):
    """Turns HTTP requests into app calls and writes the answers (dropping or truncating on faults)."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are two writes: without TCP_NODELAY the body waits ~40 ms
    server_version = "Microsoft-IIS/10.0"
    sys_version = ""
    app: SandboxApp

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's naming
        self._serve("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._serve("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self._serve("PUT")

    def do_DELETE(self) -> None:  # noqa: N802
        self._serve("DELETE")

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - silence per-request logs
        return

    def _serve(self, method: str) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if parts.path.startswith("/_sandbox/"):
            response = handle_control(self.app, method, parts.path, body)
        else:
            params = dict(parse_qsl(parts.query, keep_blank_values=True))
            response = self.app.handle(method, parts.path, params, self.headers, body, unquote(self.path))
        self._write(response)

    def _write(self, response: Response) -> None:
        if response.drop:
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.send_response(response.status, _REASONS.get(response.status))
        self.send_header("Content-Type", response.content_type)
        declared = len(response.body) + (1024 if response.truncate else 0)
        self.send_header("Content-Length", str(declared))
        for name, value in response.headers:
            self.send_header(name, value)
        if response.truncate:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(response.body[: len(response.body) // 2] if response.truncate else response.body)
        if response.truncate:
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)


class _Server(ThreadingHTTPServer):
    """Tracks open connections so stop() can close keep-alive sockets a client still holds."""

    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address, handler) -> None:
        super().__init__(address, handler)
        self.connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    def process_request_thread(self, request, client_address) -> None:
        with self._connections_lock:
            self.connections.add(request)
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._connections_lock:
                self.connections.discard(request)

    def handle_error(self, request, client_address) -> None:
        """A client that hung up mid-answer (a timeout, a killed task) is normal traffic, not a server error."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)

    def close_connections(self) -> None:
        with self._connections_lock:
            for connection in list(self.connections):
                try:
                    connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


class Sandbox:
    """A running sandbox: `url`, `control`, `app` (its state, for in-process inspection) and `stop()`."""

    def __init__(self, app: SandboxApp, server: _Server, thread: threading.Thread) -> None:
        self.app = app
        self._server = server
        self._thread = thread
        host, port = server.server_address[:2]
        self.host, self.port = host, port
        self.url = f"http://{host}:{port}"
        self.control = SandboxControl(self.url)

    @property
    def settings(self) -> SandboxSettings:
        return self.app.settings

    def stop(self) -> None:
        """Stop serving, close client connections and release the port."""
        self._server.shutdown()
        self._server.close_connections()
        self._server.server_close()
        self.control.close()
        self._thread.join(timeout=10)

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()


def make_server(settings: SandboxSettings, host: str = "127.0.0.1", port: int = 0) -> tuple[SandboxApp, _Server]:
    """A bound (not yet serving) HTTP server for `settings`."""
    app = SandboxApp(settings)
    handler = type("SandboxHandler", (_Handler,), {"app": app})
    return app, _Server((host, port), handler)


def start_sandbox(settings: SandboxSettings | None = None, host: str = "127.0.0.1", port: int = 0) -> Sandbox:
    """Serve a sandbox from a background thread; `port=0` picks a free port (see `Sandbox.url`)."""
    app, server = make_server(settings or SandboxSettings(), host, port)
    thread = threading.Thread(
        target=server.serve_forever, args=(0.05,), name=f"acumatica-sandbox-{server.server_address[1]}", daemon=True
    )
    thread.start()
    return Sandbox(app, server, thread)
