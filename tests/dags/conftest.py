"""Fixtures of the end-to-end DAG tests: a migrated Airflow metadata DB, the sandbox, connections, a config."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from dags_paths import DAGS_FOLDER, SANDBOX_TENANTS

from airflow_provider_acumatica.sandbox import SANDBOX_PASSWORD, SANDBOX_USER, SandboxSettings, start_sandbox


@pytest.fixture(scope="session")
def airflow_db():
    """The session's Airflow home (set by tests/conftest.py) with a migrated metadata DB and our dags folder
    as its only bundle; migrated once, in a subprocess, like an operator would."""
    bundles = [
        {
            "name": "dags-folder",
            "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
            "kwargs": {"path": str(DAGS_FOLDER)},
        }
    ]
    os.environ["AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST"] = json.dumps(bundles)
    os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(DAGS_FOLDER)
    migrate = subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"], capture_output=True, text=True, env=os.environ.copy()
    )
    assert migrate.returncode == 0, migrate.stderr[-3000:]
    return Path(os.environ["AIRFLOW_HOME"])


@pytest.fixture(scope="module")
def sandbox():
    """Two tenants of small data over real HTTP; tests mutate it, so each module gets its own."""
    with start_sandbox(SandboxSettings(rows=300, seed=5)) as running:
        yield running


@pytest.fixture
def sync_config(tmp_path, monkeypatch):
    """Write a bundle config for this test and point ACUMATICA_DAGS_CONFIG at it."""

    def write(text: str) -> Path:
        path = tmp_path / "acumatica.yaml"
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        monkeypatch.setenv("ACUMATICA_DAGS_CONFIG", str(path))
        return path

    return write


@pytest.fixture
def connections(monkeypatch, tmp_path):
    """Define acumatica_<tenant> connections to the sandbox and the warehouse connection (AIRFLOW_CONN_*)."""
    from airflow.sdk import Connection

    def define(sandbox, warehouse_url: str) -> None:
        for tenant, sandbox_tenant in SANDBOX_TENANTS.items():
            extra = {
                "tenant": sandbox_tenant,
                "auth_type": "cookie",
                "backoff_seconds": 0.01,
                "token_store": f"sqlite:///{tmp_path / 'tokens.db'}",
            }
            connection = Connection(
                conn_id=f"acumatica_{tenant}",
                conn_type="acumatica",
                host=sandbox.url,
                login=SANDBOX_USER,
                password=SANDBOX_PASSWORD,
                extra=json.dumps(extra),
            )
            monkeypatch.setenv(f"AIRFLOW_CONN_ACUMATICA_{tenant.upper()}", connection.as_json())
        warehouse = Connection(
            conn_id="acumatica_warehouse", conn_type="generic", extra=json.dumps({"sqlalchemy_url": warehouse_url})
        )
        monkeypatch.setenv("AIRFLOW_CONN_ACUMATICA_WAREHOUSE", warehouse.as_json())

    return define
