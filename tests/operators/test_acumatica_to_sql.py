"""AcumaticaToSqlOperator against the sandbox over real HTTP, into real SQLite files and the real PostgreSQL.

The operator's execute() is called directly here (the DAG tests run it through Airflow); its context is
empty because these tasks have no outlets.
"""

from __future__ import annotations

import gc
import signal
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy

from airflow_provider_acumatica.client.errors import AcumaticaApiError
from airflow_provider_acumatica.hooks.acumatica import AcumaticaHook
from airflow_provider_acumatica.operators.acumatica_to_sql import AcumaticaToSqlOperator

TENANT = "Company"


@pytest.fixture(params=["sqlite", "postgres"])
def warehouse(request, tmp_path):
    """(SQLAlchemy URL, schema) of an empty warehouse of either kind."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'warehouse.db'}", None
    return request.getfixturevalue("postgres_schema")


def sync(conn_id, warehouse, table="TimeEntry", **arguments):
    url, schema = warehouse
    operator = AcumaticaToSqlOperator(
        task_id=f"sync_{table}",
        table=table,
        acumatica_conn_id=conn_id,
        sql_url=url,
        target_schema=schema,
        **arguments,
    )
    return operator.execute(context={})


def warehouse_rows(warehouse, table="time_entry", tenant=TENANT) -> dict[str, dict]:
    url, schema = warehouse
    engine = sqlalchemy.create_engine(url)
    try:
        with engine.connect() as connection:
            target = sqlalchemy.Table(table, sqlalchemy.MetaData(), schema=schema, autoload_with=connection)
            rows = connection.execute(sqlalchemy.select(target).where(target.c._tenant == tenant)).mappings()
            return {row["_acumatica_id"]: dict(row) for row in rows}
    finally:
        engine.dispose()


def sync_state(warehouse, table="time_entry") -> dict | None:
    url, schema = warehouse
    engine = sqlalchemy.create_engine(url)
    try:
        with engine.connect() as connection:
            state = sqlalchemy.Table(
                "acumatica_sync_state", sqlalchemy.MetaData(), schema=schema, autoload_with=connection
            )
            row = connection.execute(sqlalchemy.select(state).where(state.c.table_name == table)).mappings().first()
            return dict(row) if row else None
    finally:
        engine.dispose()


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc)


def as_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def assert_matches_truth(warehouse, sandbox, entity="TimeEntry", table="time_entry", tenant=TENANT, read_back=utc):
    """Row by row: every live record is there once with its timestamp and values; deleted ones are no live rows.

    `read_back` turns the truth's UTC text into the instant the connector can know (see the DST test).
    """
    truth = sandbox.control.truth(tenant, entity)
    rows = warehouse_rows(warehouse, table, tenant)
    live = {record["id"]: record for record in truth["records"]}
    missing = set(live) - set(rows)
    assert not missing, f"{len(missing)} records lost, e.g. {sorted(missing)[:3]}"
    deleted = {entry["id"] for entry in truth["deleted"]}
    unexpected = set(rows) - set(live) - deleted
    assert not unexpected, f"{len(unexpected)} rows that Acumatica never had"
    for record_id, record in live.items():
        row = rows[record_id]
        assert as_utc(row["_last_modified"]) == read_back(record["LastModifiedDateTime"]), record_id
        for field, column in (("Summary", "summary"), ("TimeSpent", "time_spent"), ("Employee", "employee")):
            if field in record:
                assert row[column] == record[field], (record_id, field)


def test_initial_load_pages_slices_and_crowded_instants_exactly(new_sandbox, acumatica_connection, warehouse):
    sandbox = new_sandbox(rows=3000, seed=3)  # holds an instant shared by > 1,000 records
    conn_id = acumatica_connection(sandbox)
    summary = sync(conn_id, warehouse, batch_size=400)
    assert_matches_truth(warehouse, sandbox)
    truth = sandbox.control.truth(TENANT, "TimeEntry")["records"]
    newest = max(utc(record["LastModifiedDateTime"]) for record in truth)
    assert summary["rows"] == len(truth) and summary["inserted"] == len(truth)
    assert utc(summary["watermark"]) == newest
    assert as_utc(sync_state(warehouse)["watermark"]) == newest
    counters = sandbox.control.counters()  # no licence session outlives the run
    assert counters["logins"] == counters["logouts"] > 0 and counters["open_sessions"] == 0


@pytest.mark.parametrize("frozen_by_host", [False, True])
def test_the_garbage_collector_is_left_as_the_run_found_it(new_sandbox, acumatica_connection, tmp_path, frozen_by_host):
    # A run freezes the objects older than the load (see utils.memory.older_objects_frozen); the task process must get
    # its collector back as it was, or keep the freeze its host (a forking executor) chose.
    sandbox = new_sandbox(rows=300)
    gc.unfreeze()
    if frozen_by_host:
        gc.freeze()
    try:
        sync(acumatica_connection(sandbox), (f"sqlite:///{tmp_path}/gc.db", None))
        assert (gc.get_freeze_count() > 0) == frozen_by_host
    finally:
        gc.unfreeze()


def test_records_changing_while_the_operator_pages_are_neither_lost_nor_doubled(
    new_sandbox, acumatica_connection, warehouse
):
    sandbox = new_sandbox(rows=3000, seed=5)
    conn_id = acumatica_connection(sandbox)
    before = {
        record["id"]: record["LastModifiedDateTime"] for record in sandbox.control.truth(TENANT, "TimeEntry")["records"]
    }
    for op in ("update", "delete", "insert"):
        sandbox.control.inject_fault(
            "mutate",
            count=4,
            path_contains="TimeEntry",
            mutation={"tenant": TENANT, "entity": "TimeEntry", "op": op, "random": 40},
        )
    sync(conn_id, warehouse, batch_size=300)
    sandbox.control.clear_faults()
    after = sandbox.control.truth(TENANT, "TimeEntry")["records"]
    untouched = {record["id"] for record in after if before.get(record["id"]) == record["LastModifiedDateTime"]}
    assert len(untouched) > 2000
    lost = untouched - set(warehouse_rows(warehouse))
    assert not lost, f"{len(lost)} records nobody changed were skipped by shifting pages"
    sync(conn_id, warehouse, batch_size=300)
    assert_matches_truth(warehouse, sandbox)


def test_second_run_reads_only_changes_and_the_watermark_never_moves_back(new_sandbox, acumatica_connection, warehouse):
    sandbox = new_sandbox(rows=600, seed=9)
    conn_id = acumatica_connection(sandbox)
    first = sync(conn_id, warehouse)
    changed = sandbox.control.update(TENANT, "TimeEntry", random=7)
    second = sync(conn_id, warehouse)
    assert second["updated"] >= len(changed) and second["inserted"] == 0
    assert second["rows"] < first["rows"]
    assert utc(second["watermark"]) >= utc(first["watermark"])
    assert_matches_truth(warehouse, sandbox)


def test_backfill_window_reloads_exactly_that_range_and_keeps_the_watermark(
    new_sandbox, acumatica_connection, warehouse
):
    sandbox = new_sandbox(rows=600, seed=13)
    conn_id = acumatica_connection(sandbox)
    sync(conn_id, warehouse)
    watermark = sync_state(warehouse)["watermark"]
    start = sandbox.control.now() - timedelta(days=60)
    end = start + timedelta(days=30)
    summary = sync(conn_id, warehouse, window_start=start.isoformat(), window_end=end.isoformat())
    in_window = [
        record
        for record in sandbox.control.truth(TENANT, "TimeEntry")["records"]
        if start <= utc(record["LastModifiedDateTime"]) < end
    ]
    assert summary["rows"] == len(in_window) and summary["inserted"] == 0
    assert sync_state(warehouse)["watermark"] == watermark


def test_naive_date_times_across_dst_land_as_the_right_utc_instants(new_sandbox, acumatica_connection, warehouse):
    zone = ZoneInfo("America/New_York")
    sandbox = new_sandbox(rows=800, seed=17, profile_timezone=zone.key, naive_datetimes=True)
    conn_id = acumatica_connection(sandbox, profile_timezone=zone.key)
    sync(conn_id, warehouse, batch_size=300)

    def earlier_instant_of_wall_time(text: str) -> datetime:
        """A wall time of the repeated autumn hour has two instants; without an offset the earlier is taken."""
        wall = utc(text).astimezone(zone).replace(tzinfo=None)
        return wall.replace(tzinfo=zone, fold=0).astimezone(timezone.utc)

    assert_matches_truth(warehouse, sandbox, read_back=earlier_instant_of_wall_time)
    stamps = [record["LastModifiedDateTime"] for record in sandbox.control.truth(TENANT, "TimeEntry")["records"]]
    assert any(earlier_instant_of_wall_time(text) != utc(text) for text in stamps), "no record in a repeated hour"
    assert any(utc(text).astimezone(zone).dst() for text in stamps) and any(
        not utc(text).astimezone(zone).dst() for text in stamps
    ), "records must lie on both sides of a DST change"


def test_full_reload_replaces_the_tenants_rows_and_marks_deletions(new_sandbox, acumatica_connection, warehouse):
    sandbox = new_sandbox(rows=300, seed=19)
    conn_id = acumatica_connection(sandbox)
    sync(conn_id, warehouse, table="LaborCostRate", mode="full", timestamp_field=None, batch_size=50)
    gone = sandbox.control.delete(TENANT, "LaborCostRate", random=3)
    summary = sync(conn_id, warehouse, table="LaborCostRate", mode="full", timestamp_field=None, batch_size=50)
    rows = warehouse_rows(warehouse, "labor_cost_rate")
    live = {record["id"] for record in sandbox.control.truth(TENANT, "LaborCostRate")["records"]}
    assert {key for key, row in rows.items() if row["_deleted_at"] is None} == live
    assert {key for key, row in rows.items() if row["_deleted_at"] is not None} == set(gone)
    assert summary["deleted"] == len(gone)


def test_a_failed_run_leaves_warehouse_and_watermark_as_they_were_and_a_rerun_converges(
    new_sandbox, acumatica_connection, warehouse
):
    sandbox = new_sandbox(rows=1500, seed=23)
    conn_id = acumatica_connection(sandbox, max_retries=1)
    sync(conn_id, warehouse, batch_size=2000)
    rows_before, state_before = warehouse_rows(warehouse), sync_state(warehouse)
    sandbox.control.update(TENANT, "TimeEntry", random=900)
    sandbox.control.inject_fault("500", count=50, path_contains="skip=")
    with pytest.raises(AcumaticaApiError):
        sync(conn_id, warehouse, batch_size=200)
    assert warehouse_rows(warehouse) == rows_before
    assert sync_state(warehouse) == state_before
    sandbox.control.clear_faults()
    sync(conn_id, warehouse, batch_size=200)
    assert_matches_truth(warehouse, sandbox)


def test_a_probe_left_unanswered_says_to_lower_the_connections_probe_page_size(
    new_sandbox, acumatica_connection, tmp_path
):
    """A slow instance may not answer a probe request (timestamps alone, at most the connection's probe_page_size
    of them) within the timeout: the error of one left unanswered names that setting. Nothing is written; with the
    instance answering again, the run loads it all."""
    sandbox = new_sandbox(rows=2600, seed=5)
    conn_id = acumatica_connection(sandbox, probe_page_size=1000, timeout=1, max_retries=0)
    warehouse = (f"sqlite:///{tmp_path / 'warehouse.db'}", None)
    sandbox.control.inject_fault(
        "slow", count=100, path_contains="$select=LastModifiedDateTime&$top=", delay_ms=600_000
    )
    with pytest.raises(
        AcumaticaApiError, match="probes [0-9]+ timestamps at once: .* lower the Acumatica connection's probe_page_size"
    ):
        sync(conn_id, warehouse)
    assert sqlalchemy.inspect(sqlalchemy.create_engine(warehouse[0])).get_table_names() == []
    sandbox.control.clear_faults()
    summary = sync(conn_id, warehouse)
    assert summary["rows"] == len(sandbox.control.truth(TENANT, "TimeEntry")["records"])
    assert_matches_truth(warehouse, sandbox)


@pytest.mark.parametrize(
    ("arguments", "named"),
    [
        ({"mode": "sometimes"}, "`mode`"),
        ({"time_offset": -1}, "`time_offset`"),
        ({"time_offset": 7200}, "`time_offset`"),
        ({"batch_size": 0}, "`batch_size`"),
        ({"batch_size": 20000}, "`batch_size`"),
        ({"source": "soap"}, "`source`"),
        ({"sql_url": None}, "sql_conn_id"),
        ({"timestamp_field": None}, "timestamp_field"),
        ({"expand": ["Tasks"], "source": "dac"}, "`expand`"),
    ],
)
def test_bad_arguments_fail_before_any_request_naming_the_argument(arguments, named):
    settings = {"task_id": "bad", "table": "Project", "sql_url": "sqlite://", **arguments}
    with pytest.raises(ValueError, match=named):
        AcumaticaToSqlOperator(**settings)


def test_key_reconciliation_marks_rows_deleted_in_acumatica_and_keeps_them(
    new_sandbox, acumatica_connection, warehouse
):
    sandbox = new_sandbox(rows=1200, seed=29)
    conn_id = acumatica_connection(sandbox)
    sync(conn_id, warehouse, track_deletes=True, batch_size=500)
    gone = set(sandbox.control.delete(TENANT, "TimeEntry", random=25))
    summary = sync(conn_id, warehouse, track_deletes=True, batch_size=500)
    rows = warehouse_rows(warehouse)
    assert {key for key, row in rows.items() if row["_deleted_at"] is not None} == gone
    assert summary["deleted"] == len(gone)
    assert_matches_truth(warehouse, sandbox)


def test_a_killed_run_leaves_warehouse_and_watermark_as_they_were(new_sandbox, acumatica_connection, warehouse):
    sandbox = new_sandbox(rows=3000, seed=31, latency_ms=20)
    conn_id = acumatica_connection(sandbox)
    sync(conn_id, warehouse, batch_size=2000)
    rows_before, state_before = warehouse_rows(warehouse), sync_state(warehouse)
    sandbox.control.update(TENANT, "TimeEntry", random=2500)
    url, schema = warehouse
    script = Path(__file__).with_name("operator_process.py")
    child = subprocess.Popen(
        [sys.executable, str(script), conn_id, url, schema or ""], stdout=subprocess.PIPE, text=True
    )
    try:
        progress = ("rows so far" in line for line in child.stdout)  # the operator logs a line per batch
        assert any(progress), "the child must have loaded a batch before the kill"
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait()
    assert child.returncode == -signal.SIGKILL
    assert warehouse_rows(warehouse) == rows_before
    assert sync_state(warehouse) == state_before
    sync(conn_id, warehouse, batch_size=500)
    assert_matches_truth(warehouse, sandbox)


def test_tracked_dac_deletions_come_from_get_deleted_records_and_untracked_ones_from_keys(
    new_sandbox, acumatica_connection, warehouse
):
    sandbox = new_sandbox(rows=300, seed=37)
    conn_id = acumatica_connection(sandbox)
    with AcumaticaHook(conn_id) as hook:  # which path each DAC takes is read from $metadata
        metadata = hook.get_odata_metadata()
        assert metadata["PMTask"].tracks_deletions and not metadata["EPEmployee"].tracks_deletions
    for dac in ("PMTask", "EPEmployee"):
        sync(conn_id, warehouse, table=dac, source="dac", track_deletes=True)
    gone_tasks = set(sandbox.control.delete(TENANT, "ProjectTask", random=3))
    gone_employees = set(sandbox.control.delete(TENANT, "Employee", random=2))
    sandbox.control.reset_counters()
    tasks = sync(conn_id, warehouse, table="PMTask", source="dac", track_deletes=True)
    employees = sync(conn_id, warehouse, table="EPEmployee", source="dac", track_deletes=True)
    marked_tasks = {key for key, row in warehouse_rows(warehouse, "pm_task").items() if row["_deleted_at"]}
    marked_employees = {key for key, row in warehouse_rows(warehouse, "ep_employee").items() if row["_deleted_at"]}
    assert (marked_tasks, tasks["deleted"]) == (gone_tasks, 3)  # _acumatica_id is the DAC's NoteID
    assert (marked_employees, employees["deleted"]) == (gone_employees, 2)
