"""AcumaticaPayrollPublishOperator against the sandbox over real HTTP, from real SQLite files and the real
PostgreSQL: every activity becomes exactly one time entry, whatever crashes, reruns or overlapping runs happen.

execute() is called directly here (the DAG tests run it through Airflow); the context holds only what a
scheduled run gives the operator, its data interval.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from airflow.sdk.exceptions import AirflowException, AirflowFailException
from payroll_support import (
    MONDAY,
    TENANT,
    WEEK,
    LogWatch,
    activity,
    crew_of,
    entries_of,
    push_log,
    write_activities,
)

from airflow_provider_acumatica.operators.payroll import AcumaticaPayrollPublishOperator


@pytest.fixture(params=["sqlite", "postgres"])
def warehouse(request, tmp_path):
    """(SQLAlchemy URL, schema) of an empty warehouse of either kind."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'warehouse.db'}", None
    return request.getfixturevalue("postgres_schema")


@pytest.fixture
def sqlite_warehouse(tmp_path):
    return f"sqlite:///{tmp_path / 'warehouse.db'}", None


def publish(conn_id, warehouse, **arguments):
    """One run for the week of WEEK, as a scheduled run with that data interval."""
    url, schema = warehouse
    operator = AcumaticaPayrollPublishOperator(
        task_id="publish", acumatica_conn_id=conn_id, sql_url=url, target_schema=schema, **arguments
    )
    return operator.execute(context={"data_interval_start": WEEK[0], "data_interval_end": WEEK[1]})


def test_each_activity_becomes_one_completed_entry_and_a_rerun_sends_nothing(
    new_sandbox, acumatica_connection, warehouse
):
    sandbox = new_sandbox(rows=40)
    conn_id = acumatica_connection(sandbox, profile_timezone="America/New_York")
    crew = crew_of(sandbox)
    rows = [activity(crew, n, day=n % 5, billable_minutes=420 if n % 2 else 0) for n in range(6)]
    write_activities(warehouse, rows)

    summary = publish(conn_id, warehouse, hold=False, billable="source")

    assert (summary["activities"], summary["pushed"], summary["failed"], summary["rejected"]) == (6, 6, 0, 0)
    entries = entries_of(sandbox, [row["activity_id"] for row in rows])
    for row in rows:
        [entry] = entries[row["activity_id"]]
        assert entry["Employee"] == row["employee_id"] and entry["ApprovalStatus"] == "Completed"
        assert (entry["TimeSpent"], entry["Billable"]) == ("08:00", row["billable_minutes"] > 0)
        assert entry["BillableTime"] == ("07:00" if row["billable_minutes"] else "00:00")
        assert entry["Date"] == row["started_at"].astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    log = push_log(warehouse)
    assert {line["status"] for line in log.values()} == {"pushed"}
    assert {line["time_entry_id"] for line in log.values()} == {e[0]["TimeEntryID"] for e in entries.values()}

    sandbox.control.reset_counters()
    again = publish(conn_id, warehouse, hold=False, billable="source")
    assert (again["unchanged"], again["pushed"]) == (6, 0)
    assert sandbox.control.counters()["requests"] == 0  # nothing changed: not even a look-up or a sign-in
    assert all(len(found) == 1 for found in entries_of(sandbox, [row["activity_id"] for row in rows]).values())


@pytest.mark.parametrize(
    ("billable", "hold", "expected"),
    [
        (True, True, [(True, "06:00", "Open"), (True, "08:00", "Open")]),
        (False, False, [(False, "00:00", "Completed"), (False, "00:00", "Completed")]),
        ("source", True, [(True, "06:00", "Open"), (False, "00:00", "Open")]),
    ],
)
def test_billable_and_hold_settings_shape_the_entries(
    new_sandbox, acumatica_connection, sqlite_warehouse, billable, hold, expected
):
    sandbox = new_sandbox(rows=20)
    conn_id = acumatica_connection(sandbox)
    crew = crew_of(sandbox)
    rows = [activity(crew, 1, billable_minutes=360), activity(crew, 2, billable_minutes=0)]
    write_activities(sqlite_warehouse, rows)
    publish(conn_id, sqlite_warehouse, billable=billable, hold=hold)
    entries = entries_of(sandbox, ["MC-00001", "MC-00002"])
    assert [(e[0]["Billable"], e[0]["BillableTime"], e[0]["ApprovalStatus"]) for e in entries.values()] == expected


