"""`make demo`: the sync DAGs of both sandbox tenants, run through Airflow into a SQLite warehouse, twice; then
the payroll DAG publishes a week of a crew's time activities to Acumatica, twice.

Everything lives under .demo/ (recreated each time): the sandbox runs as its own process, Airflow uses a
SQLite metadata DB, connections come from AIRFLOW_CONN_* variables, and the bundle's own config
(dags/acumatica.yaml) drives the DAGs. Between the two sync runs some records change in the sandbox; the second
run loads only those. Between the two payroll runs one rejected row is corrected; the second run sends only it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import sqlalchemy
from payroll_demo import correct_one_row, last_monday, seed_week
from payroll_demo import report as payroll_report

from airflow_provider_acumatica.payroll.entries import EXTERNAL_REF_PREFIX
from airflow_provider_acumatica.sandbox import SANDBOX_PASSWORD, SANDBOX_USER, SandboxControl, sandbox_process

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / ".demo"
TENANTS = {"company": "Company", "subsidiary": "Subsidiary"}  # DAG tenant -> Acumatica tenant
ROWS = 5000
PROFILE_ZONE = "America/New_York"  # the sandbox API user's profile time zone


def airflow_environment(sandbox_url: str, warehouse: Path) -> dict[str, str]:
    """An Airflow home on SQLite under .demo/, our dags folder, and the connections the config names."""
    bundles = [
        {
            "name": "dags-folder",
            "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
            "kwargs": {"path": str(ROOT / "dags")},
        }
    ]
    environment = {
        **os.environ,
        "AIRFLOW_HOME": str(DEMO / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST": json.dumps(bundles),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",  # logs.txt keeps each table's lines (rows, windows, commits)
        "AIRFLOW_CONN_ACUMATICA_WAREHOUSE": json.dumps({"conn_type": "sqlite", "host": str(warehouse)}),
    }
    for dag_tenant, tenant in TENANTS.items():
        environment[f"AIRFLOW_CONN_ACUMATICA_{dag_tenant.upper()}"] = json.dumps(
            {
                "conn_type": "acumatica",
                "host": sandbox_url,
                "login": SANDBOX_USER,
                "password": SANDBOX_PASSWORD,
                "extra": {
                    "tenant": tenant,
                    "auth_type": "cookie",
                    "max_concurrent_requests": 3,
                    "profile_timezone": PROFILE_ZONE,
                },
            }
        )
    return environment


def run(command: list[str], environment: dict[str, str], what: str, expect_failure: str | None = None) -> None:
    """Run a command, its output appended to .demo/logs.txt; `expect_failure` says why a failure is the point."""
    started = time.monotonic()
    log = DEMO / "logs.txt"
    with log.open("a") as output:
        result = subprocess.run(command, env=environment, stdout=output, stderr=subprocess.STDOUT)
    if result.returncode != 0 and not expect_failure:
        raise SystemExit(f"{what} failed (exit {result.returncode}); see {log}")
    note = f" (the task failed, as it should: {expect_failure})" if result.returncode and expect_failure else ""
    print(f"  {what}: {time.monotonic() - started:.1f} s{note}")


def sync_all(environment: dict[str, str]) -> None:
    for dag_tenant in TENANTS:
        run(
            [sys.executable, "-m", "airflow", "dags", "test", f"acumatica_sync__{dag_tenant}"],
            environment,
            f"airflow dags test acumatica_sync__{dag_tenant}",
        )


def sync_state(warehouse: Path, changed_after: dict | None = None) -> dict[tuple[str, str], dict]:
    """Per (tenant, table): rows read by the last run, watermark, rows in the warehouse, and how many of
    them changed in Acumatica after the watermarks of `changed_after` (an earlier state)."""
    engine = sqlalchemy.create_engine(f"sqlite:///{warehouse}")
    with engine.connect() as connection:
        rows = connection.execute(
            sqlalchemy.text(
                "select tenant, table_name, rows, watermark from acumatica_sync_state order by tenant, table_name"
            )
        ).mappings()
        state = {(row["tenant"], row["table_name"]): dict(row) for row in rows}
        for (tenant, table), entry in state.items():
            count = f'select count(*) from "{table}" where _tenant = :tenant'
            entry["total"] = connection.execute(sqlalchemy.text(count), {"tenant": tenant}).scalar()
            since = (changed_after or {}).get((tenant, table), {}).get("watermark")
            entry["changed"] = (
                connection.execute(
                    sqlalchemy.text(count + " and _last_modified > :since"), {"tenant": tenant, "since": since}
                ).scalar()
                if since
                else None
            )
    engine.dispose()
    return state


def change_some_records(control: SandboxControl) -> None:
    for tenant in TENANTS.values():
        control.update(tenant, "TimeEntry", random=40)
        control.update(tenant, "Project", random=3)
        control.insert(
            tenant,
            "Customer",
            [{"CustomerID": f"DEMO{int(time.time()) % 10000}", "CustomerName": "Demo Builders", "Status": "Active"}],
        )
    print("  changed in the sandbox, per tenant: 40 time entries, 3 projects updated; 1 customer added")


def report(first: dict, second: dict) -> None:
    print(
        f"\n{'tenant':<11} {'table':<20} {'in warehouse':>12} {'run 1 read':>10} {'run 2 read':>10} "
        f"{'changed':>8}  watermark (UTC)"
    )
    for key in sorted(second):
        tenant, table = key
        entry = second[key]
        changed = "-" if entry["changed"] is None else f"{entry['changed']:,}"
        print(
            f"{tenant:<11} {table:<20} {entry['total']:>12,} {first.get(key, {}).get('rows', 0):>10,} "
            f"{entry['rows']:>10,} {changed:>8}  {entry['watermark'] or '- (full reload, no timestamp)'}"
        )
    print("run 2 re-reads `time_offset` seconds before each watermark, so it reads a little more than changed.")


def publish_payroll(environment: dict[str, str], warehouse: Path, url: str) -> None:
    """Seed last week's activities of tenant company, publish them, correct a rejected row, publish again."""
    week = last_monday(datetime.now(timezone.utc)) - timedelta(days=7)
    rows = seed_week(warehouse, "company", TENANTS["company"], week, ZoneInfo(PROFILE_ZONE))
    print(
        f"Payroll: {rows} time activities of a crew for the week of {week:%Y-%m-%d} in table payroll_time_activity "
        "(3 bad rows, 1 not approved)"
    )
    command = [
        sys.executable,
        "-m",
        "airflow",
        "dags",
        "test",
        "acumatica_payroll__company",
        (week + timedelta(days=7, hours=6)).isoformat(),
    ]  # the run after that week: its interval is the week
    why = "3 rows were rejected; every good row was sent"
    run(command, environment, "airflow dags test acumatica_payroll__company", expect_failure=why)
    payroll_report(warehouse, "payroll run 1")
    correct_one_row(warehouse, week)
    run(
        command,
        environment,
        "airflow dags test acumatica_payroll__company (after a correction)",
        expect_failure="2 rows are still rejected",
    )
    payroll_report(warehouse, "payroll run 2")
    entries = [
        record
        for record in SandboxControl(url).truth(TENANTS["company"], "TimeEntry")["records"]
        if (record["ExternalRefNbr"] or "").startswith(EXTERNAL_REF_PREFIX)
    ]
    print(
        f"  Acumatica now holds {len(entries)} published time entries, {len({e['ExternalRefNbr'] for e in entries})}"
        " distinct activities: one entry each, the corrected row added once, nothing sent twice"
    )


