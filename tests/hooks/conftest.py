"""Fixtures of the hook tests: sandboxes over real HTTP, and Airflow connections given as AIRFLOW_CONN_* JSON."""

from __future__ import annotations

import json
import os

import pytest

from airflow_provider_acumatica.sandbox import (
    SANDBOX_CLIENT_SECRET, SANDBOX_PASSWORD, SANDBOX_USER, SandboxSettings, sandbox_client_id, start_sandbox,
)

# The sandbox speaks plain HTTP on loopback; oauthlib refuses that unless told it is a test.
os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = "1"


@pytest.fixture(scope="session")
def shared_sandbox():
    """A small two-tenant sandbox for tests that only read; tests that count must reset its counters."""
    with start_sandbox(SandboxSettings(rows=300, seed=11)) as sandbox:
        yield sandbox


@pytest.fixture
def new_sandbox():
    """Start a sandbox with the given SandboxSettings fields; stopped after the test."""
    started = []

    def start(**settings):
        sandbox = start_sandbox(SandboxSettings(**settings))
        started.append(sandbox)
        return sandbox

    yield start
    for sandbox in started:
        sandbox.stop()


def connection_json(sandbox, auth_type: str = "cookie", tenant: str = "Company", login: str | None = SANDBOX_USER,
                    password: str | None = SANDBOX_PASSWORD, **extra) -> str:
    """The JSON form of an Airflow Connection to `sandbox` (what AIRFLOW_CONN_<ID> holds)."""
    from airflow.sdk import Connection

    fields = {"tenant": tenant, "auth_type": auth_type, "backoff_seconds": 0.01, **extra}
    if auth_type != "cookie":
        fields.setdefault("client_id", sandbox_client_id(tenant))
        fields.setdefault("client_secret", SANDBOX_CLIENT_SECRET)
    fields = {key: value for key, value in fields.items() if value is not None}
    connection = Connection(conn_id="x", conn_type="acumatica", host=sandbox.url, login=login, password=password,
                            extra=json.dumps(fields))
    return connection.as_json()


@pytest.fixture
def acumatica_connection(monkeypatch, tmp_path):
    """Define connection `conn_id` to a sandbox as AIRFLOW_CONN_<ID>; returns the conn_id."""

    def define(sandbox, conn_id: str = "acumatica_test", **options) -> str:
        options.setdefault("token_store", f"sqlite:///{tmp_path / 'tokens.db'}")
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", connection_json(sandbox, **options))
        return conn_id

    return define
