"""Warehouse loader throughput: rows/s of merge loads of 200,000 synthetic rows into SQLite and PostgreSQL.

Each target gets a first load (all inserts) and a second load of the same rows (all updates), in
batches of 2,000. Only the loader's time is counted (write and commit), not making the rows. The
loader's own CPU time is printed beside the wall time: on a busy 2-core machine the wall time also
holds other processes' turns (PostgreSQL's work shows in wall time only).
Usage: python benchmarks/bench_warehouse.py [--rows N] [--batch N] [--postgres URL]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import sqlalchemy

from airflow_provider_acumatica.warehouse.loader import Warehouse
from airflow_provider_acumatica.warehouse.state import SyncState

T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)
DEFAULT_POSTGRES = os.environ.get("ACUMATICA_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def batch_of_rows(start: int, count: int, version: int) -> list[dict]:
    """15 columns: key, 10 typed fields, a JSON field, and the system fields."""
    return [
        {
            "TimeEntryID": f"TE{n:08d}",
            "Employee": f"EP{n % 500:05d}",
            "ProjectID": f"PRJ{n % 97}",
            "ProjectTaskID": f"{n % 13:02d}",
            "CostCode": f"{n % 40:03d}-000",
            "TimeSpent": 60 + n % 480 + version,
            "CostRate": Decimal(n % 9000) / 100 + version,
            "Billable": n % 3 == 0,
            "Date": T0 + timedelta(minutes=n),
            "DateOnly": date(2024, 1, 1) + timedelta(days=n % 365),
            "Hours": (n % 480) / 60.0,
            "Summary": f"Work item {n} on site",
            "custom": {"Document": {"UsrShift": {"type": "CustomStringField", "value": f"S{n % 3}"}}},
            "_acumatica_id": str(uuid.UUID(int=n)),
            "_last_modified": T0 + timedelta(seconds=n + version),
        }
        for n in range(start, start + count)
    ]


def timed_load(warehouse: Warehouse, rows: int, batch: int, version: int) -> tuple[float, float, object]:
    """Wall and CPU seconds (this process) spent in the loader, and the load's result."""
    elapsed = cpu = 0.0
    with warehouse.load(table="time_entry", tenant="Company", key_fields=["TimeEntryID"]) as load:
        for start in range(0, rows, batch):
            chunk = batch_of_rows(start, min(batch, rows - start), version)
            began, began_cpu = time.perf_counter(), time.process_time()
            load.write(chunk)
            elapsed, cpu = elapsed + time.perf_counter() - began, cpu + time.process_time() - began_cpu
        began, began_cpu = time.perf_counter(), time.process_time()
        result = load.commit(SyncState("Company", "time_entry", watermark=T0, rows=rows, mode="incremental"))
        elapsed, cpu = elapsed + time.perf_counter() - began, cpu + time.process_time() - began_cpu
    return elapsed, cpu, result


def bench(name: str, warehouse: Warehouse, rows: int, batch: int) -> None:
    for label, version in (("first load (inserts)", 0), ("second load (updates)", 1)):
        elapsed, cpu, result = timed_load(warehouse, rows, batch, version)
        print(f"{name:10s} {label:22s} {rows:>8,d} rows {elapsed:7.2f} s {rows / elapsed:>9,.0f} rows/s "
              f"(loader CPU {cpu:6.2f} s; inserted {result.inserted:,d}, updated {result.updated:,d})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=2_000)
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES)
    options = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder, Warehouse(f"sqlite:///{folder}/bench.db") as warehouse:
        bench("SQLite", warehouse, options.rows, options.batch)

    schema = f"bench_{uuid.uuid4().hex[:8]}"
    with Warehouse(options.postgres, schema=schema) as warehouse:
        with warehouse.engine.begin() as connection:
            connection.execute(sqlalchemy.schema.CreateSchema(schema))
        try:
            bench("PostgreSQL", warehouse, options.rows, options.batch)
        finally:
            with warehouse.engine.begin() as connection:
                connection.execute(sqlalchemy.schema.DropSchema(schema, cascade=True))


if __name__ == "__main__":
    main()
