"""Warehouse loader throughput: rows/s of merge loads of 200,000 synthetic rows into SQLite and PostgreSQL.

Each target gets a first load (all inserts) and a second load of the same rows (all updates), in
batches of 2,000. Only the loader's time is counted (write and commit), not making the rows. The
loader's own CPU time is printed beside the wall time: on a busy 2-core machine the wall time also
holds other processes' turns (PostgreSQL's work shows in wall time only).

Then the CPU per row of staging alone (converting a batch and writing it into the staging table), through
each way a batch can be handed over (``STAGING_VIAS``): ``--staging-batches`` batches of TimeEntry-like rows
(23 fields: text, a boolean, floats, two distinct aware UTC date-times, a GUID key) into a table that exists
(so nothing moves in place), one load per way, their batches taking turns so that both see the same machine.
Usage: python benchmarks/bench_warehouse.py [--rows N] [--batch N] [--staging-batches N] [--postgres URL]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import sqlalchemy

from airflow_provider_acumatica.warehouse.loader import Warehouse
from airflow_provider_acumatica.warehouse.state import SyncState

T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)
DEFAULT_POSTGRES = os.environ.get("ACUMATICA_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
WORK = ("Formwork", "Pour slab", "Rebar", "Framing", "Electrical rough-in", "Drywall", "Site cleanup")


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
        print(
            f"{name:10s} {label:22s} {rows:>8,d} rows {elapsed:7.2f} s {rows / elapsed:>9,.0f} rows/s "
            f"(loader CPU {cpu:6.2f} s; inserted {result.inserted:,d}, updated {result.updated:,d})"
        )


def time_entry_columns(start: int, count: int) -> dict[str, list[Any]]:
    """A batch held by field, as the extract hands it over: ``_last_modified`` is the LastModifiedDateTime list."""
    numbers = range(start, start + count)
    stamps = [T0 + timedelta(seconds=n * 7, milliseconds=n % 1000) for n in numbers]
    spent = [15 * (2 + n % 38) for n in numbers]
    return {
        "TimeEntryID": [str(uuid.UUID(int=(n * 0x2545F4914F6CDD1D + 7) % 2**128)) for n in numbers],
        "Employee": [f"EP{n % 1500:05d}" for n in numbers],
        "Date": [stamp - timedelta(hours=2 + n % 200) for n, stamp in zip(numbers, stamps)],
        "ProjectID": [f"21-{n % 400:04d}" for n in numbers],
        "ProjectTaskID": [f"{n % 9:02d}" for n in numbers],
        "CostCode": [f"{n % 40:02d}-100" for n in numbers],
        "EarningType": [("RG", "OT", "DT", "PTO")[n % 4] for n in numbers],
        "LaborItem": [("FOREMAN", "LABORER")[n % 2] for n in numbers],
        "TimeSpent": [float(minutes) for minutes in spent],
        "BillableTime": [float(minutes - 15 * (n % 2)) for n, minutes in zip(numbers, spent)],
        "Billable": [n % 3 != 0 for n in numbers],
        "Overtime": [0.0] * count,
        "BillableOvertime": [0.0] * count,
        "Summary": [WORK[n % len(WORK)] for n in numbers],
        "ExternalRefNbr": [f"MC-COM-{n:07d}" if n % 5 < 2 else None for n in numbers],
        "ApprovalStatus": ["Completed" if n % 7 else "Open" for n in numbers],
        "UnionLocal": [f"LIUNA-{n % 300}" for n in numbers],
        "WCCCode": [str(5000 + n % 500) for n in numbers],
        "CostRate": [28 + (n % 4000) / 100 for n in numbers],
        "LastModifiedDateTime": stamps,
        "custom": ["{}"] * count,
        "_acumatica_id": [
            str(uuid.UUID(int=(n * 0x9E3779B97F4A7C15F39CC0605CEDC835 + 12345) % 2**128)) for n in numbers
        ],
        "_last_modified": stamps,
    }


def as_rows(columns: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """The same batch as dict rows (as records arrived before the extract handed columns over)."""
    return [dict(zip(columns, values)) for values in zip(*columns.values())]


STAGING_VIAS: tuple[tuple[str, Callable[[dict[str, list[Any]]], Any], str], ...] = (
    ("write(dicts)", as_rows, "write"),
    ("write_columns", dict, "write_columns"),
)
"""Each way of handing a batch to a load: its label, how the batch is made ready (not timed), the method timed."""


def bench_staging(name: str, warehouse: Warehouse, batches: int, batch: int) -> None:
    """CPU seconds per row of the staging calls alone, each way side by side (their batches take turns)."""
    table, key = "staging_bench", ["TimeEntryID"]
    with warehouse.load(table=table, tenant="Company", key_fields=key) as first:
        first.write(as_rows(time_entry_columns(0, batch)))
        first.commit(SyncState("Company", table))
    cpu = dict.fromkeys((label for label, _, _ in STAGING_VIAS), 0.0)
    with ExitStack() as stack:  # left without committing: the stages go with their sessions
        loads = [
            stack.enter_context(warehouse.load(table=table, tenant="Company", key_fields=key)) for _ in STAGING_VIAS
        ]
        for start in range(0, batches * batch, batch):
            for load, (label, ready, method) in zip(loads, STAGING_VIAS):
                handed, write = ready(time_entry_columns(start, batch)), getattr(load, method)
                began = time.process_time()
                write(handed)
                cpu[label] += time.process_time() - began
    rows = batches * batch
    print(
        f"{name:10s} staging CPU per row ({rows:,d} rows in batches of {batch:,d}): "
        + ", ".join(f"{label} {seconds / rows * 1e6:5.2f} us" for label, seconds in cpu.items())
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000, help="rows of the throughput bench (0: none)")
    parser.add_argument("--batch", type=int, default=2_000)
    parser.add_argument("--staging-batches", type=int, default=200, help="batches of the staging CPU bench (0: none)")
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES)
    options = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder, Warehouse(f"sqlite:///{folder}/bench.db") as warehouse:
        if options.rows:
            bench("SQLite", warehouse, options.rows, options.batch)
        if options.staging_batches:
            bench_staging("SQLite", warehouse, options.staging_batches, options.batch)

    schema = f"bench_{uuid.uuid4().hex[:8]}"
    with Warehouse(options.postgres, schema=schema) as warehouse:
        with warehouse.engine.begin() as connection:
            connection.execute(sqlalchemy.schema.CreateSchema(schema))
        try:
            if options.rows:
                bench("PostgreSQL", warehouse, options.rows, options.batch)
            if options.staging_batches:
                bench_staging("PostgreSQL", warehouse, options.staging_batches, options.batch)
        finally:
            with warehouse.engine.begin() as connection:
                connection.execute(sqlalchemy.schema.DropSchema(schema, cascade=True))


if __name__ == "__main__":
    main()
