"""`airflow-acumatica connect` (also `python -m ...hooks.connect`) over real HTTP: sandbox identity server,
real listener, real token stores."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import threading
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
import sqlalchemy as sa

from airflow_provider_acumatica.cli.main import main as cli_main
from airflow_provider_acumatica.hooks.acumatica import AcumaticaHook
from airflow_provider_acumatica.hooks.connect import DEFAULT_REDIRECT_URI
from airflow_provider_acumatica.sandbox import SANDBOX_CLIENT_SECRET


def main(argv, **streams) -> int:
    return cli_main(["connect", *argv], **streams)


CONN_ID = "acumatica_company"
AUTHORIZE = "/identity/connect/authorize"
PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _free_redirect_uri() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://localhost:{port}/oauth/callback"


def _code_connection(acumatica_connection, sandbox, **options) -> str:
    return acumatica_connection(sandbox, conn_id=CONN_ID, auth_type="oauth2_code", login=None, password=None, **options)


def _read_authorization_url(stdout) -> str:
    """The printed URL: the listener is bound before it is printed, so it is ready once this returns."""
    for line in iter(stdout.readline, ""):
        if AUTHORIZE in line:
            return line.strip()
    raise AssertionError("the command ended without printing an authorization URL")


def _stored_chain(conn_id: str):
    with AcumaticaHook(conn_id) as hook:
        return hook.get_conn().token_store.read(hook.settings.token_key)


def _assert_chain_works_and_stays_secret(conn_id: str, output: str, code: str) -> None:
    chain = _stored_chain(conn_id)
    assert chain.access_token and chain.refresh_token
    for secret in (chain.access_token, chain.refresh_token, code, SANDBOX_CLIENT_SECRET):
        assert secret not in output
    with AcumaticaHook(conn_id) as hook:
        assert len(hook.get_entity_page("Project", top=2)) == 2


class _CliThread:
    """main() in a thread, its stdout a pipe the test reads while it runs."""

    def __init__(self, *argv: str) -> None:
        read_end, write_end = os.pipe()
        self.stdout = os.fdopen(read_end, encoding="utf-8")
        self._writer = os.fdopen(write_end, "w", encoding="utf-8")
        self.stderr = io.StringIO()
        self.status: int | None = None
        self._thread = threading.Thread(target=self._run, args=(argv,), daemon=True)
        self._thread.start()

    def _run(self, argv) -> None:
        try:
            self.status = main(
                ["--conn-id", CONN_ID, *argv], stdin=io.StringIO(), stdout=self._writer, stderr=self.stderr
            )
        finally:
            self._writer.close()

    def finish(self) -> tuple[int | None, str, str]:
        self._thread.join(timeout=60)
        assert not self._thread.is_alive(), "the command did not stop after its callback"
        rest = self.stdout.read()
        self.stdout.close()
        return self.status, rest, self.stderr.getvalue()


def _run_cli_process(*argv: str) -> subprocess.Popen:
    """The real command line, with the connection in AIRFLOW_CONN_<ID> of the inherited environment."""
    return subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_acumatica.hooks.connect", "--conn-id", CONN_ID, *argv],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=PROJECT_ROOT,
    )


def test_listener_receives_the_callback_and_starts_a_working_chain(new_sandbox, acumatica_connection, postgres_schema):
    url, schema = postgres_schema
    # Trust auth ignores the password: it is here to prove the printed store URL masks it.
    store = sa.engine.make_url(url).set(password="pw-never-printed", query={"options": f"-csearch_path={schema}"})
    redirect_uri = _free_redirect_uri()
    sandbox = new_sandbox(rows=10, redirect_uris=(redirect_uri,))
    _code_connection(acumatica_connection, sandbox, token_store=store.render_as_string(hide_password=False))

    process = _run_cli_process("--redirect-uri", redirect_uri)
    printed = _read_authorization_url(process.stdout)
    page = requests.get(printed, timeout=30)  # the sandbox signs admin in and redirects to the listener
    out, err = process.communicate(timeout=60)

    assert process.returncode == 0, err
    assert page.status_code == 200 and "close this tab" in page.text
    assert "postgresql+psycopg://postgres:***@127.0.0.1:5432/test" in out and "pw-never-printed" not in out + err
    code = parse_qs(urlsplit(page.history[-1].headers["Location"]).query)["code"][0]
    _assert_chain_works_and_stays_secret(CONN_ID, printed + out + err + page.text, code)


def test_no_listen_reads_the_pasted_address(new_sandbox, acumatica_connection):
    sandbox = new_sandbox(rows=10, redirect_uris=(DEFAULT_REDIRECT_URI,))
    _code_connection(acumatica_connection, sandbox)

    process = _run_cli_process("--no-listen")
    printed = _read_authorization_url(process.stdout)
    redirected = requests.get(printed, allow_redirects=False, timeout=30).headers["Location"]
    assert redirected.startswith(DEFAULT_REDIRECT_URI)
    out, err = process.communicate(input=redirected + "\n", timeout=60)

    assert process.returncode == 0, err
    assert "Connected" in out and "acumatica_tokens.db" not in out  # the connection's own store, not the default
    code = parse_qs(urlsplit(redirected).query)["code"][0]
    _assert_chain_works_and_stays_secret(CONN_ID, printed + out + err, code)


def test_state_mismatch_is_refused_and_nothing_is_stored(new_sandbox, acumatica_connection):
    redirect_uri = _free_redirect_uri()
    sandbox = new_sandbox(rows=10, redirect_uris=(redirect_uri,))
    _code_connection(acumatica_connection, sandbox)

    cli = _CliThread("--redirect-uri", redirect_uri)
    redirected = urlsplit(
        requests.get(_read_authorization_url(cli.stdout), allow_redirects=False, timeout=30).headers["Location"]
    )
    query = {name: values[0] for name, values in parse_qs(redirected.query).items()}
    origin = f"{redirected.scheme}://{redirected.netloc}"
    assert requests.get(origin + "/favicon.ico", timeout=30).status_code == 404  # not the callback: still waiting
    forged = requests.get(f"{origin}{redirected.path}?{urlencode({**query, 'state': 'forged'})}", timeout=30)
    status, _, err = cli.finish()

    assert status == 1 and forged.status_code == 400
    assert "state does not match" in forged.text and "state does not match" in err
    assert _stored_chain(CONN_ID) is None


@pytest.mark.parametrize("refusal", ["access_denied", "expired_code"])
def test_identity_server_refusal_exits_1_with_the_reason(new_sandbox, acumatica_connection, refusal):
    redirect_uri = _free_redirect_uri()
    sandbox = new_sandbox(rows=10, redirect_uris=(redirect_uri,))
    _code_connection(acumatica_connection, sandbox)

    cli = _CliThread("--redirect-uri", redirect_uri)
    printed = _read_authorization_url(cli.stdout)
    if refusal == "access_denied":
        # The sandbox always consents, so the test sends the redirect a declining user's browser would get.
        state = parse_qs(urlsplit(printed).query)["state"][0]
        callback = f"{redirect_uri}?{urlencode({'error': 'access_denied', 'state': state})}"
        expected = "access_denied"
    else:
        callback = requests.get(printed, allow_redirects=False, timeout=30).headers["Location"]
        sandbox.control.advance_clock(301)  # the user came back after the code's lifetime
        expected = "invalid_grant"
    page = requests.get(callback, timeout=30)
    status, _, err = cli.finish()

    assert status == 1 and page.status_code == 400
    assert expected in page.text and expected in err
    assert _stored_chain(CONN_ID) is None


def test_unregistered_redirect_uri_is_reported_before_the_browser(new_sandbox, acumatica_connection):
    sandbox = new_sandbox(rows=10, redirect_uris=("http://localhost:8080/oauth/callback",))
    _code_connection(acumatica_connection, sandbox)
    unregistered = _free_redirect_uri()
    out, err = io.StringIO(), io.StringIO()

    status = main(["--conn-id", CONN_ID, "--redirect-uri", unregistered], stdin=io.StringIO(), stdout=out, stderr=err)

    assert status == 1 and AUTHORIZE not in out.getvalue()
    assert "is not registered" in err.getvalue() and unregistered in err.getvalue() and "SM303010" in err.getvalue()


def test_listener_gives_up_after_the_timeout_and_frees_the_port(new_sandbox, acumatica_connection):
    redirect_uri = _free_redirect_uri()
    sandbox = new_sandbox(rows=10, redirect_uris=(redirect_uri,))
    _code_connection(acumatica_connection, sandbox)
    err = io.StringIO()

    status = main(
        ["--conn-id", CONN_ID, "--redirect-uri", redirect_uri, "--timeout", "0.2"],
        stdin=io.StringIO(),
        stdout=io.StringIO(),
        stderr=err,
    )

    assert status == 1 and "no callback reached /oauth/callback within 0.2 s" in err.getvalue()
    with socket.socket() as again:
        again.bind(("127.0.0.1", urlsplit(redirect_uri).port))


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"auth_type": "cookie"}, "has auth_type 'cookie': set the extra auth_type to 'oauth2_code'"),
        ({"auth_type": "oauth2_code", "login": None, "password": None, "client_secret": ""}, "field 'client_secret'"),
        (None, "is not defined"),
    ],
)
def test_connection_that_cannot_connect_is_named(new_sandbox, acumatica_connection, options, expected):
    if options is not None:
        acumatica_connection(new_sandbox(rows=10), conn_id=CONN_ID, **options)
    err = io.StringIO()

    status = main(["--conn-id", CONN_ID], stdin=io.StringIO(), stdout=io.StringIO(), stderr=err)

    assert status == 1 and repr(CONN_ID) in err.getvalue() and expected in err.getvalue()
