"""Shared fixtures: an isolated Airflow home, the sandbox over real HTTP, and the real PostgreSQL."""

from __future__ import annotations

import json
import os
import tempfile
import uuid

import pytest
from cryptography.fernet import Fernet

# Airflow reads its home when first imported: give the whole test session a private one.
os.environ["AIRFLOW_HOME"] = tempfile.mkdtemp(prefix="acumatica-test-airflow-")
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
# Every process of the session (pytest, `airflow db migrate`, worker subprocesses) must encrypt the token
# store with one key, as every worker of a deployment does; otherwise the first `airflow` command would
# write an airflow.cfg with its own key that only later processes see.
os.environ["AIRFLOW__CORE__FERNET_KEY"] = Fernet.generate_key().decode()

POSTGRES_URL_ENV = "ACUMATICA_TEST_POSTGRES_URL"
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"


def _sqlalchemy_postgres_url(url: str) -> str:
    """Use the psycopg 3 driver whatever scheme the variable gives."""
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """SQLAlchemy URL of the test PostgreSQL; skips when unreachable, but fails under CI=true."""
    import sqlalchemy

    url = _sqlalchemy_postgres_url(os.environ.get(POSTGRES_URL_ENV, DEFAULT_POSTGRES_URL))
    engine = sqlalchemy.create_engine(url)
    try:
        with engine.connect() as connection:
            connection.execute(sqlalchemy.text("select 1"))
    except Exception as error:  # noqa: BLE001 - any failure to connect means "unreachable"
        reason = f"PostgreSQL at {POSTGRES_URL_ENV} is unreachable: {type(error).__name__}"
        if os.environ.get("CI") == "true":
            pytest.fail(reason + " (CI=true: PostgreSQL tests must run)")
        pytest.skip(reason)
    finally:
        engine.dispose()
    return url


@pytest.fixture
def postgres_schema(postgres_url):
    """A fresh PostgreSQL schema for one test, dropped afterwards; yields (url, schema)."""
    import sqlalchemy

    schema = f"t_{uuid.uuid4().hex[:12]}"
    engine = sqlalchemy.create_engine(postgres_url)
    with engine.begin() as connection:
        connection.execute(sqlalchemy.text(f'create schema "{schema}"'))
    try:
        yield postgres_url, schema
    finally:
        with engine.begin() as connection:
            connection.execute(sqlalchemy.text(f'drop schema "{schema}" cascade'))
        engine.dispose()


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    """A SQLite warehouse file of this test."""
    return f"sqlite:///{tmp_path / 'warehouse.db'}"


# The sandbox speaks plain HTTP on loopback; oauthlib refuses that unless told it is a test.
os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = "1"


def connection_json(
    sandbox,
    auth_type: str = "cookie",
    tenant: str = "Company",
    login: str | None = "default",
    password: str | None = "default",
    **extra,
) -> str:
    """The JSON form of an Airflow Connection to `sandbox` (what AIRFLOW_CONN_<ID> holds).

    login/password default to the sandbox's user; None leaves them out (OAuth code flow)."""
    from airflow.sdk import Connection

    from airflow_provider_acumatica.sandbox import (
        SANDBOX_CLIENT_SECRET,
        SANDBOX_PASSWORD,
        SANDBOX_USER,
        sandbox_client_id,
    )

    fields = {"tenant": tenant, "auth_type": auth_type, "backoff_seconds": 0.01, **extra}
    if auth_type != "cookie":
        fields.setdefault("client_id", sandbox_client_id(tenant))
        fields.setdefault("client_secret", SANDBOX_CLIENT_SECRET)
    fields = {key: value for key, value in fields.items() if value is not None}
    connection = Connection(
        conn_id="x",
        conn_type="acumatica",
        host=sandbox.url,
        login=SANDBOX_USER if login == "default" else login,
        password=SANDBOX_PASSWORD if password == "default" else password,
        extra=json.dumps(fields),
    )
    return connection.as_json()


@pytest.fixture
def acumatica_connection(monkeypatch, tmp_path):
    """Define connection `conn_id` to a sandbox as AIRFLOW_CONN_<ID>; returns the conn_id."""

    def define(sandbox, conn_id: str = "acumatica_test", **options) -> str:
        options.setdefault("token_store", f"sqlite:///{tmp_path / 'tokens.db'}")
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", connection_json(sandbox, **options))
        return conn_id

    return define


@pytest.fixture
def new_sandbox():
    """Start a sandbox with the given SandboxSettings fields; stopped after the test."""
    from airflow_provider_acumatica.sandbox import SandboxSettings, start_sandbox

    started = []

    def start(**settings):
        sandbox = start_sandbox(SandboxSettings(**settings))
        started.append(sandbox)
        return sandbox

    yield start
    for sandbox in started:
        sandbox.stop()
