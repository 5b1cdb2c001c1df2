"""The FastAPI app the plugin mounts under /acumatica: connect a tenant in the browser, and the Acumatica page.

Airflow does not authenticate plugin apps: every route but the callback depends on Airflow's own auth
(`requires_access_connection`, which reads the UI's `_token` cookie or an `Authorization: Bearer` JWT), so
an anonymous caller gets 401 and a user who may not edit the connection 403. The callback is reached from
Acumatica and trusted only through its signed, single-use state (plugins/flows.py).
"""

from __future__ import annotations

from datetime import datetime, timezone
from urllib.parse import quote

from airflow.api_fastapi.core_api.security import GetUserDep, requires_access_connection
from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from airflow_provider_acumatica.hooks.acumatica import AcumaticaHook
from airflow_provider_acumatica.hooks.connect import Callback, ConnectError, ConnectFlow, exchange, refusal
from airflow_provider_acumatica.plugins import pages, status
from airflow_provider_acumatica.plugins.flows import FlowRefused, FlowStore, StateSigner, new_nonce

URL_PREFIX = "/acumatica"
CALLBACK_PATH = "/oauth2redirect"
app = FastAPI(title="Acumatica", docs_url=None, redoc_url=None, openapi_url=None)
CanRead = Depends(requires_access_connection("GET"))
CanEdit = Depends(requires_access_connection("PUT"))


def callback_url(request: Request | None = None) -> str:
    """The redirect URI to register in Acumatica: `[api] base_url` + /acumatica/oauth2redirect."""
    from airflow.configuration import conf

    base = (conf.get("api", "base_url", fallback="") or "").rstrip("/")
    if not base and request is not None:
        return str(request.url_for("oauth2redirect"))
    return f"{base or 'http://localhost:8080'}{URL_PREFIX}{CALLBACK_PATH}"


def _signer() -> StateSigner:
    from airflow.configuration import conf

    return StateSigner(conf.get("api", "secret_key", fallback=""))


def _html(title: str, body: str, status_code: int = 200) -> HTMLResponse:
    return HTMLResponse(pages.page(title, body), status_code=status_code, headers={"Cache-Control": "no-store"})


def _hook(conn_id: str) -> AcumaticaHook:
    try:
        return AcumaticaHook(conn_id)
    except Exception as error:  # noqa: BLE001 - not found or invalid settings: the message names the field
        raise ConnectError(f"connection {conn_id!r} cannot be used: {error}") from None


@app.get("/", include_in_schema=False)
def index() -> RedirectResponse:
    return RedirectResponse(f"{URL_PREFIX}/status")


@app.get("/connections/{connection_id}", dependencies=[CanRead], response_class=HTMLResponse)
def connect_page(connection_id: str, request: Request) -> HTMLResponse:
    """What connecting this connection means, the callback URL to register, and the Connect button."""
    state = status.connection_state(connection_id)
    title = f"Connect {connection_id}"
    if state.problem:
        return _html(title, pages.box("bad", pages.text(state.problem)), 404)
    chain = state.chain
    rows = [
        ("Tenant", pages.text(state.tenant)),
        ("Instance", pages.text(state.instance_url)),
        ("Authentication", pages.text(state.auth_type)),
        ("Callback URL to register", f"<code id='callback-url'>{pages.text(callback_url(request))}</code>"),
        ("Refresh-token chain", _chain_text(state)),
        ("Last refresh", pages.when(chain.issued_at) if chain else "—"),
    ]
    body = pages.table(None, rows)
    if state.auth_type == "oauth2_code":
        body += (
            f"<p><a class='button' id='connect' href='{URL_PREFIX}/connections/{quote(connection_id)}/connect'>"
            "Connect</a> <span class='muted'>You sign in to Acumatica as the user the DAGs act as, and "
            "allow access.</span></p>"
        )
    else:
        body += "<p class='muted'>Only an oauth2_code connection is connected in a browser.</p>"
    return _html(title, body)


@app.get("/connections/{connection_id}/connect", dependencies=[CanEdit])
def connect(connection_id: str, request: Request, user: GetUserDep):
    """Start the authorization code flow: redirect to the tenant's /identity/connect/authorize."""
    redirect_uri = callback_url(request)
    try:
        hook = _hook(connection_id)
        with hook:
            nonce = new_nonce()
            flow = ConnectFlow(
                hook,
                redirect_uri,
                _signer().sign(connection_id, user.get_name(), nonce),
                register_hint=_register_hint(redirect_uri),
            )
            flow.check_authorization_request()
            FlowStore(hook.get_conn().token_store).start(
                nonce, hook.settings.token_key, connection_id, user.get_name(), flow.code_verifier
            )
    except ConnectError as error:
        return _html(f"Cannot connect {connection_id}", pages.box("bad", f"<p>{pages.text(error)}</p>"), 400)
    return RedirectResponse(flow.url, status_code=302)


