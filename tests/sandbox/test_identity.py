"""The OAuth2 identity server: discovery, code flow with PKCE and state, password grant, rotating refresh."""

from __future__ import annotations

import base64
import hashlib
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from conftest import REST

from airflow_provider_acumatica.sandbox import SANDBOX_CLIENT_SECRET, SANDBOX_PASSWORD, sandbox_client_id

REDIRECT = "http://localhost:8080/oauth/callback"


@pytest.fixture
def sandbox(make_sandbox):
    return make_sandbox(token_ttl=600)


def _token(sandbox, tenant="Company", **form):
    data = {"client_id": sandbox_client_id(tenant), "client_secret": SANDBOX_CLIENT_SECRET, **form}
    return requests.post(f"{sandbox.url}/identity/connect/token", data=data)


def _password(sandbox, tenant="Company", scope="api offline_access"):
    return _token(sandbox, tenant, grant_type="password", username="admin", password=SANDBOX_PASSWORD, scope=scope)


def _authorize(sandbox, **params):
    query = {
        "client_id": sandbox_client_id("Company"),
        "redirect_uri": REDIRECT,
        "response_type": "code",
        "scope": "api offline_access",
        "state": "s-42",
        **params,
    }
    return requests.get(f"{sandbox.url}/identity/connect/authorize", params=query, allow_redirects=False)


def _rest(sandbox, token):
    return requests.get(f"{sandbox.url}{REST}/WCCCode", headers={"Authorization": f"Bearer {token}"})


def test_discovery_document_names_the_endpoints(sandbox):
    document = requests.get(f"{sandbox.url}/identity/.well-known/openid-configuration").json()
    assert document["token_endpoint"] == f"{sandbox.url}/identity/connect/token"
    assert "S256" in document["code_challenge_methods_supported"] and "offline_access" in document["scopes_supported"]


def test_discovery_lists_only_what_is_served(sandbox):
    document = requests.get(f"{sandbox.url}/identity/.well-known/openid-configuration").json()
    endpoints = {name: url for name, url in document.items() if name.endswith("_endpoint") or name == "jwks_uri"}
    assert set(endpoints) == {"authorization_endpoint", "token_endpoint", "revocation_endpoint"}
    for url in endpoints.values():
        assert requests.post(url, allow_redirects=False).status_code != 404, url
    assert set(document["grant_types_supported"]) == {"authorization_code", "password", "refresh_token"}
    assert document["response_types_supported"] == ["code"] and "openid" not in document["scopes_supported"]
    refused = _authorize(sandbox, scope="api openid").headers["Location"]
    assert parse_qs(urlsplit(refused).query)["error"] == ["invalid_scope"]


def test_revoking_a_refresh_token_ends_its_chain(sandbox):
    first = _password(sandbox).json()
    second = _token(sandbox, grant_type="refresh_token", refresh_token=first["refresh_token"]).json()
    revoked = requests.post(
        f"{sandbox.url}/identity/connect/revocation",
        data={
            "token": second["refresh_token"],
            "token_type_hint": "refresh_token",
            "client_id": sandbox_client_id("Company"),
            "client_secret": SANDBOX_CLIENT_SECRET,
        },
    )
    assert revoked.status_code == 200
    assert (
        _token(sandbox, grant_type="refresh_token", refresh_token=second["refresh_token"]).json()["error"]
        == "invalid_grant"
    )
    assert (
        _rest(sandbox, first["access_token"]).status_code == 401
        and _rest(sandbox, second["access_token"]).status_code == 401
    )
    unknown = requests.post(
        f"{sandbox.url}/identity/connect/revocation",
        data={
            "token": "never-issued",
            "client_id": sandbox_client_id("Company"),
            "client_secret": SANDBOX_CLIENT_SECRET,
        },
    )
    wrong_secret = requests.post(
        f"{sandbox.url}/identity/connect/revocation",
        data={"token": first["refresh_token"], "client_id": sandbox_client_id("Company"), "client_secret": "nope"},
    )
    assert unknown.status_code == 200 and wrong_secret.status_code == 400


