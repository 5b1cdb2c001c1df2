"""`python -m airflow_provider_acumatica.bundle pools` creates and resizes the tenants' pools in a real metadata DB."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from airflow.models.pool import Pool
from airflow.utils.session import create_session


def run_pools_command(config_path) -> subprocess.CompletedProcess:
    airflow = os.path.join(os.path.dirname(sys.executable), "airflow")
    command = [sys.executable, "-m", "airflow_provider_acumatica.bundle", "pools", "--config", str(config_path)]
    done = subprocess.run(command + ["--airflow", airflow], capture_output=True, text=True, env=os.environ.copy())
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def pool_slots(name: str) -> int | None:
    with create_session() as session:
        pool = session.query(Pool).filter(Pool.pool == name).one_or_none()
        return None if pool is None else pool.slots


def test_pools_command_creates_then_resizes_the_tenant_pools(airflow_db, tmp_path):
    config = tmp_path / "acumatica.yaml"
    tenants = "tenants: [{{name: pooltest, acumatica_conn_id: a, pool_slots: {slots}, tables: construction}}]\n"
    config.write_text(textwrap.dedent(tenants.format(slots=4)), encoding="utf-8")
    done = run_pools_command(config)
    assert "pools set acumatica_pooltest 4 " in done.stdout
    assert pool_slots("acumatica_pooltest") == 4

    config.write_text(textwrap.dedent(tenants.format(slots=2)), encoding="utf-8")
    run_pools_command(config)
    assert pool_slots("acumatica_pooltest") == 2
