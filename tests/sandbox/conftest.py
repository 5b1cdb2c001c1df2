"""Fixtures of the sandbox tests: sandboxes on free ports and signed-in `requests` sessions."""

from __future__ import annotations

import pytest
import requests

from airflow_provider_acumatica.sandbox import SANDBOX_PASSWORD, SANDBOX_USER, SandboxSettings, start_sandbox

REST = "/entity/Default/24.200.001"


def sign_in(sandbox, tenant: str = "Company") -> requests.Session:
    """A cookie session signed in to `tenant`."""
    session = requests.Session()
    response = session.post(
        f"{sandbox.url}/entity/auth/login", json={"name": SANDBOX_USER, "password": SANDBOX_PASSWORD, "tenant": tenant}
    )
    assert response.status_code == 204, response.text
    return session


@pytest.fixture(scope="module")
def shared_sandbox():
    """A read-only sandbox of 3,000 large-table rows shared by a module's tests (never mutate it)."""
    with start_sandbox(SandboxSettings(rows=3000, seed=11)) as sandbox:
        yield sandbox


@pytest.fixture(scope="module")
def shared_session(shared_sandbox):
    session = sign_in(shared_sandbox)
    yield session
    session.post(f"{shared_sandbox.url}/entity/auth/logout")


@pytest.fixture
def make_sandbox():
    """Start sandboxes with settings overrides (small data by default); all stopped after the test."""
    started = []

    def start(**overrides):
        settings = SandboxSettings(**{"rows": 200, **overrides})
        sandbox = start_sandbox(settings)
        started.append(sandbox)
        return sandbox

    yield start
    for sandbox in started:
        sandbox.stop()
