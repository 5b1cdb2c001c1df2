"""Runs one AcumaticaToSqlOperator load in its own process, for kill tests; its task log goes to stdout.

Usage: python operator_process.py CONN_ID WAREHOUSE_URL SCHEMA (the connection comes from AIRFLOW_CONN_*).
"""

from __future__ import annotations

import sys

from airflow_provider_acumatica.operators.acumatica_to_sql import AcumaticaToSqlOperator


def main() -> None:
    conn_id, warehouse_url, schema = sys.argv[1:4]
    operator = AcumaticaToSqlOperator(
        task_id="killed",
        table="TimeEntry",
        acumatica_conn_id=conn_id,
        sql_url=warehouse_url,
        target_schema=schema or None,
        batch_size=200,
    )
    operator.execute(context={})


if __name__ == "__main__":
    main()
