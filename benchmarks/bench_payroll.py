"""Payroll publishing throughput under latency: entries per second against the licence's ceiling.

A sandbox answers every request after --latency-ms (default 200) and allows 3 concurrent requests; the operator
publishes --entries (default 300) activities, completed (about two requests each: create, complete) and held
(about one: create), plus one look-up per 40. The ceiling is what the licence allows at that latency:
3 / latency per request, divided by the requests each entry took (counted by the sandbox, sign-in and sign-out
included). Target: within 1.3x of the ceiling.
Run: .venv/bin/python benchmarks/bench_payroll.py [--entries N] [--latency-ms MS]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="bench-payroll-airflow-"))

import sqlalchemy  # noqa: E402

from airflow_provider_acumatica.operators.payroll import AcumaticaPayrollPublishOperator  # noqa: E402
from airflow_provider_acumatica.payroll.source import source_table  # noqa: E402
from airflow_provider_acumatica.sandbox import (  # noqa: E402
    SANDBOX_PASSWORD,
    SANDBOX_USER,
    SandboxSettings,
    start_sandbox,
)

TENANT = "Company"
LICENCE = 3
START = datetime(2026, 11, 23, 12, tzinfo=timezone.utc)


def activities(sandbox, count: int, prefix: str) -> list[dict]:
    truth = sandbox.control.truth
    employees = [e["EmployeeID"] for e in truth(TENANT, "Employee")["records"] if e["Status"] == "Active"]
    projects = {p["ProjectID"] for p in truth(TENANT, "Project")["records"] if p["Status"] == "Active"}
    task = next(
        t for t in truth(TENANT, "ProjectTask")["records"] if t["Status"] == "Active" and t["ProjectID"] in projects
    )
    cost_code = next(c["CostCodeID"] for c in truth(TENANT, "CostCode")["records"] if c["Active"])
    return [
        {
            "activity_id": f"{prefix}-{n}",
            "tenant": TENANT,
            "employee_id": employees[n % len(employees)],
            "project_id": task["ProjectID"],
            "project_task_id": task["ProjectTaskID"],
            "cost_code": cost_code,
            "earning_type": "RG",
            "labor_item": None,
            "started_at": (START + timedelta(minutes=n)).isoformat(),
            "minutes": 60 + n % 400,
            "billable_minutes": 0,
            "summary": "bench",
            "approved": True,
            "updated_at": START.isoformat(),
        }
        for n in range(count)
    ]


def publish(sandbox, warehouse: Path, rows: list[dict], hold: bool) -> tuple[float, int]:
    """Seconds and sandbox requests of one run publishing `rows`."""
    engine = sqlalchemy.create_engine(f"sqlite:///{warehouse}")
    table = source_table("payroll_time_activity", None)
    with engine.begin() as connection:
        table.create(connection, checkfirst=True)
        connection.execute(table.delete())
        connection.execute(table.insert(), rows)
    engine.dispose()
    sandbox.control.reset_counters()
    operator = AcumaticaPayrollPublishOperator(
        task_id="bench", acumatica_conn_id="bench", sql_url=f"sqlite:///{warehouse}", hold=hold
    )
    started = time.perf_counter()
    summary = operator.execute(context={"data_interval_start": START, "data_interval_end": START + timedelta(days=7)})
    elapsed = time.perf_counter() - started
    assert summary["pushed"] == len(rows), summary
    counters = sandbox.control.counters()
    assert counters["throttled_429"] == 0 and counters["login_limit_refusals"] == 0, counters
    return elapsed, counters["requests"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--entries", type=int, default=300)
    parser.add_argument("--latency-ms", type=int, default=200)
    arguments = parser.parse_args()
    latency = arguments.latency_ms / 1000
    settings = SandboxSettings(tenants=(TENANT,), rows=20, latency_ms=arguments.latency_ms, max_concurrent=LICENCE)
    with start_sandbox(settings) as sandbox, tempfile.TemporaryDirectory() as folder:
        os.environ["AIRFLOW_CONN_BENCH"] = json.dumps(
            {
                "conn_type": "acumatica",
                "host": sandbox.url,
                "login": SANDBOX_USER,
                "password": SANDBOX_PASSWORD,
                "extra": {
                    "tenant": TENANT,
                    "max_concurrent_requests": LICENCE,
                    "token_store": f"sqlite:///{folder}/tokens.db",
                },
            }
        )
        print(
            f"Payroll publishing, {arguments.entries} entries, {arguments.latency_ms} ms a request, licence of "
            f"{LICENCE} concurrent requests"
        )
        print(
            f"{'entries':<10} {'seconds':>8} {'entries/s':>10} {'requests/entry':>15} {'ceiling/s':>10} {'x ceiling':>10}"
        )
        for hold in (False, True):
            rows = activities(sandbox, arguments.entries, f"{'held' if hold else 'done'}")
            elapsed, requests = publish(sandbox, Path(folder) / "warehouse.db", rows, hold)
            per_entry = requests / len(rows)
            ceiling = LICENCE / latency / per_entry
            rate = len(rows) / elapsed
            label = "held" if hold else "completed"
            print(
                f"{label:<10} {elapsed:>8.1f} {rate:>10.1f} {per_entry:>15.2f} {ceiling:>10.1f} {ceiling / rate:>9.2f}x"
            )


if __name__ == "__main__":
    main()
