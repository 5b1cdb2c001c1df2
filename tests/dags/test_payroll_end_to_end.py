"""The payroll DAGs run through Airflow (dag.test with a real metadata DB) against the sandbox over HTTP, from a
SQLite warehouse: the run's data interval is the pay period, the trigger form overrides it, a dry run sends
nothing, and with require_approval nothing is sent until a person approves.
"""

from __future__ import annotations

import datetime
import sys
import threading
import uuid
from pathlib import Path

import pytest
from airflow.dag_processing.dagbag import DagBag
from backfills import create_backfill, run_backfill_runs
from dags_paths import DAGS_FOLDER, PAYROLL_FILE

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "operators"))
from payroll_support import (  # noqa: E402
    MONDAY,
    LogWatch,
    activity,
    crew_of,
    entries_of,
    push_log,
    write_activities,
)

pytestmark = pytest.mark.slow

CONFIG = """
defaults: {{owner: tests, retries: 0, timezone: America/New_York}}
tenants:
  - name: company
    acumatica_conn_id: acumatica_company
    tables: [{{name: Project, mode: incremental}}]
    payroll: {{hold: false, billable: true{approval}}}
"""


def parsed_dag(dag_id: str = "acumatica_payroll__company"):
    bag = DagBag(dag_folder=PAYROLL_FILE, bundle_path=DAGS_FOLDER)
    assert bag.import_errors == {}
    return bag.get_dag(dag_id)


@pytest.fixture
def payroll(airflow_db, sandbox, connections, sync_config, tmp_path):
    """A SQLite warehouse with two weeks of a crew's activities; returns (warehouse, activity ids per week)."""
    url = f"sqlite:///{tmp_path / 'warehouse.db'}"
    connections(sandbox, url)
    crew = crew_of(sandbox)
    run = uuid.uuid4().hex[:8]  # the sandbox is shared by the module's tests: activities of their own
    first = [activity(crew, n, day=n % 5, activity_id=f"{run}-{n}") for n in range(4)]
    second = [activity(crew, 100 + n, day=7 + n % 5, activity_id=f"{run}-{100 + n}") for n in range(3)]
    write_activities((url, None), first + second)
    return (url, None), [row["activity_id"] for row in first], [row["activity_id"] for row in second]


def states(run) -> dict[str, str]:
    return {ti.task_id: ti.state for ti in run.get_task_instances()}


def test_a_scheduled_run_publishes_its_pay_period_and_the_form_can_name_another(payroll, sync_config, sandbox):
    sync_config(CONFIG.format(approval=""))
    warehouse, first_week, second_week = payroll
    # The run after the week of MONDAY: its data interval is that week (Monday 06:00 to Monday 06:00, New York).
    run = parsed_dag().test(logical_date=MONDAY + datetime.timedelta(days=7, hours=6))
    assert run.state == "success", states(run)
    entries = entries_of(sandbox, first_week + second_week)
    assert [len(entries[a]) for a in first_week] == [1, 1, 1, 1]
    assert [len(entries[a]) for a in second_week] == [0, 0, 0]

    week_two = (MONDAY + datetime.timedelta(days=7)).isoformat()
    week_three = (MONDAY + datetime.timedelta(days=14)).isoformat()
    # Manual runs without a logical date, as the UI's trigger form makes them: their period comes from the form.
    # (a DAG object per run: dag.test resolves the form into the DAG's own params, which a reuse would keep)
    dry = parsed_dag().test(
        logical_date=None, run_conf={"period_start": week_two, "period_end": week_three, "dry_run": True}
    )
    assert dry.state == "success", states(dry)
    assert [len(entries_of(sandbox, second_week)[a]) for a in second_week] == [0, 0, 0]
    real = parsed_dag().test(logical_date=None, run_conf={"period_start": week_two, "period_end": week_three})
    assert real.state == "success", states(real)
    assert [len(entries_of(sandbox, second_week)[a]) for a in second_week] == [1, 1, 1]
    assert {line["status"] for line in push_log(warehouse).values()} == {"pushed"}