def test_the_entry_date_is_the_work_day_in_the_profile_time_zone(new_sandbox, acumatica_connection, sqlite_warehouse):
    tokyo = ZoneInfo("Asia/Tokyo")
    sandbox = new_sandbox(rows=20, profile_timezone="Asia/Tokyo")
    conn_id = acumatica_connection(sandbox, profile_timezone="Asia/Tokyo")
    crew = crew_of(sandbox)
    started = datetime(2026, 11, 24, 7, 30, tzinfo=tokyo)  # 2026-11-23 22:30 UTC: the UTC day is the day before
    write_activities(sqlite_warehouse, [activity(crew, 1, started_at=started)])
    publish(conn_id, sqlite_warehouse)
    [entry] = entries_of(sandbox, ["MC-00001"])["MC-00001"]
    with sandbox_session(sandbox) as session:  # as Acumatica shows it to the API user
        shown = session.get(f"{sandbox.url}/entity/Default/24.200.001/TimeEntry/{entry['id']}").json()["Date"]["value"]
    assert shown.startswith("2026-11-24T07:30:00") and entry["Date"].startswith("2026-11-23T22:30")


def test_a_changed_activity_updates_its_open_entry_and_a_completed_one_is_locked(
    new_sandbox, acumatica_connection, warehouse
):
    sandbox = new_sandbox(rows=20)
    conn_id = acumatica_connection(sandbox)
    crew = crew_of(sandbox)
    write_activities(warehouse, [activity(crew, 1)])
    publish(conn_id, warehouse, hold=True)
    write_activities(warehouse, [activity(crew, 1, minutes=510, summary="Framing, stayed late")])
    summary = publish(conn_id, warehouse, hold=True)
    assert summary["updated"] == 1
    [entry] = entries_of(sandbox, ["MC-00001"])["MC-00001"]
    assert (entry["TimeSpent"], entry["Summary"], entry["ApprovalStatus"]) == ("08:30", "Framing, stayed late", "Open")
    assert push_log(warehouse)["MC-00001"]["status"] == "updated"

    with sandbox_session(sandbox) as session:  # a supervisor completes it in Acumatica
        done = session.post(
            f"{sandbox.url}/entity/Default/24.200.001/TimeEntry/CompleteTimeEntry", json={"entity": {"id": entry["id"]}}
        )
        assert done.status_code == 204
    assert publish(conn_id, warehouse, hold=True)["unchanged"] == 1  # completed there, unchanged here: fine
    write_activities(warehouse, [activity(crew, 1, minutes=540, summary="Framing, stayed later")])
    summary = publish(conn_id, warehouse, hold=True)
    assert summary["locked"] == 1
    [after] = entries_of(sandbox, ["MC-00001"])["MC-00001"]
    assert (after["TimeSpent"], after["ApprovalStatus"]) == ("08:30", "Completed")  # not touched
    line = push_log(warehouse)["MC-00001"]
    assert line["status"] == "locked" and "Completed" in line["error"] and "TimeSpent" in line["error"]


def test_a_dry_run_writes_nothing_to_acumatica_nor_to_the_push_log(new_sandbox, acumatica_connection, sqlite_warehouse):
    sandbox = new_sandbox(rows=20)
    conn_id = acumatica_connection(sandbox)
    crew = crew_of(sandbox)
    write_activities(sqlite_warehouse, [activity(crew, n) for n in range(3)])
    before = sandbox.control.truth(TENANT, "TimeEntry")["records"]
    summary = publish(conn_id, sqlite_warehouse, dry_run=True)
    assert (summary["dry_run"], summary["pushed"]) == (True, 3)
    assert sandbox.control.truth(TENANT, "TimeEntry")["records"] == before
    with pytest.raises(Exception, match="acumatica_payroll_push_log"):
        push_log(sqlite_warehouse)


