"""The operator as docs/sync.md shows it, in a DAG that tests/dags/test_doc_examples.py runs against the sandbox."""

from __future__ import annotations

# [START dag]
import pendulum
from airflow.sdk import DAG

from airflow_provider_acumatica.operators.acumatica_to_sql import AcumaticaToSqlOperator

with DAG("example_acumatica_sync", schedule="@hourly", start_date=pendulum.datetime(2026, 1, 1), catchup=False):
    AcumaticaToSqlOperator(
        task_id="time_entries",
        table="TimeEntry",  # REST entity, DAC (source="dac") or generic inquiry (source="gi")
        acumatica_conn_id="acumatica_company",
        sql_conn_id="acumatica_warehouse",  # or sql_url="postgresql://..."
        mode="incremental",  # or "full"
        time_offset=300,
        batch_size=2000,
        window_start=None,
        window_end=None,  # templated: an explicit window reloads exactly that range
        track_deletes=False,
    )
# [END dag]
