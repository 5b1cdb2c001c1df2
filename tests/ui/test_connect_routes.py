"""The plugin's connect flow over real HTTP: a real API server, Airflow's own auth, the sandbox's identity server.

The browser is played by `requests` here (tests/ui/test_browser.py drives real Chromium); what Acumatica
would send back on a refusal (`error=access_denied`) is sent by the test, as the sandbox never refuses consent.
"""

from __future__ import annotations

import json
import time
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import requests
from itsdangerous import URLSafeTimedSerializer
from ui_server import CONN_ID, SECRET_KEY

from airflow_provider_acumatica.sandbox import SANDBOX_CLIENT_SECRET, SandboxSettings, sandbox_client_id, start_sandbox


def _connect_url(ui, conn_id: str = CONN_ID) -> str:
    return f"{ui.url}/acumatica/connections/{conn_id}/connect"


def _start(ui, user: str = "alice") -> str:
    """Start a flow as `user` (Bearer JWT); return the authorization URL it redirects to."""
    answer = requests.get(
        _connect_url(ui), headers={"Authorization": f"Bearer {ui.token(user)}"}, allow_redirects=False, timeout=30
    )
    assert answer.status_code == 302, answer.text
    return answer.headers["Location"]


def _callback_of(authorization_url: str) -> str:
    """Ask the sandbox to authorize (its user signed in and consenting): the callback URL it redirects to."""
    answer = requests.get(authorization_url, allow_redirects=False, timeout=30)
    assert answer.status_code == 302, answer.text
    return answer.headers["Location"]


def _with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {name: values[0] for name, values in parse_qs(parts.query).items()}
    query.update(changes)
    return urlunsplit(parts._replace(query=urlencode(query)))


def test_anonymous_calls_are_refused(airflow_ui):
    for path in (f"/acumatica/connections/{CONN_ID}/connect", f"/acumatica/connections/{CONN_ID}", "/acumatica/status"):
        answer = requests.get(airflow_ui.url + path, allow_redirects=False, timeout=30)
        assert answer.status_code == 401, (path, answer.status_code)
    forged = requests.get(
        _connect_url(airflow_ui), headers={"Authorization": "Bearer not-a-jwt"}, timeout=30, allow_redirects=False
    )
    assert forged.status_code in (401, 403)


def test_a_user_without_rights_on_connections_is_refused(airflow_ui):
    headers = {"Authorization": f"Bearer {airflow_ui.token('victor')}"}  # viewer: no access to connections
    assert requests.get(_connect_url(airflow_ui), headers=headers, allow_redirects=False, timeout=30).status_code == 403
    page = requests.get(f"{airflow_ui.url}/acumatica/connections/{CONN_ID}", headers=headers, timeout=30)
    assert page.status_code == 403


def test_connect_page_shows_the_callback_url_to_register(airflow_ui):
    headers = {"Authorization": f"Bearer {airflow_ui.token('alice')}"}
    page = requests.get(f"{airflow_ui.url}/acumatica/connections/{CONN_ID}", headers=headers, timeout=30)
    assert page.status_code == 200
    assert f"{airflow_ui.url}/acumatica/oauth2redirect" in page.text
    assert f"/acumatica/connections/{CONN_ID}/connect" in page.text


def test_connect_redirects_with_pkce_scope_and_a_signed_state(airflow_ui):
    location = _start(airflow_ui)
    assert location.startswith(f"{airflow_ui.sandbox.url}/identity/connect/authorize?")
    query = {name: values[0] for name, values in parse_qs(urlsplit(location).query).items()}
    assert query["code_challenge_method"] == "S256" and len(query["code_challenge"]) == 43
    assert query["scope"] == "api offline_access"
    assert query["redirect_uri"] == f"{airflow_ui.url}/acumatica/oauth2redirect"
    payload = URLSafeTimedSerializer(SECRET_KEY, salt="acumatica-oauth2-connect").loads(query["state"])
    assert (payload["c"], payload["u"], len(payload["n"])) == (CONN_ID, "alice", 32)
    assert "code_verifier" not in location


