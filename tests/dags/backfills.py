"""Backfills for the DAG tests: `airflow backfill create` writes the runs, and this process runs them."""

from __future__ import annotations

import os
import subprocess
import sys

import sqlalchemy


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