def test_revoking_an_access_token_leaves_the_chain(sandbox):
    first = _password(sandbox).json()
    requests.post(
        f"{sandbox.url}/identity/connect/revocation",
        data={
            "token": first["access_token"],
            "client_id": sandbox_client_id("Company"),
            "client_secret": SANDBOX_CLIENT_SECRET,
        },
    )
    assert _rest(sandbox, first["access_token"]).status_code == 401
    assert _token(sandbox, grant_type="refresh_token", refresh_token=first["refresh_token"]).status_code == 200


def test_client_ids_are_guid_at_tenant():
    guid, _, tenant = sandbox_client_id("Company").partition("@")
    assert tenant == "Company" and len(guid) == 36 and sandbox_client_id("Company") != sandbox_client_id("Subsidiary")


def test_code_flow_with_pkce_state_and_single_use_codes(sandbox):
    verifier = "v" * 64
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    location = _authorize(sandbox, code_challenge=challenge, code_challenge_method="S256").headers["Location"]
    query = parse_qs(urlsplit(location).query)
    assert location.startswith(REDIRECT) and query["state"] == ["s-42"]
    code = query["code"][0]
    wrong = _token(sandbox, grant_type="authorization_code", code=code, redirect_uri=REDIRECT, code_verifier="w" * 64)
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
    location = _authorize(sandbox, code_challenge=challenge, code_challenge_method="S256").headers["Location"]
    code = parse_qs(urlsplit(location).query)["code"][0]
    good = _token(sandbox, grant_type="authorization_code", code=code, redirect_uri=REDIRECT, code_verifier=verifier)
    assert good.status_code == 200 and _rest(sandbox, good.json()["access_token"]).status_code == 200
    again = _token(sandbox, grant_type="authorization_code", code=code, redirect_uri=REDIRECT, code_verifier=verifier)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


def test_unregistered_redirect_uri_is_refused_without_redirect(sandbox):
    response = _authorize(sandbox, redirect_uri="http://evil.example/cb")
    assert response.status_code == 400 and "Location" not in response.headers


def test_password_grant_and_wrong_secret(sandbox):
    answer = _password(sandbox).json()
    assert answer["token_type"] == "Bearer" and answer["expires_in"] == 600 and answer["refresh_token"]
    assert "refresh_token" not in _password(sandbox, scope="api").json()
    bad = requests.post(
        f"{sandbox.url}/identity/connect/token",
        data={
            "grant_type": "password",
            "client_id": sandbox_client_id("Company"),
            "client_secret": "nope",
            "username": "admin",
            "password": SANDBOX_PASSWORD,
        },
    )
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_client"


def test_refresh_rotates_and_reuse_is_invalid_grant(sandbox):
    first = _password(sandbox).json()["refresh_token"]
    second = _token(sandbox, grant_type="refresh_token", refresh_token=first)
    assert second.status_code == 200 and second.json()["refresh_token"] != first
    reuse = _token(sandbox, grant_type="refresh_token", refresh_token=first)
    assert reuse.status_code == 400 and reuse.json()["error"] == "invalid_grant"
    assert _token(sandbox, grant_type="refresh_token", refresh_token=second.json()["refresh_token"]).status_code == 200
    counters = sandbox.control.counters()
    assert (counters["token_refreshes"], counters["invalid_grant"]) == (2, 1)


def test_tokens_are_bound_to_their_tenant(sandbox):
    token = _password(sandbox, tenant="Subsidiary").json()["access_token"]
    mine = requests.get(f"{sandbox.url}{REST}/Employee", headers={"Authorization": f"Bearer {token}"}).json()
    truth = sandbox.control.truth("Subsidiary", "Employee")["records"]
    assert [e["id"] for e in mine] == [e["id"] for e in truth]
    odata = requests.get(
        f"{sandbox.url}/t/Company/api/odata/dac/PMProject", headers={"Authorization": f"Bearer {token}"}
    )
    assert odata.status_code == 401
    refresh = _password(sandbox, tenant="Subsidiary").json()["refresh_token"]
    assert (
        _token(sandbox, "Company", grant_type="refresh_token", refresh_token=refresh).json()["error"] == "invalid_grant"
    )


def test_access_token_expires_on_the_clock(sandbox):
    token = _password(sandbox).json()["access_token"]
    sandbox.control.advance_clock(599)
    assert _rest(sandbox, token).status_code == 200
    sandbox.control.advance_clock(2)
    assert _rest(sandbox, token).status_code == 401
