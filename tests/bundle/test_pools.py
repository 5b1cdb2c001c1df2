"""Pool commands derived from the config: one `airflow pools set` per tenant, sized to its licence."""

from __future__ import annotations

import textwrap

from airflow_provider_acumatica.bundle.__main__ import main
from airflow_provider_acumatica.bundle.config import load_config
from airflow_provider_acumatica.bundle.pools import sync_pools

CONFIG = """
defaults: {pool_slots: 2}
tenants:
  - {name: company, acumatica_conn_id: a, pool_slots: 6, tables: construction}
  - {name: subsidiary, acumatica_conn_id: b, tables: construction}
"""


def write(tmp_path, text=CONFIG):
    path = tmp_path / "acumatica.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_dry_run_lists_one_command_per_tenant_and_runs_nothing(tmp_path):
    echoed: list[str] = []
    commands = sync_pools(load_config(write(tmp_path)), airflow="/no/such/airflow", dry_run=True, echo=echoed.append)
    assert [command[:5] for command in commands] == [
        ["/no/such/airflow", "pools", "set", "acumatica_company", "6"],
        ["/no/such/airflow", "pools", "set", "acumatica_subsidiary", "2"],
    ]
    assert echoed[0].startswith("/no/such/airflow pools set acumatica_company 6 'Acumatica tenant company: ")


def test_cli_reports_a_bad_config_and_exits_2(tmp_path, capsys):
    path = write(tmp_path, "tenants: [{name: company, tables: construction}]\n")
    assert main(["pools", "--config", str(path), "--dry-run"]) == 2
    assert capsys.readouterr().err.startswith(f"{path}: tenant 'company': missing key 'acumatica_conn_id'")


def test_cli_validate_lists_tenants_and_tables(tmp_path, capsys):
    assert main(["validate", "--config", str(write(tmp_path))]) == 0
    out = capsys.readouterr().out
    assert "company: a, pool acumatica_company (6 slots)" in out
    assert "    UnionLocal: full, entity, every '0 * * * *'" in out