def test_a_lost_answer_after_the_entry_was_saved_is_resolved_by_a_look_up_not_a_second_create(
    new_sandbox, acumatica_connection, warehouse
):
    sandbox = new_sandbox(rows=20)
    conn_id = acumatica_connection(sandbox)
    crew = crew_of(sandbox)
    rows = [activity(crew, n) for n in range(4)]
    write_activities(warehouse, rows)
    sandbox.control.inject_fault("drop", phase="after", method="PUT", path_contains="TimeEntry", count=2)
    sandbox.control.inject_fault("503", phase="after", method="PUT", path_contains="TimeEntry", count=1)
    sandbox.control.inject_fault("500", phase="after", method="POST", path_contains="CompleteTimeEntry", count=1)
    summary = publish(conn_id, warehouse, hold=False)
    assert (summary["pushed"], summary["failed"]) == (4, 0)
    entries = entries_of(sandbox, [row["activity_id"] for row in rows])
    assert [len(found) for found in entries.values()] == [1, 1, 1, 1]
    assert {found[0]["ApprovalStatus"] for found in entries.values()} == {"Completed"}
    assert publish(conn_id, warehouse, hold=False)["unchanged"] == 4


def test_a_task_killed_between_the_create_and_the_log_write_leaves_one_entry_after_the_rerun(
    new_sandbox, acumatica_connection, warehouse
):
    sandbox = new_sandbox(rows=20)
    conn_id = acumatica_connection(sandbox, max_concurrent_requests=1)
    crew = crew_of(sandbox)
    rows = [activity(crew, n) for n in range(3)]
    write_activities(warehouse, rows)
    # The first entry's completion is held: its create is answered, its log line not yet written.
    sandbox.control.inject_fault("slow", method="POST", path_contains="CompleteTimeEntry", delay_ms=120_000)
    url, schema = warehouse
    script = Path(__file__).with_name("payroll_process.py")
    child = subprocess.Popen([sys.executable, str(script), conn_id, url, schema or ""], stdout=subprocess.DEVNULL)
    try:
        assert sandbox.control.wait_held(1, timeout=60) == 1
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait()
        sandbox.control.clear_faults()
    assert child.returncode == -signal.SIGKILL
    saved = entries_of(sandbox, [row["activity_id"] for row in rows])
    assert sum(len(found) for found in saved.values()) == 1 and push_log(warehouse) == {}

    summary = publish(conn_id, warehouse, hold=False)
    assert (summary["pushed"], summary["failed"]) == (3, 0)
    entries = entries_of(sandbox, [row["activity_id"] for row in rows])
    assert [len(found) for found in entries.values()] == [1, 1, 1]
    assert {found[0]["ApprovalStatus"] for found in entries.values()} == {"Completed"}


def test_two_runs_at_once_create_no_duplicate(new_sandbox, acumatica_connection, warehouse):
    sandbox = new_sandbox(rows=20)
    conn_id = acumatica_connection(sandbox)
    crew = crew_of(sandbox)
    rows = [activity(crew, n) for n in range(5)]
    write_activities(warehouse, rows)
    waiting = LogWatch("another run of this tenant is publishing")
    sandbox.control.inject_fault("slow", method="PUT", path_contains="TimeEntry", delay_ms=120_000)
    results = {}

    def run(name):
        results[name] = publish(conn_id, warehouse, hold=True)

    first = threading.Thread(target=run, args=("first",))
    first.start()
    try:
        assert sandbox.control.wait_held(1, timeout=60) == 1  # the first run is creating, holding the lock
        second = threading.Thread(target=run, args=("second",))
        with waiting:
            second.start()
            assert waiting.seen.wait(timeout=60), "the second run must wait for the first"
    finally:
        sandbox.control.clear_faults()
        first.join()
    second.join()
    assert results["first"]["pushed"] == 5 and results["second"]["unchanged"] == 5
    assert [len(found) for found in entries_of(sandbox, [row["activity_id"] for row in rows]).values()] == [1] * 5


