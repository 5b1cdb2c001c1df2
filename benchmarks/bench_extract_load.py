"""End-to-end extract-load throughput: AcumaticaToSqlOperator vs the raw floor, memory, and licence use.

For each size (default 200,000 and 1,000,000 TimeEntry rows) a sandbox runs in its own process; in the same
run we time (1) the raw floor: a bare requests loop fetching and JSON-decoding the same 2,000-record pages,
and (2) the operator's initial load into SQLite and into PostgreSQL, each in a child process that reports
its own peak RSS and that of its writer process (a SQLite load's warehouse side runs in a child of its own; the
two run side by side, so their peaks are added); the raw floor is timed again after each load, and each load is
compared with the floors just before and after it. The sandbox caches each record's rendering per $select, so
both the full records and the timestamp-only variant the operator probes with are rendered once before anything
is timed: neither side pays the sandbox's first render. Then, with --latency-ms 500 and a licence of 3 concurrent requests, a large
initial load (--latency-rows, default 200,000) is timed against pages x 0.5 s / 3, and the sandbox's peak
concurrency is read. Sign-in and sign-out are round trips too, so the fixed part shrinks as the load grows.
Targets (2 cores): PostgreSQL >= 20,000 rows/s; operator <= 2x the raw floor's time; peak RSS (operator + writer)
at 1M within 50 MB of that at 200k; the latency run within 1.25x of the ideal and using all 3 requests.
Run: .venv/bin/python benchmarks/bench_extract_load.py [--sizes 200000,1000000] [--latency-rows N] [--postgres URL]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import requests
import sqlalchemy

from airflow_provider_acumatica.sandbox import SANDBOX_PASSWORD, SANDBOX_USER, sandbox_process

BATCH = 2000
TENANT = "Company"


def sandbox(rows: int, *extra: str):
    """A one-tenant sandbox in its own process (so it does not share our GIL); yields its URL."""
    return sandbox_process("--tenants", TENANT, "--rows", str(rows), *extra)


def signed_in(url: str) -> requests.Session:
    session = requests.Session()
    login = {"name": SANDBOX_USER, "password": SANDBOX_PASSWORD, "tenant": TENANT}
    session.post(f"{url}/entity/auth/login", json=login).raise_for_status()
    return session


def raw_floor(url: str, select: str | None = None, page: int = BATCH) -> tuple[int, float]:
    """A bare loop: every 2,000-record page fetched and JSON-decoded, one after another."""
    session = signed_in(url)
    started, total = time.perf_counter(), 0
    while True:
        params = {"$top": page, "$skip": total, **({"$select": select} if select else {})}
        response = session.get(f"{url}/entity/Default/24.200.001/TimeEntry", params=params)
        response.raise_for_status()
        count = len(response.json())
        total += count
        if count < page:
            break
    elapsed = time.perf_counter() - started
    session.post(f"{url}/entity/auth/logout")
    return total, elapsed


def warm_up(url: str) -> None:
    """The sandbox generates and renders its data on first use: render the full records and the
    timestamp-only variant the operator probes with (in large pages: few round trips under latency), and
    build its sorted index of the timestamps, which a database has ready but the sandbox sorts on the first
    filter by time (about 2 s at 1,000,000 rows)."""
    raw_floor(url, page=50_000)
    raw_floor(url, select="LastModifiedDateTime", page=50_000)
    time_filter = "LastModifiedDateTime lt datetimeoffset'2100-01-01T00:00:00Z'"
    session = signed_in(url)
    session.get(
        f"{url}/entity/Default/24.200.001/TimeEntry", params={"$filter": time_filter, "$top": 1}
    ).raise_for_status()
    session.post(f"{url}/entity/auth/logout")


def load_in_child(url: str, warehouse_url: str, schema: str | None, concurrency: int = 3) -> dict:
    """The operator's initial load in a fresh process, which reports rows, seconds and its peak RSS."""
    connection = {
        "conn_type": "acumatica",
        "host": url,
        "login": SANDBOX_USER,
        "password": SANDBOX_PASSWORD,
        "extra": {"tenant": TENANT, "max_concurrent_requests": concurrency},
    }
    environment = {**os.environ, "AIRFLOW_CONN_BENCH_ACUMATICA": json.dumps(connection)}
    command = [sys.executable, __file__, "--child", warehouse_url, schema or ""]
    output = subprocess.run(command, env=environment, capture_output=True, text=True, check=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def child(warehouse_url: str, schema: str) -> None:
    import logging

    logging.disable(logging.INFO)
    from airflow_provider_acumatica.operators import acumatica_to_sql
    from airflow_provider_acumatica.warehouse.writer import WriterLoad, load_in_writer_process

    loads = []

    def observed(*arguments, **keywords):  # to read the writer process's own peak memory afterwards (SQLite only)
        loads.append(load_in_writer_process(*arguments, **keywords))
        return loads[-1]

    acumatica_to_sql.load_in_writer_process = observed
    operator = acumatica_to_sql.AcumaticaToSqlOperator(
        task_id="bench",
        table="TimeEntry",
        acumatica_conn_id="bench_acumatica",
        sql_url=warehouse_url,
        target_schema=schema or None,
        batch_size=BATCH,
    )
    started = time.perf_counter()
    summary = operator.execute(context={})
    elapsed = time.perf_counter() - started
    print(
        json.dumps(
            {
                "rows": summary["rows"],
                "seconds": elapsed,
                "peak_rss_mb": peak_rss_mb(),
                "writer_peak_rss_mb": sum(load.use.peak_memory_mb for load in loads if isinstance(load, WriterLoad)),
            }
        )
    )


def peak_rss_mb() -> float:
    """This process's own peak RSS. Linux's ru_maxrss also counts the parent's RSS at the fork before exec,
    so it would charge the child with what the benchmark's parent holds; VmHWM is the child's memory alone."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def total_peak_mb(figures: dict) -> float:
    """Operator and writer peaks added: both run side by side for the whole load."""
    return figures["peak_rss_mb"] + figures["writer_peak_rss_mb"]


def fresh_postgres_schema(url: str) -> str | None:
    schema = f"bench_{os.getpid()}_{int(time.time())}"
    engine = sqlalchemy.create_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(sqlalchemy.text(f'create schema "{schema}"'))
    except sqlalchemy.exc.OperationalError:
        return None
    finally:
        engine.dispose()
    return schema


def drop_postgres_schema(url: str, schema: str) -> None:
    engine = sqlalchemy.create_engine(url)
    with engine.begin() as connection:
        connection.execute(sqlalchemy.text(f'drop schema "{schema}" cascade'))
    engine.dispose()


def measure_size(rows: int, postgres_url: str, workdir: str) -> dict:
    """Each load's ratio is to the raw floor measured just before and just after it (their mean): this
    machine's speed drifts by 20% and more within minutes, and a ratio to a floor taken earlier would carry it."""
    results, floors = {}, []
    with sandbox(rows) as url:
        warm_up(url)
        count, seconds = raw_floor(url)
        floors.append(seconds)
        loads = [("sqlite", f"sqlite:///{workdir}/bench_{rows}.db", None)]
        schema = fresh_postgres_schema(postgres_url)
        if schema:
            loads.append(("postgresql", postgres_url, schema))
        try:
            for name, warehouse_url, target_schema in loads:
                results[name] = load_in_child(url, warehouse_url, target_schema)
                floors.append(raw_floor(url)[1])
                results[name]["floor"] = (floors[-2] + floors[-1]) / 2
        finally:
            if schema:
                drop_postgres_schema(postgres_url, schema)
    print(
        f"{rows:>9,} rows  {'raw':>10}: {count:>9,} rows in {sum(floors) / len(floors):7.2f} s = "
        f"{count * len(floors) / sum(floors):>8,.0f} rows/s   (mean of {len(floors)}: "
        f"{', '.join(f'{seconds:.2f}' for seconds in floors)} s)"
    )
    for name, figures in results.items():
        rate = figures["rows"] / figures["seconds"]
        print(
            f"{rows:>9,} rows  {name:>10}: {figures['rows']:>9,} rows in {figures['seconds']:7.2f} s = "
            f"{rate:>8,.0f} rows/s   {figures['seconds'] / figures['floor']:4.2f}x the raw floor's time   "
            f"peak RSS {figures['peak_rss_mb']:.0f} MB + writer {figures['writer_peak_rss_mb']:.0f} MB"
        )
    return results


def measure_latency(postgres_url: str, workdir: str, rows: int) -> None:
    with sandbox(rows, "--latency-ms", "500", "--max-concurrent", "3") as url:
        warm_up(url)
        requests.post(f"{url}/_sandbox/counters/reset").raise_for_status()
        figures = load_in_child(url, f"sqlite:///{workdir}/bench_latency_{rows}.db", None, concurrency=3)
        counters = requests.get(f"{url}/_sandbox/counters").json()
    pages = -(-rows // BATCH)
    ideal = pages * 0.5 / 3
    print(
        f"latency 500 ms, licence of 3: {figures['rows']:,} rows in {figures['seconds']:.1f} s; ideal "
        f"{pages} pages x 0.5 s / 3 = {ideal:.1f} s -> {figures['seconds'] / ideal:.2f}x; "
        f"peak concurrency {counters['peak_concurrency']}, 429s {counters['throttled_429']}, "
        f"requests {counters['requests']}"
    )


def main() -> None:
    cli = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_argument("--sizes", default="200000,1000000")
    cli.add_argument("--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    cli.add_argument("--latency-rows", type=int, default=200_000, help="0 skips the latency run")
    cli.add_argument("--child", nargs=2, metavar=("WAREHOUSE_URL", "SCHEMA"), help=argparse.SUPPRESS)
    arguments = cli.parse_args()
    if arguments.child:
        child(*arguments.child)
        return
    import tempfile

    with tempfile.TemporaryDirectory() as workdir:
        peaks = {}
        for rows in (int(size) for size in arguments.sizes.split(",")):
            peaks[rows] = measure_size(rows, arguments.postgres, workdir)
        sizes = sorted(peaks)
        if len(sizes) > 1:
            for name in ("sqlite", "postgresql"):
                if all(name in peaks[size] for size in sizes):
                    growth = total_peak_mb(peaks[sizes[-1]][name]) - total_peak_mb(peaks[sizes[0]][name])
                    print(
                        f"peak RSS growth {sizes[0]:,} -> {sizes[-1]:,} rows ({name}, operator + writer): "
                        f"{growth:+.0f} MB"
                    )
        if arguments.latency_rows:
            measure_latency(arguments.postgres, workdir, arguments.latency_rows)


if __name__ == "__main__":
    main()
