"""Licence seats of OAuth tokens: a token opens a session on first use; a grant's refreshed tokens share its one
session; a bearer sign-out frees it; `max_sessions` refuses the next one with "API Login Limit", worded apart
from request throttling."""

from __future__ import annotations

import requests
from conftest import REST, sign_in

from airflow_provider_acumatica.sandbox import SANDBOX_CLIENT_SECRET, SANDBOX_PASSWORD, sandbox_client_id


def _grant(sandbox, scope="api offline_access") -> dict:
    response = requests.post(
        f"{sandbox.url}/identity/connect/token",
        data={
            "grant_type": "password",
            "username": "admin",
            "password": SANDBOX_PASSWORD,
            "scope": scope,
            "client_id": sandbox_client_id("Company"),
            "client_secret": SANDBOX_CLIENT_SECRET,
        },
    )
    assert response.status_code == 200, response.text
    return response.json()


def _refresh(sandbox, refresh_token: str) -> dict:
    response = requests.post(
        f"{sandbox.url}/identity/connect/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "client_id": sandbox_client_id("Company"),
            "client_secret": SANDBOX_CLIENT_SECRET,
        },
    )
    assert response.status_code == 200, response.text
    return response.json()


def _get(sandbox, token: str) -> requests.Response:
    return requests.get(f"{sandbox.url}{REST}/WCCCode", headers={"Authorization": f"Bearer {token}"})


def _logout(sandbox, token: str) -> requests.Response:
    return requests.post(f"{sandbox.url}/entity/auth/logout", headers={"Authorization": f"Bearer {token}"})


def _open(sandbox) -> int:
    return sandbox.control.counters()["open_sessions"]


def test_a_token_takes_a_seat_on_first_use_and_a_bearer_sign_out_frees_it(make_sandbox):
    sandbox = make_sandbox(max_sessions=1)
    token = _grant(sandbox)["access_token"]
    assert _open(sandbox) == 0
    assert _get(sandbox, token).status_code == 200 and _open(sandbox) == 1
    refused = requests.post(
        f"{sandbox.url}/entity/auth/login", json={"name": "admin", "password": SANDBOX_PASSWORD, "tenant": "Company"}
    )
    assert refused.status_code == 429 and "API Login Limit" in refused.json()["exceptionMessage"]
    assert _logout(sandbox, token).status_code == 204 and _open(sandbox) == 0
    sign_in(sandbox)  # the seat is free again
    refused = _get(sandbox, token)  # the token is still valid, but its next use needs a new session
    assert refused.status_code == 429 and refused.json()["message"] == "API Login Limit"


def test_every_token_refreshed_from_one_grant_shares_its_session(make_sandbox):
    sandbox = make_sandbox(max_sessions=1)
    first = _grant(sandbox)
    second = _refresh(sandbox, first["refresh_token"])
    third = _refresh(sandbox, second["refresh_token"])
    assert [_get(sandbox, answer["access_token"]).status_code for answer in (first, second, third)] == [200] * 3
    assert _open(sandbox) == 1
    other = _grant(sandbox)  # its own grant: its own session, refused for want of a seat
    assert _get(sandbox, other["access_token"]).status_code == 429
    odata = requests.get(
        f"{sandbox.url}/t/Company/api/odata/dac/PMProject", headers={"Authorization": f"Bearer {other['access_token']}"}
    )
    assert odata.status_code == 429 and odata.json()["error"]["message"].startswith("API Login Limit")
    _logout(sandbox, second["access_token"])
    assert _get(sandbox, other["access_token"]).status_code == 200


def test_api_only_tokens_hold_their_seat_until_they_expire(make_sandbox):
    sandbox = make_sandbox(max_sessions=1, token_ttl=3600, session_idle_seconds=600)
    token = _grant(sandbox, scope="api")["access_token"]
    assert _get(sandbox, token).status_code == 200
    sandbox.control.advance_clock(1800)  # idle past the session timeout, yet the token's session lasts
    assert _open(sandbox) == 1
    sandbox.control.advance_clock(1801)
    assert _open(sandbox) == 0 and _get(sandbox, token).status_code == 401


def test_concurrent_access_tokens_take_a_seat_for_each_request_only(make_sandbox):
    sandbox = make_sandbox(max_sessions=1)
    token = _grant(sandbox, scope="api api:concurrent_access")["access_token"]
    assert [_get(sandbox, token).status_code for _ in range(3)] == [200] * 3
    counters = sandbox.control.counters()
    assert (counters["logins"], counters["logouts"], counters["open_sessions"]) == (3, 3, 0)
    sign_in(sandbox)
    assert _get(sandbox, token).status_code == 429


def test_a_seat_refusal_and_a_throttle_are_worded_apart(make_sandbox):
    sandbox = make_sandbox(max_sessions=1, requests_per_minute=4)
    token = _grant(sandbox)["access_token"]
    assert _get(sandbox, token).status_code == 200
    seat = requests.post(
        f"{sandbox.url}/entity/auth/login", json={"name": "admin", "password": SANDBOX_PASSWORD, "tenant": "Company"}
    )
    _get(sandbox, token)
    throttled = _get(sandbox, token)
    assert seat.status_code == throttled.status_code == 429
    assert seat.json()["message"] == "API Login Limit" and "API Login Limit" in seat.json()["exceptionMessage"]
    assert "API Login Limit" not in throttled.text and "requests per minute" in throttled.json()["exceptionMessage"]