@pytest.mark.parametrize(("answer", "sent"), [("Reject", 0), ("Approve", 1)])
def test_with_require_approval_nothing_is_sent_until_a_person_approves(payroll, sync_config, sandbox, answer, sent):
    sync_config(CONFIG.format(approval=", require_approval: true"))
    _, first_week, _ = payroll
    results = {}
    waiting = LogWatch("Waiting for Human-in-the-loop input")

    def approver() -> None:  # a person, answering once the run waits (dag.test itself must run on the main thread)
        if waiting.seen.wait(timeout=120):
            results["sent before"] = sum(len(found) for found in entries_of(sandbox, first_week).values())
            results["report"] = respond_in_the_ui_api("acumatica_payroll__company", "approve", answer)

    person = threading.Thread(target=approver)
    with waiting:
        person.start()
        run = parsed_dag().test(logical_date=MONDAY + datetime.timedelta(days=7, hours=6))
    person.join()
    report = results["report"]
    assert results["sent before"] == 0
    assert "### Payroll for tenant Company" in report["body"] and "| pushed | 4 |" in report["body"]
    run_states = states(run)
    assert run_states["publish"] == ("skipped" if answer == "Reject" else "success"), run_states
    assert [len(found) for found in entries_of(sandbox, first_week).values()] == [sent] * 4


def respond_in_the_ui_api(dag_id: str, task_id: str, option: str) -> dict:
    """Answer a human-in-the-loop task through Airflow's own REST API, as the UI's Required Actions page does
    (the API app in-process on the same metadata DB, its auth manager letting every caller in as admin)."""
    from airflow.api_fastapi.app import create_app
    from airflow.configuration import conf
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from fastapi.testclient import TestClient

    with create_session() as session:
        run_id = session.query(DagRun.run_id).filter(DagRun.dag_id == dag_id).order_by(DagRun.id.desc()).first()[0]
    conf.set("core", "simple_auth_manager_all_admins", "True")
    try:
        with TestClient(create_app("core")) as client:
            path = f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/-1/hitlDetails"
            asked = client.get(path)
            assert asked.status_code == 200, asked.text
            answered = client.patch(path, json={"chosen_options": [option], "params_input": {}})
            assert answered.status_code == 200, answered.text
            return asked.json()
    finally:
        conf.remove_option("core", "simple_auth_manager_all_admins")


def test_a_backfill_publishes_each_past_pay_period_once(payroll, sync_config, sandbox):
    sync_config(CONFIG.format(approval=""))
    _, first_week, _ = payroll
    crew = crew_of(sandbox)
    url = payroll[0][0]
    run = first_week[0].split("-")[0]
    week_before = [activity(crew, 200 + n, day=-7 + n, activity_id=f"{run}-{200 + n}") for n in range(2)]
    write_activities(
        (url, None), [*week_before, *(activity(crew, n, day=n % 5, activity_id=f"{run}-{n}") for n in range(4))]
    )
    parsed_dag().test(logical_date=MONDAY - datetime.timedelta(days=30))  # puts the DAG in the metadata DB
    create_backfill("acumatica_payroll__company", "2026-11-16", "2026-11-24")  # two Mondays
    runs = run_backfill_runs(parsed_dag())
    new_york = MONDAY.tzinfo
    assert [(str(t), str(s), a.astimezone(new_york), b.astimezone(new_york)) for t, s, a, b in runs] == [
        ("backfill", "success", MONDAY - datetime.timedelta(days=7, hours=-6), MONDAY + datetime.timedelta(hours=6)),
        ("backfill", "success", MONDAY + datetime.timedelta(hours=6), MONDAY + datetime.timedelta(days=7, hours=6)),
    ]
    ids = [row["activity_id"] for row in week_before] + first_week
    assert [len(found) for found in entries_of(sandbox, ids).values()] == [1] * 6