def test_a_thousand_entries_within_a_licence_of_three_are_none_declined(
    new_sandbox, acumatica_connection, sqlite_warehouse
):
    sandbox = new_sandbox(rows=20, max_concurrent=3, max_sessions=3)
    conn_id = acumatica_connection(sandbox, max_concurrent_requests=3)
    crew = crew_of(sandbox)
    rows = [activity(crew, n, day=n % 7, hour=6 + n % 10, minutes=60 + n % 300) for n in range(1000)]
    write_activities(sqlite_warehouse, rows)
    summary = publish(conn_id, sqlite_warehouse, hold=False)
    assert (summary["pushed"], summary["failed"]) == (1000, 0)
    counters = sandbox.control.counters()
    assert counters["throttled_429"] == 0 and counters["login_limit_refusals"] == 0
    entries = entries_of(sandbox, [row["activity_id"] for row in rows])
    assert all(len(found) == 1 for found in entries.values())


def sandbox_session(sandbox):
    import requests

    from airflow_provider_acumatica.sandbox import SANDBOX_PASSWORD, SANDBOX_USER

    session = requests.Session()
    session.post(
        f"{sandbox.url}/entity/auth/login", json={"name": SANDBOX_USER, "password": SANDBOX_PASSWORD, "tenant": TENANT}
    ).raise_for_status()
    return _SignedIn(session, sandbox.url)


class _SignedIn:
    def __init__(self, session, url):
        self.session, self.url = session, url

    def __enter__(self):
        return self.session

    def __exit__(self, *exc):
        self.session.post(f"{self.url}/entity/auth/logout")
        self.session.close()


def sync_references(conn_id, warehouse, sync_tenant=TENANT):
    """Sync the tables a time entry points to, as the sync DAGs do, into the payroll's warehouse."""
    from airflow_provider_acumatica.operators.acumatica_to_sql import AcumaticaToSqlOperator

    url, schema = warehouse
    for table in ("Employee", "Project", "ProjectTask", "CostCode", "EarningTypeCode"):
        AcumaticaToSqlOperator(
            task_id=f"sync_{table}",
            table=table,
            acumatica_conn_id=conn_id,
            sql_url=url,
            target_schema=schema,
            tenant=sync_tenant,
        ).execute(context={})


def test_bad_rows_are_rejected_naming_the_field_good_ones_pushed_and_the_run_fails_after(
    new_sandbox, acumatica_connection, warehouse
):
    sandbox = new_sandbox(rows=20)
    conn_id = acumatica_connection(sandbox)
    crew = crew_of(sandbox)
    sync_references(conn_id, warehouse, sync_tenant="company")  # the bundle labels rows with its tenant name
    rows = [
        activity(crew, 1),
        activity(crew, 2, tenant="COMPANY"),  # the tenant is matched in any case
        activity(crew, 3, activity_id=""),
        activity(crew, 4, employee_id="EP-NOBODY"),
        activity(crew, 5, employee_id=crew.inactive_employee),
        activity(crew, 6, cost_code="99-999"),
        activity(crew, 7, minutes=0),
        activity(crew, 8, minutes=60, billable_minutes=90),
        activity(crew, 10, approved=False),  # not selected
        activity(crew, 11, started_at=MONDAY - timedelta(minutes=1)),  # before the period: not selected
        activity(crew, 12, tenant="Subsidiary"),  # another tenant: not selected
    ]
    write_activities(warehouse, rows)
    with pytest.raises(AirflowFailException, match=r"6 rejected and 0 failed") as failure:
        publish(conn_id, warehouse, sync_tenant="company")
    assert "\nrejected         6\n" in str(failure.value)  # the summary table (the row without an id counts too)
    entries = entries_of(sandbox, [f"MC-{n:05d}" for n in range(1, 13)])
    assert [n for n in range(1, 13) if entries[f"MC-{n:05d}"]] == [1, 2]
    log = push_log(warehouse)
    errors = {activity_id: line["error"] for activity_id, line in log.items() if line["status"] == "rejected"}
    assert errors["MC-00004"].startswith("employee_id: employee 'EP-NOBODY' is not in Acumatica")
    assert errors["MC-00005"].startswith("employee_id:") and "inactive" in errors["MC-00005"]
    assert errors["MC-00006"].startswith("cost_code: cost code '99-999' is not in Acumatica")
    assert errors["MC-00007"].startswith("minutes: 0 is not positive")
    assert errors["MC-00008"].startswith("billable_minutes: 90 is more than the 60 minutes")
    assert set(errors) == {"MC-00004", "MC-00005", "MC-00006", "MC-00007", "MC-00008"}  # row 3 has no id

    rows[3] = activity(crew, 4)  # the time-tracking system corrects one row
    write_activities(warehouse, rows)
    with pytest.raises(AirflowFailException, match=r"5 rejected"):  # rows 3, 5, 6, 7, 8
        publish(conn_id, warehouse, sync_tenant="company")
    assert len(entries_of(sandbox, ["MC-00004"])["MC-00004"]) == 1
    assert push_log(warehouse)["MC-00001"]["status"] == "pushed"  # not touched again


