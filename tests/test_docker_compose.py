"""docker-compose.yml validates with `docker-compose config` (no Docker engine here) and has the shape of Airflow's
official compose: Celery workers that scale, health checks, flower and the sandbox behind profiles, one shared
PostgreSQL for metadata, token store and warehouse, connections from the environment."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SERVICES = {
    "postgres",
    "redis",
    "airflow-init",
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
}


def compose(*arguments: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    if shutil.which("docker-compose") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("docker-compose is not installed (apt-get install docker-compose)")
        pytest.skip("docker-compose is not installed (apt-get install docker-compose)")
    clean = {key: value for key, value in os.environ.items() if not key.startswith(("AIRFLOW", "ACUMATICA"))}
    return subprocess.run(
        ["docker-compose", "--project-directory", str(ROOT), "-f", str(ROOT / "docker-compose.yml"), *arguments],
        capture_output=True,
        text=True,
        env={**clean, **(env or {})},
        timeout=120,
    )


def test_the_compose_file_validates_with_the_shape_of_airflows_official_one():
    done = compose(
        "--profile",
        "sandbox",
        "--profile",
        "flower",
        "config",
        env={"AIRFLOW_FERNET_KEY": "k", "AIRFLOW_JWT_SECRET": "s"},
    )
    assert done.returncode == 0, done.stderr
    services = yaml.safe_load(done.stdout)["services"]
    assert set(services) == SERVICES | {"flower", "sandbox"}
    assert services["flower"]["profiles"] == ["flower"] and services["sandbox"]["profiles"] == ["sandbox"]
    for name in SERVICES - {"airflow-init"} | {"flower", "sandbox"}:
        assert "healthcheck" in services[name], name
    worker = services["airflow-worker"]
    assert (
        worker["command"] in ("celery worker", ["celery", "worker"]) and "container_name" not in worker
    )  # --scale works
    assert "ports" not in worker
    env = worker["environment"]
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor" and env["AIRFLOW__CORE__FERNET_KEY"] == "k"
    company = json.loads(env["AIRFLOW_CONN_ACUMATICA_COMPANY"])
    assert company["host"] == "http://sandbox:8081" and company["extra"]["licence_concurrent_requests"] == 3
    assert company["extra"]["token_store"].startswith("postgresql+psycopg://airflow:airflow@postgres/")
    init = " ".join(services["airflow-init"]["command"])
    assert "airflow_provider_acumatica.bundle pools" in init
    assert services["airflow-init"]["environment"]["_AIRFLOW_DB_MIGRATE"] == "true"
    assert (ROOT / "docker" / "Dockerfile").read_text().splitlines()[2] == "FROM apache/airflow:3.3.2"


def test_the_compose_file_refuses_to_start_without_a_fernet_key():
    done = compose("config", env={"AIRFLOW_JWT_SECRET": "s"})
    assert done.returncode != 0 and "AIRFLOW_FERNET_KEY" in done.stderr
