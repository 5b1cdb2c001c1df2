"""The sync DAGs run through Airflow (dag.test with a real metadata DB) against the sandbox over HTTP, into
SQLite and PostgreSQL, and the warehouse is compared with the sandbox's ground truth.

These need the finished AcumaticaToSqlOperator (the lead's); the DAG, plan and backfill machinery
around it was checked to run (runs created with their real run type, intervals and planned windows).
"""

from __future__ import annotations

import datetime
import os
import subprocess
import sys

import pytest
import sqlalchemy
from airflow.dag_processing.dagbag import DagBag

from airflow_provider_acumatica.warehouse.schema import table_name
from airflow_provider_acumatica.warehouse.state import read_state, state_table

from dags_paths import DAGS_FOLDER, SANDBOX_TENANTS, SYNC_FILE

pytestmark = pytest.mark.slow

TABLES = ("Project", "TimeEntry", "UnionLocal")
CONFIG = """
defaults: {{owner: tests, retries: 0{schema}}}
tenants:
  - name: company
    acumatica_conn_id: acumatica_company
    tables: [{{name: Project, mode: incremental, expand: [Tasks]}}, {{name: TimeEntry, mode: incremental}},
             {{name: UnionLocal, mode: full}}]
  - name: subsidiary
    acumatica_conn_id: acumatica_subsidiary
    tables: [{{name: TimeEntry, mode: incremental}}]
"""


def config_text(schema: str | None) -> str:
    return CONFIG.format(schema=f", target_schema: {schema}" if schema else "")


def parsed_dag(dag_id: str):
    """The DAG as Airflow parses it from dags/acumatica_sync.py (fileloc and all)."""
    bag = DagBag(dag_folder=SYNC_FILE, bundle_path=DAGS_FOLDER)
    assert bag.import_errors == {}
    return bag.get_dag(dag_id)


def run_dag(dag_id: str, **run_conf):
    """One manual run through Airflow; every task instance must succeed."""
    run = parsed_dag(dag_id).test(run_conf=run_conf or None)
    states = {(ti.task_id, ti.rendered_map_index): ti.state for ti in run.get_task_instances()}
    assert run.state == "success", states
    return run, states