def test_a_start_without_time_zone_is_rejected(new_sandbox, acumatica_connection, warehouse):
    sandbox = new_sandbox(rows=20)
    conn_id = acumatica_connection(sandbox)
    crew = crew_of(sandbox)
    url, schema = warehouse
    if url.startswith("sqlite"):  # ISO text without an offset
        write_activities(warehouse, [activity(crew, 1, started_at=datetime(2026, 11, 24, 7, 0))])
        arguments = {}
    else:  # a `timestamp without time zone` column, as another tool may have made it
        write_activities(warehouse, [activity(crew, 1)])
        columns = "activity_id, tenant, employee_id, project_id, project_task_id, cost_code, earning_type, labor_item"
        arguments = {
            "source_sql": f"select {columns}, (started_at at time zone 'America/New_York')::timestamp as "
            "started_at, minutes, billable_minutes, summary, approved, updated_at from "
            f"{schema}.payroll_time_activity"
        }
    with pytest.raises(AirflowFailException, match="1 rejected"):
        publish(conn_id, warehouse, **arguments)
    line = push_log(warehouse)["MC-00001"]
    assert line["error"].startswith("started_at: 2026-11-2") and "has no time zone" in line["error"]
    assert entries_of(sandbox, ["MC-00001"])["MC-00001"] == []


def test_acumatica_refusing_an_entry_records_each_field_error_and_fails_the_run(
    new_sandbox, acumatica_connection, sqlite_warehouse
):
    sandbox = new_sandbox(rows=20)
    conn_id = acumatica_connection(sandbox)
    crew = crew_of(sandbox)  # no synced reference tables: Acumatica itself refuses the unknown task
    write_activities(sqlite_warehouse, [activity(crew, 1), activity(crew, 2, project_task_id="ZZ")])
    with pytest.raises(AirflowFailException, match="1 rejected"):
        publish(conn_id, sqlite_warehouse)
    line = push_log(sqlite_warehouse)["MC-00002"]
    assert line["status"] == "rejected" and line["error"].startswith("ProjectTaskID: Project Task 'ZZ' cannot be found")
    assert push_log(sqlite_warehouse)["MC-00001"]["status"] == "pushed"


def test_a_source_query_with_the_period_parameters_replaces_the_table(
    new_sandbox, acumatica_connection, sqlite_warehouse
):
    sandbox = new_sandbox(rows=20)
    conn_id = acumatica_connection(sandbox)
    crew = crew_of(sandbox)
    write_activities(
        sqlite_warehouse, [activity(crew, n, minutes=30 * (n + 1)) for n in range(4)], table="clock_events"
    )
    query = (
        "select activity_id, tenant, employee_id, project_id, project_task_id, cost_code, earning_type, labor_item,"
        " started_at, minutes, billable_minutes, summary, approved, updated_at from clock_events"
        " where tenant = :tenant and minutes >= 60"
    )
    summary = publish(conn_id, sqlite_warehouse, source_sql=query)
    assert summary["pushed"] == 3


