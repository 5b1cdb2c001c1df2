"""The sync DAGs run through Airflow (dag.test with a real metadata DB) against the sandbox over HTTP, into
SQLite and PostgreSQL, and the warehouse is compared with the sandbox's ground truth.
"""

from __future__ import annotations

import datetime

import pytest
import sqlalchemy
from airflow.dag_processing.dagbag import DagBag
from backfills import create_backfill, run_backfill_runs
from dags_paths import DAGS_FOLDER, SANDBOX_TENANTS, SYNC_FILE

from airflow_provider_acumatica.warehouse.loader import Warehouse
from airflow_provider_acumatica.warehouse.schema import table_name

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
    """The stored watermark of a tenant's table (state rows are keyed by the warehouse table name)."""
    state = Warehouse(url, schema).read_state(tenant=tenant, table=table_name(entity))
    assert state is not None, f"no sync state for {tenant} {entity}"
    return state.watermark


def assert_like_truth(sandbox, url, schema, tenant, tables=TABLES, sandbox_tenant=None):
    for entity in tables:
        expected = truth_rows(sandbox, sandbox_tenant or tenant, entity)
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

    changed = sandbox.control.update("Company", "TimeEntry", random=5)
    sandbox.control.update("Company", "Project", random=2)
    _, states = run_dag("acumatica_sync__company", tables=["TimeEntry"])
    loaded = {key for key, state in states.items() if key[0].endswith(".load") and state == "success"}
    assert loaded == {("incremental.load", "TimeEntry")}
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


# A tenant of its own (on the Company sandbox tenant): its DAG has only ever had this daily schedule.
BACKFILL_CONFIG = """
defaults: {owner: tests, retries: 0, schedule: "0 0 * * *"}
tenants:
  - {name: daily, acumatica_conn_id: acumatica_company, tables: [{name: TimeEntry, mode: incremental}]}
"""


def test_backfill_reloads_exactly_its_windows_and_keeps_the_watermark(
    airflow_db, sandbox, sync_config, connections, tmp_path
):
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    url = f"sqlite:///{tmp_path / 'warehouse.db'}"
    sync_config(BACKFILL_CONFIG)
    connections(sandbox, url)
    run_dag("acumatica_sync__daily")  # first load; also puts the DAG in the metadata DB
    assert_like_truth(sandbox, url, None, "daily", tables=("TimeEntry",), sandbox_tenant="company")
    first_watermark = watermark(url, None, "daily", "TimeEntry")
    # Two days well before the watermark: an incremental run would never read them again.
    day = datetime.timedelta(days=1)
    start = datetime.datetime.combine(first_watermark.date() - 5 * day, datetime.time(), datetime.timezone.utc)
    inside_stamp, outside_stamp = start + day / 2, start - 3 * day

    control = sandbox.control
    inside = control.update("Company", "TimeEntry", random=4, timestamp=inside_stamp.isoformat())
    outside = control.update("Company", "TimeEntry", random=3, timestamp=outside_stamp.isoformat())
    assert not set(inside) & set(outside)

    create_backfill("acumatica_sync__daily", start.date().isoformat(), (start + day).date().isoformat())
    runs = run_backfill_runs(parsed_dag("acumatica_sync__daily"))

    assert [(str(t), str(s), a, b) for t, s, a, b in runs] == [
        ("backfill", "success", start, start + day),
        ("backfill", "success", start + day, start + 2 * day),
    ]
    with create_session() as session:
        planned = [
            row.value
            for row in session.query(XComModel).filter(
                XComModel.dag_id == "acumatica_sync__daily",
                XComModel.task_id == "incremental.plan",
                XComModel.run_id.like("backfill__%"),
            )
        ]
    windows = sorted((plan[0]["window_start"], plan[0]["window_end"]) for plan in planned)
    assert windows == [
        (start.isoformat(), (start + day).isoformat()),
        ((start + day).isoformat(), (start + 2 * day).isoformat()),
    ]
    loaded = warehouse_rows(url, None, "TimeEntry", "daily")
    truth = truth_rows(sandbox, "company", "TimeEntry")
    assert {record_id: loaded[record_id] for record_id in inside} == {i: utc_millis(inside_stamp) for i in inside}
    assert all(loaded[record_id] != truth[record_id] for record_id in outside), "outside the windows: not reloaded"
    assert watermark(url, None, "daily", "TimeEntry") == first_watermark
