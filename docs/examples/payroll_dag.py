"""The payroll operator as docs/payroll.md shows it, in a DAG that tests/dags/test_doc_examples.py runs."""

from __future__ import annotations

# [START dag]
import pendulum
from airflow.sdk import DAG
from airflow.timetables.interval import CronDataIntervalTimetable

from airflow_provider_acumatica.operators.payroll import AcumaticaPayrollPublishOperator

week = CronDataIntervalTimetable("0 6 * * 1", timezone="America/New_York")  # each run's data interval: a pay week
with DAG("example_acumatica_payroll", schedule=week, start_date=pendulum.datetime(2026, 1, 1), catchup=False):
    AcumaticaPayrollPublishOperator(
        task_id="publish",
        acumatica_conn_id="acumatica_company",
        sql_conn_id="acumatica_warehouse",  # or sql_url="postgresql+psycopg://..."
        source_table="payroll_time_activity",  # or source_sql=...
        period_start="{{ data_interval_start }}",  # the defaults
        period_end="{{ data_interval_end }}",
        billable="source",
        hold=True,
        dry_run=False,
    )
# [END dag]