def test_a_missing_source_table_or_period_is_a_clear_error(new_sandbox, acumatica_connection, sqlite_warehouse):
    sandbox = new_sandbox(rows=20)
    conn_id = acumatica_connection(sandbox)
    with pytest.raises(AirflowFailException, match="payroll source table 'payroll_time_activity' does not exist"):
        publish(conn_id, sqlite_warehouse)
    assert publish(conn_id, sqlite_warehouse, create_source_table=True)["activities"] == 0
    url, schema = sqlite_warehouse
    operator = AcumaticaPayrollPublishOperator(task_id="manual", acumatica_conn_id=conn_id, sql_url=url)
    with pytest.raises(AirflowFailException, match="no pay period: give period_start and period_end"):
        operator.execute(context={"data_interval_start": None, "data_interval_end": None})


def test_entries_acumatica_keeps_failing_are_failed_and_the_run_can_be_retried(
    new_sandbox, acumatica_connection, sqlite_warehouse
):
    sandbox = new_sandbox(rows=20)
    conn_id = acumatica_connection(sandbox)
    crew = crew_of(sandbox)
    write_activities(sqlite_warehouse, [activity(crew, 1), activity(crew, 2)])
    sandbox.control.inject_fault("500", method="PUT", path_contains="TimeEntry", count=2)  # both tries of one entry
    with pytest.raises(AirflowException, match="0 rejected and 1 failed") as failure:
        publish(conn_id, sqlite_warehouse, max_concurrent_requests=1)  # one entry at a time: both 500s hit the first
    assert not isinstance(failure.value, AirflowFailException)  # Airflow may retry the task
    log = push_log(sqlite_warehouse)
    assert sorted(line["status"] for line in log.values()) == ["failed", "pushed"]
    assert sum(len(found) for found in entries_of(sandbox, ["MC-00001", "MC-00002"]).values()) == 1
    assert publish(conn_id, sqlite_warehouse)["pushed"] == 1  # the retry sends only the failed one
    assert [len(found) for found in entries_of(sandbox, ["MC-00001", "MC-00002"]).values()] == [1, 1]


def test_a_refused_sign_in_fails_at_once_naming_the_tenant_and_the_fix(
    new_sandbox, acumatica_connection, sqlite_warehouse
):
    sandbox = new_sandbox(rows=20)
    conn_id = acumatica_connection(sandbox, password="wrong")
    crew = crew_of(sandbox)
    write_activities(sqlite_warehouse, [activity(crew, 1)])
    with pytest.raises(AirflowFailException, match=r"tenant 'Company', table 'TimeEntry'.*not retried.*credentials"):
        publish(conn_id, sqlite_warehouse)
    assert entries_of(sandbox, ["MC-00001"])["MC-00001"] == []


def test_a_run_reports_its_lineage_from_the_activity_table_to_acumatica_time_entries(
    new_sandbox, acumatica_connection, sqlite_warehouse
):
    pytest.importorskip("airflow.providers.openlineage")
    sandbox = new_sandbox(rows=20)
    conn_id = acumatica_connection(sandbox)
    crew = crew_of(sandbox)
    write_activities(sqlite_warehouse, [activity(crew, 1), activity(crew, 2)])
    url, _ = sqlite_warehouse
    operator = AcumaticaPayrollPublishOperator(task_id="publish", acumatica_conn_id=conn_id, sql_url=url)
    operator.execute(context={"data_interval_start": WEEK[0], "data_interval_end": WEEK[1]})
    lineage = operator.get_openlineage_facets_on_complete(task_instance=None)
    [source], [target] = lineage.inputs, lineage.outputs
    assert (source.namespace, source.name) == (f"sqlite://{url.removeprefix('sqlite:///')}", "payroll_time_activity")
    assert "started_at" in [field.name for field in source.facets["schema"].fields]
    assert (
        target.namespace.startswith("acumatica://127.0.0.1:") and target.name == "Company.Default/24.200.001.TimeEntry"
    )
    assert "ExternalRefNbr" in [field.name for field in target.facets["schema"].fields]
    assert target.outputFacets["outputStatistics"].rowCount == 2