def _test_button(ui, conn_id: str, token_store: str) -> dict:
    """What the connection form's Test button asks the API server (the connection as the form holds it)."""
    body = {
        "connection_id": conn_id,
        "conn_type": "acumatica",
        "host": ui.sandbox.url,
        "extra": json.dumps(
            {
                "tenant": "Company",
                "auth_type": "oauth2_code",
                "client_id": sandbox_client_id("Company"),
                "client_secret": SANDBOX_CLIENT_SECRET,
                "token_store": token_store,
            }
        ),
    }
    answer = requests.post(
        f"{ui.url}/api/v2/connections/test",
        json=body,
        timeout=60,
        headers={"Authorization": f"Bearer {ui.token('alice')}"},
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_callback_connects_once_and_refuses_a_replay(airflow_ui):
    token_store = f"sqlite:///{airflow_ui.home / 'tokens.db'}"
    before = _test_button(airflow_ui, CONN_ID, token_store)
    assert before["status"] is False and "Browse > Acumatica" in before["message"]
    callback = _callback_of(_start(airflow_ui))
    connected = requests.get(callback, timeout=60)
    assert connected.status_code == 200, connected.text
    assert "Connected." in connected.text and "Company" in connected.text and "alice" in connected.text
    code = parse_qs(urlsplit(callback).query)["code"][0]
    assert code not in connected.text and SANDBOX_CLIENT_SECRET not in connected.text
    after = _test_button(airflow_ui, CONN_ID, token_store)
    assert after["status"] is True and "Signed in to tenant 'Company'" in after["message"]
    replayed = requests.get(callback, timeout=60)
    assert replayed.status_code == 400
    assert "already used once" in replayed.text


def test_the_plugin_is_registered_with_its_page(airflow_ui):
    plugins = requests.get(
        f"{airflow_ui.url}/api/v2/plugins", timeout=30, headers={"Authorization": f"Bearer {airflow_ui.token('alice')}"}
    ).json()["plugins"]
    plugin = next(plugin for plugin in plugins if plugin["name"] == "acumatica")
    assert plugin["fastapi_apps"][0]["url_prefix"] == "/acumatica"
    assert plugin["external_views"][0]["href"] == "/acumatica/status"


def test_tampered_and_expired_states_are_refused(airflow_ui):
    callback = _callback_of(_start(airflow_ui))
    state = parse_qs(urlsplit(callback).query)["state"][0]
    tampered = requests.get(
        _with_query(callback, state=state[:-2] + ("AA" if not state.endswith("AA") else "BB")), timeout=30
    )
    assert tampered.status_code == 400 and "does not carry this Airflow&#x27;s signature" in tampered.text

    serializer = URLSafeTimedSerializer(SECRET_KEY, salt="acumatica-oauth2-connect")
    payload = serializer.loads(state)
    signer = serializer.make_signer(serializer.salt)
    signer.get_timestamp = lambda: int(time.time()) - 3600  # the same state, signed an hour ago
    old_state = signer.sign(serializer.dump_payload(payload)).decode()
    expired = requests.get(_with_query(callback, state=old_state), timeout=30)
    assert expired.status_code == 400 and "has expired" in expired.text
    assert requests.get(callback, timeout=60).status_code == 200  # the genuine answer still works


def test_refusals_say_what_to_do(airflow_ui):
    state = parse_qs(urlsplit(_start(airflow_ui)).query)["state"][0]
    denied = requests.get(
        f"{airflow_ui.url}/acumatica/oauth2redirect?" + urlencode({"error": "access_denied", "state": state}),
        timeout=30,
    )
    assert denied.status_code == 400 and "access_denied" in denied.text and "consent" in denied.text

    state = parse_qs(urlsplit(_start(airflow_ui)).query)["state"][0]
    spent = requests.get(
        f"{airflow_ui.url}/acumatica/oauth2redirect?" + urlencode({"code": "not-a-code", "state": state}), timeout=30
    )
    assert spent.status_code == 400 and "invalid_grant" in spent.text and "start the sign-in again" in spent.text


def test_unknown_redirect_uri_is_reported_before_leaving_airflow(airflow_ui):
    with start_sandbox(SandboxSettings(rows=5)) as elsewhere:  # registers only its default redirect URI
        headers = {"Authorization": f"Bearer {airflow_ui.token('alice')}"}
        body = {
            "connection_id": "acumatica_elsewhere",
            "conn_type": "acumatica",
            "host": elsewhere.url,
            "extra": json.dumps(
                {
                    "tenant": "Company",
                    "auth_type": "oauth2_code",
                    "client_id": sandbox_client_id("Company"),
                    "client_secret": SANDBOX_CLIENT_SECRET,
                    "token_store": f"sqlite:///{airflow_ui.home / 'tokens.db'}",
                }
            ),
        }
        created = requests.post(f"{airflow_ui.url}/api/v2/connections", json=body, headers=headers, timeout=30)
        assert created.status_code == 201, created.text
        answer = requests.get(
            _connect_url(airflow_ui, "acumatica_elsewhere"), headers=headers, allow_redirects=False, timeout=30
        )
    assert answer.status_code == 400
    assert "is not registered" in answer.text
    assert f"Register exactly {airflow_ui.url}/acumatica/oauth2redirect" in answer.text


def test_only_code_connections_can_be_connected(airflow_ui):
    headers = {"Authorization": f"Bearer {airflow_ui.token('alice')}"}
    body = {
        "connection_id": "acumatica_cookie",
        "conn_type": "acumatica",
        "host": airflow_ui.sandbox.url,
        "login": "admin",
        "password": "x",
        "extra": json.dumps({"tenant": "Company", "auth_type": "cookie"}),
    }
    requests.post(f"{airflow_ui.url}/api/v2/connections", json=body, headers=headers, timeout=30)
    answer = requests.get(
        _connect_url(airflow_ui, "acumatica_cookie"), headers=headers, allow_redirects=False, timeout=30
    )
    assert answer.status_code == 400 and "oauth2_code" in answer.text