def main() -> None:
    shutil.rmtree(DEMO, ignore_errors=True)
    DEMO.mkdir()
    warehouse = DEMO / "warehouse.db"
    print(
        f"Demo in {DEMO}: Acumatica sandbox ({', '.join(TENANTS.values())}, {ROWS:,} time entries each), "
        "Airflow on SQLite, SQLite warehouse"
    )
    with sandbox_process("--tenants", ",".join(TENANTS.values()), "--rows", str(ROWS)) as url:
        environment = airflow_environment(url, warehouse)
        run([sys.executable, "-m", "airflow", "db", "migrate"], environment, "airflow db migrate")
        airflow = str(Path(sys.executable).with_name("airflow"))
        run(
            [sys.executable, "-m", "airflow_provider_acumatica.bundle", "pools", "--airflow", airflow],
            environment,
            "tenant pools",
        )
        print("First run (initial load):")
        sync_all(environment)
        first = sync_state(warehouse)
        change_some_records(SandboxControl(url))
        print("Second run (incremental):")
        sync_all(environment)
        report(first, sync_state(warehouse, changed_after=first))
        print()
        publish_payroll(environment, warehouse, url)
    print(f"\nWarehouse: {warehouse}   Airflow logs: {DEMO / 'logs.txt'}")
    print("To browse the DAGs in Airflow's UI, trigger them with the form and see their assets: make airflow")


if __name__ == "__main__":
    main()
