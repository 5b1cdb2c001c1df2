"""Column types of synced tables: from the endpoint's swagger.json (dates as the dates Acumatica shows, durations
in minutes, exact decimals, one timestamp column), and from values when the document is unavailable."""

from __future__ import annotations

import logging
from datetime import date
from decimal import Decimal

import pytest
import sqlalchemy
from test_acumatica_to_sql import TENANT, sync, warehouse, warehouse_rows  # noqa: F401 - warehouse is a fixture

from airflow_provider_acumatica.operators.acumatica_to_sql import AcumaticaToSqlOperator


def _columns(warehouse, table):
    url, schema = warehouse
    engine = sqlalchemy.create_engine(url)
    try:
        with engine.connect() as connection:
            return {c["name"]: c["type"] for c in sqlalchemy.inspect(connection).get_columns(table, schema=schema)}
    finally:
        engine.dispose()


def _minutes(text: str) -> int:
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


def _decimal(value) -> Decimal:
    return Decimal(value) if isinstance(value, str) else value  # a plain SQLite reader sees DECIMAL_TEXT as text


@pytest.mark.parametrize("zone", ["Asia/Tokyo", "America/Los_Angeles"])
def test_dates_durations_and_decimals_land_as_acumatica_shows_them(new_sandbox, acumatica_connection, warehouse, zone):
    sandbox = new_sandbox(rows=150, seed=29, profile_timezone=zone, tenants=(TENANT,))
    conn_id = acumatica_connection(sandbox, profile_timezone=zone)
    rate = sandbox.control.truth(TENANT, "LaborCostRate")["records"][0]
    sandbox.control.update(TENANT, "LaborCostRate", records=[{"id": rate["id"], "Rate": 45.1234}])
    sync(conn_id, warehouse, table="Project", batch_size=100)
    sync(conn_id, warehouse, table="LaborCostRate", mode="full", timestamp_field=None, batch_size=100)
    sync(conn_id, warehouse, table="TimeEntry", batch_size=200)

    projects = warehouse_rows(warehouse, "project")
    truth = sandbox.control.truth(TENANT, "Project")["records"]
    assert {r["id"]: date.fromisoformat(r["StartDate"]) for r in truth} == {
        key: row["start_date"] for key, row in projects.items()
    }
    rates = warehouse_rows(warehouse, "labor_cost_rate")
    assert _decimal(rates[rate["id"]]["rate"]) == Decimal("45.1234")
    assert str(_decimal(rates[rate["id"]]["rate"])) == "45.1234"
    entries = warehouse_rows(warehouse, "time_entry")
    for record in sandbox.control.truth(TENANT, "TimeEntry")["records"]:
        row = entries[record["id"]]
        assert (row["time_spent"], row["time_spent_minutes"]) == (record["TimeSpent"], _minutes(record["TimeSpent"]))
        assert row["billable_overtime_minutes"] == _minutes(record["BillableOvertime"])

    columns = _columns(warehouse, "time_entry")
    assert "last_modified_date_time" not in columns and "_last_modified" in columns
    assert isinstance(columns["time_spent_minutes"], sqlalchemy.Integer)
    assert isinstance(_columns(warehouse, "project")["start_date"], sqlalchemy.Date)
    assert isinstance(_columns(warehouse, "project")["created_date_time"], sqlalchemy.DateTime)
    cost_rate = columns["cost_rate"]
    if warehouse[1] is None:  # SQLite: exact text, declared DECIMAL_TEXT (a plain reader reflects it as text)
        assert isinstance(cost_rate, sqlalchemy.Text)
    else:
        assert isinstance(cost_rate, sqlalchemy.Numeric) and not isinstance(cost_rate, sqlalchemy.Float)


def test_without_swagger_json_types_are_inferred_and_the_reason_logged(
    new_sandbox, acumatica_connection, caplog, tmp_path
):
    sandbox = new_sandbox(rows=60, seed=31, tenants=(TENANT,))
    conn_id = acumatica_connection(sandbox, max_retries=0)
    sandbox.control.inject_fault("500", count=50, path_contains="swagger.json")
    target = (f"sqlite:///{tmp_path / 'inferred.db'}", None)
    with caplog.at_level(logging.WARNING):
        sync(conn_id, target, table="Project", batch_size=100)
    assert "column types are inferred from values" in caplog.text
    assert isinstance(_columns(target, "project")["start_date"], sqlalchemy.DateTime)  # a date-time, as inferred
    assert len(warehouse_rows(target, "project")) == len(sandbox.control.truth(TENANT, "Project")["records"])


def test_a_sync_run_reports_its_lineage_facets(new_sandbox, acumatica_connection, warehouse):
    pytest.importorskip("airflow.providers.openlineage")
    sandbox = new_sandbox(rows=40, seed=37, tenants=(TENANT,))
    conn_id = acumatica_connection(sandbox)
    url, schema = warehouse
    operator = AcumaticaToSqlOperator(
        task_id="sync_project", table="Project", acumatica_conn_id=conn_id, sql_url=url, target_schema=schema
    )
    summary = operator.execute(context={})
    lineage = operator.get_openlineage_facets_on_complete(task_instance=None)

    [source], [target] = lineage.inputs, lineage.outputs
    assert (source.namespace, source.name) == (
        f"acumatica://{sandbox.url.split('://')[1]}",
        f"{TENANT}.Default.24.200.001.Project",
    )
    assert {f.name: f.type for f in source.facets["schema"].fields}["StartDate"] == "date"
    if schema is None:
        assert target.namespace == f"sqlite://{url.split(':///')[1]}" and target.name == "project"
    else:
        assert target.namespace == "postgres://127.0.0.1:5432" and target.name == f"test.{schema}.project"
    columns = {f.name for f in target.facets["schema"].fields}
    assert {"_tenant", "_acumatica_id", "_synced_at", "start_date", "project_id"} <= columns
    assert target.outputFacets["outputStatistics"].rowCount == summary["rows"] > 0
