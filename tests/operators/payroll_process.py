"""Runs one payroll publish of the test week in its own process, for kill tests.

Usage: python payroll_process.py CONN_ID WAREHOUSE_URL SCHEMA (the connection comes from AIRFLOW_CONN_*).
"""

from __future__ import annotations

import sys

from payroll_support import WEEK

from airflow_provider_acumatica.operators.payroll import AcumaticaPayrollPublishOperator


def main() -> None:
    conn_id, warehouse_url, schema = sys.argv[1:4]
    operator = AcumaticaPayrollPublishOperator(
        task_id="killed", acumatica_conn_id=conn_id, sql_url=warehouse_url, target_schema=schema or None, hold=False
    )
    operator.execute(context={"data_interval_start": WEEK[0], "data_interval_end": WEEK[1]})


if __name__ == "__main__":
    main()
