"""The data dictionary and dbt sources.yml of a config's tables, read from the sandbox's swagger.json."""

from __future__ import annotations

import textwrap

import yaml

from airflow_provider_acumatica.bundle.__main__ import main

CONFIG = """
defaults: {warehouse_conn_id: wh, target_schema: analytics}
tenants:
  - {name: company, acumatica_conn_id: acu_company, tables: construction}
  - name: subsidiary
    acumatica_conn_id: acu_company
    tables:
      - {name: TimeEntry, mode: incremental, schedule: "*/15 * * * *"}
"""


def _run(tmp_path, new_sandbox, acumatica_connection, command, capsys):
    sandbox = new_sandbox(rows=20, tenants=("Company",))
    acumatica_connection(sandbox, conn_id="acu_company")
    path = tmp_path / "acumatica.yaml"
    path.write_text(textwrap.dedent(CONFIG), encoding="utf-8")
    output = tmp_path / "out"
    assert main([command, "--config", str(path), "--output", str(output)]) == 0
    assert capsys.readouterr().out == f"wrote {output}\n"
    return output.read_text(encoding="utf-8")


def test_dbt_sources_name_every_table_with_its_columns_and_freshness(
    tmp_path, new_sandbox, acumatica_connection, capsys
):
    document = yaml.safe_load(_run(tmp_path, new_sandbox, acumatica_connection, "dbt-sources", capsys))
    assert document["version"] == 2
    [source] = document["sources"]  # both tenants load into one connection and schema: one source
    assert (source["name"], source["schema"], source["loaded_at_field"]) == ("acumatica", "analytics", "_synced_at")
    tables = {table["name"]: table for table in source["tables"]}
    assert {"time_entry", "project", "labor_cost_rate", "union_local"} <= set(tables)
    time_entry = {column["name"]: column for column in tables["time_entry"]["columns"]}
    assert {
        "_tenant",
        "_acumatica_id",
        "_last_modified",
        "_synced_at",
        "_deleted_at",
        "time_spent",
        "time_spent_minutes",
        "cost_rate",
        "date",
    } <= set(time_entry)
    assert "last_modified_date_time" not in time_entry
    assert time_entry["_synced_at"]["data_tests"] == ["not_null"]
    assert tables["project"]["freshness"] == {
        "warn_after": {"count": 2, "period": "hour"},
        "error_after": {"count": 6, "period": "hour"},
    }
    project = {column["name"]: column for column in tables["project"]["columns"]}
    assert "calendar date" in project["start_date"]["description"]


def test_the_dictionary_gives_each_column_its_type_and_source_field(
    tmp_path, new_sandbox, acumatica_connection, capsys
):
    text = _run(tmp_path, new_sandbox, acumatica_connection, "dictionary", capsys)
    assert "## time_entry" in text and "## labor_cost_rate" in text
    assert "| `time_spent_minutes` | integer | TimeEntry.TimeSpent |" in text
    assert "| `rate` | decimal (exact) | LaborCostRate.Rate |" in text
    assert "| `effective_date` | date | LaborCostRate.EffectiveDate |" in text
    assert "| `_deleted_at` | timestamp (UTC) | (system) |" in text
