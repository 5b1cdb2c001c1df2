"""Shared fixtures: an isolated Airflow home, the sandbox over real HTTP, and the real PostgreSQL."""

from __future__ import annotations

import os
import tempfile
import uuid

import pytest

# Airflow reads its home when first imported: give the whole test session a private one.
os.environ["AIRFLOW_HOME"] = tempfile.mkdtemp(prefix="acumatica-test-airflow-")
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")

POSTGRES_URL_ENV = "ACUMATICA_TEST_POSTGRES_URL"
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"


def _sqlalchemy_postgres_url(url: str) -> str:
    """Use the psycopg 3 driver whatever scheme the variable gives."""
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
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
