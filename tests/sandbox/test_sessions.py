"""Cookie sign-in: tenant and its `company` alias, logout, the licence limit, idle expiry on the clock."""

from __future__ import annotations

import requests
from conftest import REST, sign_in

from airflow_provider_acumatica.sandbox import SANDBOX_PASSWORD, SANDBOX_USER


def _login(sandbox, **body):
    return requests.post(
        f"{sandbox.url}/entity/auth/login", json={"name": SANDBOX_USER, "password": SANDBOX_PASSWORD, **body}
    )


def test_login_with_tenant_or_company_alias_but_not_both(make_sandbox):
    sandbox = make_sandbox()
    assert _login(sandbox, tenant="Company").status_code == 204
    assert _login(sandbox, company="subsidiary").status_code == 204
    assert _login(sandbox, tenant="Company", company="Company").status_code == 400
    assert _login(sandbox, tenant="Nowhere").status_code == 401
    assert (
        requests.post(
            f"{sandbox.url}/entity/auth/login", json={"name": SANDBOX_USER, "password": "bad", "tenant": "Company"}
        ).status_code
        == 401
    )


def test_session_sees_its_own_tenant(make_sandbox):
    sandbox = make_sandbox()
    company = sign_in(sandbox, "Company").get(f"{sandbox.url}{REST}/Employee").json()
    subsidiary = sign_in(sandbox, "Subsidiary").get(f"{sandbox.url}{REST}/Employee").json()
    assert {e["id"] for e in company}.isdisjoint({e["id"] for e in subsidiary})


def test_logout_closes_the_session(make_sandbox):
    sandbox = make_sandbox()
    session = sign_in(sandbox)
    assert sandbox.control.counters()["open_sessions"] == 1
    assert session.post(f"{sandbox.url}/entity/auth/logout").status_code == 204
    assert session.get(f"{sandbox.url}{REST}/Employee").status_code == 401
    counters = sandbox.control.counters()
    assert (counters["logins"], counters["logouts"], counters["open_sessions"]) == (1, 1, 0)


def test_login_limit_refuses_with_429_until_a_session_closes(make_sandbox):
    sandbox = make_sandbox(max_sessions=2)
    first, _ = sign_in(sandbox), sign_in(sandbox)
    refused = _login(sandbox, tenant="Company")
    assert refused.status_code == 429 and "API Login Limit" in refused.json()["exceptionMessage"]
    first.post(f"{sandbox.url}/entity/auth/logout")
    assert _login(sandbox, tenant="Company").status_code == 204
    assert sandbox.control.counters()["login_limit_refusals"] == 1


def test_idle_sessions_expire_on_the_sandbox_clock(make_sandbox):
    sandbox = make_sandbox(max_sessions=1, session_idle_seconds=600)
    session = sign_in(sandbox)
    sandbox.control.advance_clock(599)
    assert session.get(f"{sandbox.url}{REST}/WCCCode").status_code == 200
    sandbox.control.advance_clock(599)
    assert session.get(f"{sandbox.url}{REST}/WCCCode").status_code == 200
    sandbox.control.advance_clock(601)
    assert session.get(f"{sandbox.url}{REST}/WCCCode").status_code == 401
    assert sandbox.control.counters()["open_sessions"] == 0
    assert _login(sandbox, tenant="Company").status_code == 204