@app.get(CALLBACK_PATH, name="oauth2redirect")
def oauth2redirect(request: Request) -> HTMLResponse:
    """Acumatica's redirect: check the state, trade the code, store the chain; say what happened."""
    callback = Callback.from_query(request.url.query)
    try:
        signed = _signer().verify(callback.state)
    except FlowRefused as refused:
        return _refused(refused)
    title = f"Connect {signed.conn_id}"
    try:
        hook = _hook(signed.conn_id)
        with hook:
            flows = FlowStore(hook.get_conn().token_store)
            verifier = flows.claim(signed)
            if callback.error:
                raise ConnectError(refusal(callback))
            if not callback.code:
                raise ConnectError("Acumatica's answer carries no authorization code: start the sign-in again.")
            exchange(hook, callback_url(request), callback.code, verifier)
            at = flows.finish(signed.nonce)
            tenant, instance = hook.tenant, hook.settings.instance_url
    except FlowRefused as refused:
        return _refused(refused)
    except ConnectError as error:
        again = f"<a href='{URL_PREFIX}/connections/{quote(signed.conn_id)}'>Start again</a>"
        return _html(title, pages.box("bad", f"<p><b>Not connected.</b> {pages.text(error)}</p><p>{again}</p>"), 400)
    body = pages.box(
        "ok",
        (
            f"<p><b>Connected.</b> Tenant <b>{pages.text(tenant)}</b> at {pages.text(instance)}, connection "
            f"<code>{pages.text(signed.conn_id)}</code>, by Airflow user <b>{pages.text(signed.user)}</b> at "
            f"{pages.when(at)}.</p><p>Tasks now read through this refresh-token chain; it rotates on every refresh "
            "and lives in the connection's token store.</p>"
        ),
    )
    return _html(title, body + f"<p><a href='{URL_PREFIX}/status'>Acumatica status</a></p>")


@app.get("/status", dependencies=[CanRead], response_class=HTMLResponse)
def status_page() -> HTMLResponse:
    """Every tenant: connection state and, per table, rows, watermark, last run, lag and last error."""
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session

    now = datetime.now(timezone.utc)
    config, problem = status.load_bundle_config()
    with create_session() as session:
        conn_ids = sorted(
            session.scalars(
                Connection.__table__.select()
                .with_only_columns(Connection.conn_id)
                .where(Connection.conn_type == "acumatica")
            )
        )
    body = f"<p class='muted'>As of {pages.when(now)}.</p>"
    if problem:
        body += pages.box("bad", f"<p>Bundle config: {pages.text(problem)}</p>")
    for tenant in status.tenant_states(config, conn_ids, now):
        body += _tenant_section(tenant, now)
    return _html("Acumatica", body)


def _tenant_section(tenant: status.TenantState, now: datetime) -> str:
    connection = tenant.connection
    link = f"<a href='{URL_PREFIX}/connections/{quote(connection.conn_id)}'>{pages.text(connection.conn_id)}</a>"
    facts = pages.table(
        ("Connection", "Authentication", "Chain", "Last refresh"),
        [
            (
                link,
                pages.text(connection.auth_type or "—"),
                _chain_text(connection),
                pages.when(connection.chain.issued_at) if connection.chain else "—",
            )
        ],
    )
    section = f"<h2 id='tenant-{pages.text(tenant.name)}'>{pages.text(tenant.name)}</h2>{facts}"
    for problem in (connection.problem, tenant.problem):
        if problem:
            section += pages.box("bad", pages.text(problem))
    if tenant.tables:
        section += pages.table(
            ("Table", "Rows", "Watermark", "Last finished run", "Lag behind now", "Last error"),
            [
                (
                    pages.text(table.table),
                    pages.text(table.rows if table.rows is not None else "—"),
                    pages.when(table.watermark),
                    pages.when(table.finished_at),
                    pages.duration(table.lag_seconds(now)),
                    f"<span class='bad'>{pages.text(table.last_error)}</span>" if table.last_error else "—",
                )
                for table in tenant.tables
            ],
        )
    return section


def _chain_text(state: status.ConnectionState) -> str:
    if state.auth_type == "cookie":
        return "<span class='muted'>cookie sign-in: no chain</span>"
    if state.chain is None or not state.chain.connected:
        return "<span class='bad'>not connected</span>"
    who = f" by {pages.text(state.connected.user)} at {pages.when(state.connected.at)}" if state.connected else ""
    grants = "1 token grant" if state.chain.refreshes == 1 else f"{state.chain.refreshes} token grants"
    return f"<span class='ok'>connected</span>{who}; {grants}"


def _refused(refused: FlowRefused) -> HTMLResponse:
    advice = {
        "expired": "Start the sign-in again from the connection's Connect page and finish within ten minutes.",
        "replayed": "Nothing was changed. If the connection is not connected yet, start the sign-in again.",
    }.get(refused.reason, "Nothing was stored. Start the sign-in from the connection's Connect page in this Airflow.")
    body = pages.box("bad", f"<p><b>Not connected: {pages.text(refused)}.</b></p><p>{pages.text(advice)}</p>")
    return _html("Acumatica sign-in refused", body, 400)


def _register_hint(redirect_uri: str) -> str:
    return (
        f"Register exactly {redirect_uri} as a Redirect URI of the client in Acumatica's Connected Applications "
        "form (SM303010); it is [api] base_url + /acumatica/oauth2redirect."
    )
