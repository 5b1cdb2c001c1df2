"""PostgreSQL commit of a load, statement by statement: a first load (the commit creates the table) then a merge.

Stages N synthetic TimeEntry-like rows (33 fields as the operator hands them over, keyed by a random GUID
``_acumatica_id`` as the sandbox's are) through ``Warehouse.load``, then times each statement ``commit`` runs
(wall seconds, from SQLAlchemy's cursor events) and the commit as a whole. The second load stages the same
keys again (newer versions) and merges them. ``--duplicates N`` stages the first N keys a second time in each
run, so the commit has superseded copies to delete. Wall time holds PostgreSQL's work; on a shared machine
compare runs made side by side. Writes into a schema of its own, dropped at the end.
Usage: python benchmarks/bench_commit.py [--rows 1000000] [--duplicates 0] [--postgres URL]
"""

from __future__ import annotations

import argparse
import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone

import sqlalchemy

from airflow_provider_acumatica.warehouse.loader import Load, Warehouse
from airflow_provider_acumatica.warehouse.state import SyncState

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
DEFAULT_POSTGRES = os.environ.get("ACUMATICA_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
BATCH = 2_000
WORK = ("Formwork", "Pour slab", "Rebar", "Framing", "Electrical rough-in", "Drywall", "Site cleanup")


def batch_of_rows(start: int, count: int, version: int) -> list[dict]:
    """Rows shaped like the sandbox's TimeEntry records; row n always has the same (random-looking) GUID key."""
    rows = []
    for n in range(start, start + count):
        stamp = T0 + timedelta(seconds=n * 7 + version, milliseconds=n % 1000)
        spent = 15 * (2 + n % 38)
        rows.append(
            {
                "TimeEntryID": str(uuid.UUID(int=(n * 0x2545F4914F6CDD1D + 7) % 2**128)),
                "Employee": f"EP{n % 1500:05d}",
                "Date": stamp - timedelta(hours=2 + n % 200),
                "ProjectID": f"21-{n % 400:04d}",
                "ProjectTaskID": f"{n % 9:02d}",
                "CostCode": f"{n % 40:02d}-100",
                "EarningType": ("RG", "OT", "DT", "PTO")[n % 4],
                "LaborItem": ("FOREMAN", "LABORER")[n % 2],
                "TimeSpent": f"{spent // 60:02d}:{spent % 60:02d}",
                "BillableTime": "06:15",
                "Billable": n % 3 != 0,
                "Overtime": "00:00",
                "BillableOvertime": "00:00",
                "Summary": WORK[n % len(WORK)],
                "ExternalRefNbr": f"MC-COM-{n:07d}" if n % 5 < 2 else "",
                "ApprovalStatus": "Completed" if n % 7 else "Open",
                "UnionLocal": f"LIUNA-{n % 300}",
                "WCCCode": str(5000 + n % 500),
                "CertifiedJob": n % 10 < 3,
                "CostRate": 28 + (n % 4000) / 100 + version,
                "LastModifiedDateTime": stamp,
                "custom": "{}",
                "note": "",
                "RefNbr": f"TE{n:08d}",
                "Status": "Released",
                "Branch": "HQ",
                "Location": f"LOC{n % 20}",
                "ShiftCode": ("Day", "Swing", "Night")[n % 3],
                "TimeCardNbr": f"TC{n // 40:07d}",
                "Week": 202601 + n % 52,
                "Description": f"Time entry {n}",
                "_acumatica_id": str(uuid.UUID(int=(n * 0x9E3779B97F4A7C15F39CC0605CEDC835 + 12345) % 2**128)),
                "_last_modified": stamp,
            }
        )
    return rows


def stage(load: Load, rows: int, duplicates: int, version: int) -> None:
    for start in range(0, rows, BATCH):
        load.write(batch_of_rows(start, min(BATCH, rows - start), version))
    for start in range(0, duplicates, BATCH):  # read again later in the run: these copies win
        load.write(batch_of_rows(start, min(BATCH, duplicates - start), version + 1))


@contextmanager
def statement_times(engine: sqlalchemy.Engine) -> Iterator[list[tuple[str, float]]]:
    """(statement's first words, wall seconds) of each statement run on the engine inside the block."""
    times: list[tuple[str, float]] = []
    started: dict[int, float] = {}

    def before(conn, cursor, statement, parameters, context, executemany) -> None:
        started[id(cursor)] = time.perf_counter()

    def after(conn, cursor, statement, parameters, context, executemany) -> None:
        times.append((" ".join(statement.split())[:60], time.perf_counter() - started.pop(id(cursor))))

    sqlalchemy.event.listen(engine, "before_cursor_execute", before)
    sqlalchemy.event.listen(engine, "after_cursor_execute", after)
    try:
        yield times
    finally:
        sqlalchemy.event.remove(engine, "before_cursor_execute", before)
        sqlalchemy.event.remove(engine, "after_cursor_execute", after)


def timed_commit(warehouse: Warehouse, label: str, rows: int, duplicates: int, version: int) -> None:
    with warehouse.load(table="time_entry", tenant="Company") as load:
        stage(load, rows, duplicates, version)
        with statement_times(warehouse.engine) as times:
            began = time.perf_counter()
            result = load.commit(SyncState("Company", "time_entry"))
            elapsed = time.perf_counter() - began
    print(
        f"{label}: commit {elapsed:.2f} s (rows {result.rows:,d}, inserted {result.inserted:,d}, "
        f"updated {result.updated:,d})"
    )
    for statement, seconds in times:
        if seconds >= 0.005:
            print(f"  {seconds:6.2f} s  {statement}")
    print(f"  {elapsed - sum(seconds for _, seconds in times):6.2f} s  the rest (COMMIT, Python, small statements)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--duplicates", type=int, default=0)
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES)
    options = parser.parse_args()
    schema = f"bench_commit_{os.getpid()}"
    admin = sqlalchemy.create_engine(options.postgres)
    with admin.begin() as connection:
        connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    try:
        with Warehouse(options.postgres, schema=schema) as warehouse:
            timed_commit(warehouse, "first load (creates the table)", options.rows, options.duplicates, 0)
            timed_commit(warehouse, "second load (merge)", options.rows, options.duplicates, 2)
    finally:
        with admin.begin() as connection:
            connection.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()


if __name__ == "__main__":
    main()
