"""The examples the docs show (docs/examples, kept equal to the docs by scripts/docs_examples.py) run against the
sandbox: the sync and payroll DAGs through dag.test, the hook tour, the sandbox from Python, the configs."""

from __future__ import annotations

import datetime
import importlib.util
import json
import os
import sys
from pathlib import Path

import pytest
import sqlalchemy
from airflow.dag_processing.dagbag import DagBag

from airflow_provider_acumatica.bundle.assets import table_asset_uri
from airflow_provider_acumatica.bundle.config import load_config
from airflow_provider_acumatica.warehouse.schema import table_name

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "operators"))
from payroll_support import MONDAY, activity, crew_of, entries_of, write_activities  # noqa: E402

pytestmark = pytest.mark.slow

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"


@pytest.fixture
def examples_bundle(airflow_db, monkeypatch):
    """docs/examples as the only DAG bundle while a test runs, so that dag.test finds and serializes the example
    DAGs without re-parsing the bundle's own DAGs under another config (the other tests' DAGs stay as they were)."""
    (dags_folder,) = json.loads(os.environ["AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST"])
    examples = {**dags_folder, "name": "doc-examples", "kwargs": {"path": str(EXAMPLES)}}
    monkeypatch.setenv("AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST", json.dumps([examples]))


def example_dag(file: str, dag_id: str):
    bag = DagBag(dag_folder=EXAMPLES / file, bundle_path=EXAMPLES)
    assert bag.import_errors == {}
    return bag.get_dag(dag_id)


def example_module(file: str):
    spec = importlib.util.spec_from_file_location(file.removesuffix(".py"), EXAMPLES / file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def rows_of(url: str, entity: str, tenant: str) -> int:
    engine = sqlalchemy.create_engine(url)
    try:
        table = sqlalchemy.Table(table_name(entity), sqlalchemy.MetaData(), autoload_with=engine)
        count = sqlalchemy.select(sqlalchemy.func.count()).where(table.c._tenant == tenant)
        with engine.connect() as connection:
            return connection.execute(count).scalar_one()
    finally:
        engine.dispose()


def test_the_sync_example_loads_the_tenants_time_entries(examples_bundle, sandbox, connections, tmp_path):
    url = f"sqlite:///{tmp_path / 'warehouse.db'}"
    connections(sandbox, url)
    run = example_dag("sync_dag.py", "example_acumatica_sync").test()
    assert run.state == "success"
    assert rows_of(url, "TimeEntry", "Company") == len(sandbox.control.truth("Company", "TimeEntry")["records"])


def test_the_payroll_example_publishes_its_data_interval(examples_bundle, sandbox, connections, tmp_path):
    url = f"sqlite:///{tmp_path / 'warehouse.db'}"
    connections(sandbox, url)
    crew = crew_of(sandbox)
    inside = [activity(crew, n, day=n, activity_id=f"doc-{n}") for n in range(3)]
    after = [activity(crew, 10, day=7, activity_id="doc-10")]
    write_activities((url, None), inside + after)
    # The run after the week of MONDAY: its data interval is that week (06:00 to 06:00, New York).
    run = example_dag("payroll_dag.py", "example_acumatica_payroll").test(
        logical_date=MONDAY + datetime.timedelta(days=7, hours=6)
    )
    assert run.state == "success"
    entries = entries_of(sandbox, ["doc-0", "doc-1", "doc-2", "doc-10"])
    assert [len(entries[a]) for a in ("doc-0", "doc-1", "doc-2", "doc-10")] == [1, 1, 1, 0]


def test_the_hook_tour_reads_each_way_and_writes_an_entry(sandbox, connections, tmp_path):
    connections(sandbox, f"sqlite:///{tmp_path / 'warehouse.db'}")
    crew = crew_of(sandbox)
    entry = {
        "Employee": crew.employees[0],
        "Date": "2026-11-23T07:00:00",
        "ProjectID": crew.project,
        "ProjectTaskID": crew.task,
        "CostCode": crew.cost_code,
        "EarningType": "RG",
        "TimeSpent": "08:00",
        "ExternalRefNbr": "DOC-1",
    }
    seen = example_module("hook_tour.py").tour(entry)
    truth = sandbox.control.truth("Company", "TimeEntry")
    assert len(seen["stamps"]) == len(truth["records"])  # the entry it created is deleted again
    assert seen["page"] and set(seen["page"][0]) >= {"TimeEntryID", "TimeSpent"}
    assert "PMTask" in seen["sets"] and seen["tasks"]
    assert seen["created"]["ExternalRefNbr"] == "DOC-1"
    assert truth["deleted"][-1]["id"] == seen["created"]["id"]
    assert all(project["Status"] == "Active" for project in seen["active"])


def test_the_sandbox_example_changes_fifty_entries():
    url, changed = example_module("sandbox_usage.py").changed_entries()
    assert url.startswith("http://") and len(set(changed)) == 50


def test_the_bundle_and_payroll_configs_of_the_docs_load(tmp_path):
    bundle = load_config(EXAMPLES / "acumatica.yaml")
    (company,) = bundle.tenants
    tables = {table.name: table for table in company.tables}
    assert tables["TimeEntry"].schedule == "*/15 * * * *" and "ProjectBudget" not in tables
    assert tables["PMTask"].source == "dac" and tables["PMTask"].track_deletes
    (payroll_tenant,) = load_config(EXAMPLES / "payroll.yaml").tenants
    assert payroll_tenant.payroll.schedule == "0 6 * * 1" and payroll_tenant.payroll.hold


def test_the_asset_consumer_schedules_on_the_assets_the_sync_dags_emit():
    dag = example_dag("asset_consumer.py", "project_costs")
    uris = {asset.uri for asset in dag.timetable.asset_condition.objects}
    assert uris == {table_asset_uri("company", "TimeEntry"), table_asset_uri("company", "Project")}