def utc_millis(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=datetime.timezone.utc)
    return value.astimezone(datetime.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def warehouse_rows(url: str, schema: str | None, entity: str, tenant: str) -> dict[str, str | None]:
    """id -> last modified of the live (not deleted) rows of one tenant's table."""
    engine = sqlalchemy.create_engine(url)
    try:
        table = sqlalchemy.Table(table_name(entity), sqlalchemy.MetaData(), schema=schema, autoload_with=engine)
        query = sqlalchemy.select(table.c._acumatica_id, table.c._last_modified).where(
            (table.c._tenant == tenant) & table.c._deleted_at.is_(None)
        )
        with engine.connect() as connection:
            return {row[0]: utc_millis(row[1]) for row in connection.execute(query)}
    finally:
        engine.dispose()


def truth_rows(sandbox, tenant: str, entity: str) -> dict[str, str | None]:
    records = sandbox.control.truth(SANDBOX_TENANTS[tenant], entity)["records"]
    return {record["id"]: utc_millis(record.get("LastModifiedDateTime")) for record in records}


def watermark(url: str, schema: str | None, tenant: str, entity: str):
    engine = sqlalchemy.create_engine(url)
    try:
        with engine.connect() as connection:
            return read_state(connection, state_table(sqlalchemy.MetaData(), schema), tenant, entity).watermark
    finally:
        engine.dispose()


def assert_like_truth(sandbox, url, schema, tenant, tables=TABLES):
    for entity in tables:
        expected = truth_rows(sandbox, tenant, entity)
        assert expected, f"the sandbox has no {entity} rows for {tenant}"
        assert warehouse_rows(url, schema, entity, tenant) == expected, f"{tenant} {entity}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def warehouse(request, tmp_path):
    """(SQLAlchemy URL, schema) of an empty warehouse of each kind."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'warehouse.db'}", None
    return request.getfixturevalue("postgres_schema")


def test_manual_runs_sync_both_tenants_like_the_truth_then_only_the_selected_changes(
    airflow_db, sandbox, sync_config, connections, warehouse
):
    url, schema = warehouse
    sync_config(config_text(schema))
    connections(sandbox, url)

    _, states = run_dag("acumatica_sync__company")
    assert {key for key in states if key[0] == "incremental.load"} == {
        ("incremental.load", "Project"),
        ("incremental.load", "TimeEntry"),
    }
    run_dag("acumatica_sync__subsidiary")
    assert_like_truth(sandbox, url, schema, "company")
    assert_like_truth(sandbox, url, schema, "subsidiary", tables=("TimeEntry",))
    first_watermark = watermark(url, schema, "company", "TimeEntry")

    sandbox.control.advance_clock(3600)
    changed = sandbox.control.update("Company", "TimeEntry", random=5)
    sandbox.control.update("Company", "Project", random=2)
    _, states = run_dag("acumatica_sync__company", tables=["TimeEntry"])
    assert {key for key, state in states.items() if key[0].endswith(".load")} == {("incremental.load", "TimeEntry")}
    assert_like_truth(sandbox, url, schema, "company", tables=("TimeEntry",))
    assert watermark(url, schema, "company", "TimeEntry") > first_watermark
    stale_projects = warehouse_rows(url, schema, "Project", "company") != truth_rows(sandbox, "company", "Project")
    assert stale_projects, "Project was not selected, so its two changes must not be loaded yet"
    assert len(changed) == 5


def test_load_emits_the_table_asset_with_its_summary(airflow_db, sandbox, sync_config, connections, tmp_path):
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session

    url = f"sqlite:///{tmp_path / 'warehouse.db'}"
    sync_config(config_text(None))
    connections(sandbox, url)
    run_dag("acumatica_sync__subsidiary")
    with create_session() as session:
        events = (
            session.query(AssetEvent)
            .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .filter(AssetModel.uri == "acumatica://subsidiary/TimeEntry")
            .order_by(AssetEvent.id.desc())
            .all()
        )
        assert events, "no event for acumatica://subsidiary/TimeEntry"
        extra = events[0].extra
    assert extra["tenant"] == "subsidiary" and extra["table"] == "TimeEntry" and extra["mode"] == "incremental"
    assert extra["rows"] == len(truth_rows(sandbox, "subsidiary", "TimeEntry")) and extra["watermark"]


BACKFILL_CONFIG = """
defaults: {owner: tests, retries: 0, schedule: "0 0 * * *"}
tenants:
  - {name: company, acumatica_conn_id: acumatica_company, tables: [{name: TimeEntry, mode: incremental}]}
"""


def create_backfill(dag_id: str, from_date: str, to_date: str) -> None:
    """`airflow backfill create`, the real CLI: it writes the backfill's runs (type backfill) to the DB."""
    command = [sys.executable, "-m", "airflow", "backfill", "create", "--dag-id", dag_id]
    command += ["--from-date", from_date, "--to-date", to_date]
    created = subprocess.run(command, capture_output=True, text=True, env=os.environ.copy())
    assert created.returncode == 0, created.stdout[-2000:] + created.stderr[-3000:]


def run_backfill_runs(dag) -> list:
    """Run the DAG's queued backfill runs in this process, one after the other.

    Airflow 3 runs backfills in the scheduler, whose executors hand tasks to workers through the
    API server. Rather than start both, this drives each run the way ``dag.test()`` drives its own:
    ``DagRun.update_state`` schedules (and expands mapped tasks), and dag.test's private ``_run_task``
    runs each task instance in-process through the execution API. The runs, their run type and data
    intervals are the ones the backfill command created.
    """
    from airflow.models.dagrun import DagRun
    from airflow.sdk.definitions.dag import _run_task
    from airflow.serialization.serialized_objects import DagSerialization
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState, TaskInstanceState

    scheduler_dag = DagSerialization.deserialize_dag(DagSerialization.serialize_dag(dag))

    def backfill_runs(session):
        query = sqlalchemy.select(DagRun).where(DagRun.dag_id == dag.dag_id, DagRun.run_type == "backfill")
        return session.scalars(query.order_by(DagRun.logical_date)).all()

    with create_session() as session:
        run_ids = [run.run_id for run in backfill_runs(session)]
    for run_id in run_ids:
        while True:
            with create_session() as session:
                run = session.scalar(sqlalchemy.select(DagRun).where(DagRun.run_id == run_id))
                run.dag = scheduler_dag
                if run.state == DagRunState.QUEUED:
                    run.state = DagRunState.RUNNING
                if run.state != DagRunState.RUNNING:
                    break
                schedulable, _ = run.update_state(session=session)
                for ti in schedulable:
                    ti.try_number += 1
                    ti.state = TaskInstanceState.SCHEDULED
                session.flush()
                scheduled = run.get_task_instances(state=[TaskInstanceState.SCHEDULED], session=session)
            for ti in scheduled:  # _run_task opens and closes its own sessions
                _run_task(ti=ti, task=dag.task_dict[ti.task_id])
    with create_session() as session:
        return [(r.run_type, r.state, r.data_interval_start, r.data_interval_end) for r in backfill_runs(session)]


def test_backfill_reloads_exactly_its_windows_and_keeps_the_watermark(
    airflow_db, sandbox, sync_config, connections, tmp_path
):
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    url = f"sqlite:///{tmp_path / 'warehouse.db'}"
    sync_config(BACKFILL_CONFIG)
    connections(sandbox, url)
    run_dag("acumatica_sync__company")  # first load; also puts the DAG in the metadata DB
    assert_like_truth(sandbox, url, None, "company", tables=("TimeEntry",))
    first_watermark = watermark(url, None, "company", "TimeEntry")
    assert first_watermark > datetime.datetime(2026, 11, 12, tzinfo=datetime.timezone.utc)

    control = sandbox.control
    inside = control.update("Company", "TimeEntry", random=4, timestamp="2026-11-10T12:00:00Z")
    outside = control.update("Company", "TimeEntry", random=3, timestamp="2026-11-05T12:00:00Z")
    assert not set(inside) & set(outside)

    create_backfill("acumatica_sync__company", "2026-11-10", "2026-11-11")
    runs = run_backfill_runs(parsed_dag("acumatica_sync__company"))

    day = datetime.timedelta(days=1)
    start = datetime.datetime(2026, 11, 10, tzinfo=datetime.timezone.utc)
    assert [(str(t), str(s), a, b) for t, s, a, b in runs] == [
        ("backfill", "success", start, start + day),
        ("backfill", "success", start + day, start + 2 * day),
    ]
    with create_session() as session:
        planned = [
            row.value
            for row in session.query(XComModel).filter(
                XComModel.dag_id == "acumatica_sync__company",
                XComModel.task_id == "incremental.plan",
                XComModel.run_id.like("backfill__%"),
            )
        ]
    windows = sorted((plan[0]["window_start"], plan[0]["window_end"]) for plan in planned)
    assert windows == [
        ("2026-11-10T00:00:00+00:00", "2026-11-11T00:00:00+00:00"),
        ("2026-11-11T00:00:00+00:00", "2026-11-12T00:00:00+00:00"),
    ]
    loaded = warehouse_rows(url, None, "TimeEntry", "company")
    truth = truth_rows(sandbox, "company", "TimeEntry")
    assert {record_id: loaded[record_id] for record_id in inside} == {i: "2026-11-10T12:00:00.000Z" for i in inside}
    assert all(loaded[record_id] != truth[record_id] for record_id in outside), "outside the windows: not reloaded"
    assert watermark(url, None, "company", "TimeEntry") == first_watermark
