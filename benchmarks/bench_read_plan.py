"""The read plan against an instance that charges server work per record: time to the licence's physical limit,
records rendered per row loaded, sessions and requests; and, without server cost, the time to the raw floor.

A sandbox charging 0.5 ms per record of a list answer (while the request holds its slot) with a licence of 3
concurrent requests runs in its own process. For each size (default 20,000 and 200,000 TimeEntry rows) the
operator's initial load into SQLite is timed against rows x 0.5 ms / 3 (no reader can be faster: the server's
work alone takes that long). Each operator run is a process of its own, as Airflow runs a task, so what one run
learns of the instance reaches the next only through the warehouse. Then 1,000 rows change, spread over the hour
before (as between two hourly runs), and an incremental run is counted (sign-ins, requests, records rendered);
then a quiet run (nothing changed), and a run after a burst of 1,000 changes at one instant followed by a quiet
run. Finally the same initial load
without server cost is compared with a bare sequential loop fetching the same pages (the raw floor), measured
just before and after it. Targets: <= 1.3x the physical limit, <= 1.2 records rendered per row, one sign-in
for the incremental run, <= 3 requests for a quiet run, <= 2x the raw floor.
Run: .venv/bin/python benchmarks/bench_read_plan.py [--sizes 20000,200000] [--floor-rows 200000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

import requests
from bench_extract_load import BATCH, load_in_child, raw_floor, sandbox, signed_in, warm_up

MS_PER_RECORD = 0.5
LICENCE = 3


def counted(url: str) -> dict:
    return requests.get(f"{url}/_sandbox/counters").json()


def reset(url: str) -> None:
    requests.post(f"{url}/_sandbox/counters/reset").raise_for_status()


def run(url: str, warehouse: str) -> dict:
    """One operator run in a child process, with the sandbox's counts of what it cost the server."""
    reset(url)
    figures = load_in_child(url, warehouse, None, concurrency=LICENCE)
    return {**figures, **counted(url)}


def parallel_floor(url: str, rows: int) -> float:
    """What this machine and sandbox allow now: the table's pages known in advance ($skip, no exactness), fetched
    and JSON-decoded by as many threads as the licence allows, one session each. No reader can beat it."""
    sessions = [signed_in(url) for _ in range(LICENCE)]

    def page(number: int) -> int:
        session = sessions[number % LICENCE]
        answer = session.get(
            f"{url}/entity/Default/24.200.001/TimeEntry", params={"$top": BATCH, "$skip": number * BATCH}
        )
        answer.raise_for_status()
        return len(answer.json())

    started = time.perf_counter()
    with ThreadPoolExecutor(LICENCE) as pool:
        assert sum(pool.map(page, range(-(-rows // BATCH)))) == rows
    elapsed = time.perf_counter() - started
    for session in sessions:
        session.post(f"{url}/entity/auth/logout")
    return elapsed


def change_spread_over_the_hour(url: str, rows: int) -> None:
    """`rows` records changed, a sixtieth of them per minute of the last hour (by the sandbox clock)."""
    now = requests.get(f"{url}/_sandbox/clock").json()["now"]
    end = datetime.fromisoformat(now.replace("Z", "+00:00"))
    for minute in range(60):
        stamp = (end - timedelta(minutes=59 - minute)).isoformat()
        count = rows * (minute + 1) // 60 - rows * minute // 60
        requests.post(
            f"{url}/_sandbox/tenants/Company/entities/TimeEntry/update", json={"random": count, "timestamp": stamp}
        ).raise_for_status()


def change_at_once(url: str, rows: int) -> None:
    requests.post(f"{url}/_sandbox/tenants/Company/entities/TimeEntry/update", json={"random": rows}).raise_for_status()


def line(label: str, figures: dict, rows_expected: int | None = None) -> str:
    rendered = figures["records_rendered"] / max(1, figures["rows"])
    return (
        f"  {label:<34} {figures['rows']:>8,} rows {figures['seconds']:7.2f} s  requests {figures['requests']:>4}  "
        f"sign-ins {figures['logins']}  records rendered {figures['records_rendered']:>8,} "
        f"({rendered:.2f} per row)"
    )


def measure_with_server_cost(rows: int, workdir: str) -> None:
    limit = rows * MS_PER_RECORD / 1000 / LICENCE
    with sandbox(rows, "--ms-per-record", str(MS_PER_RECORD), "--max-concurrent", str(LICENCE)) as url:
        warehouse = f"sqlite:///{workdir}/cost_{rows}.db"
        floor_before = parallel_floor(url, rows)
        initial = run(url, warehouse)
        floor_after = parallel_floor(url, rows)
        change_spread_over_the_hour(url, 1000)
        incremental = run(url, warehouse)
        quiet = run(url, warehouse)
        change_at_once(url, 1000)
        burst = run(url, warehouse)
        quiet_after_burst = run(url, warehouse)
    floor = (floor_before + floor_after) / 2
    print(
        f"{rows:,} rows, {MS_PER_RECORD} ms per record, licence of {LICENCE}: physical limit {limit:.2f} s; "
        f"pages known in advance, {LICENCE} threads: {floor:.2f} s = {floor / limit:.2f}x "
        f"({floor_before:.2f}, {floor_after:.2f}); a quiet run's fixed cost {quiet['seconds']:.2f} s"
    )
    print(
        line("initial load", initial) + f"  {initial['seconds'] / limit:.2f}x the physical limit, "
        f"{initial['seconds'] / floor:.2f}x the pages known in advance, peak concurrency "
        f"{initial['peak_concurrency']}, 429s {initial['throttled_429']}"
    )
    print(line("incremental, 1,000 changed in 1 h", incremental))
    print(line("quiet run", quiet))
    print(line("incremental, 1,000 changed at once", burst))
    print(line("quiet run after that burst", quiet_after_burst))


def measure_without_server_cost(rows: int, workdir: str) -> None:
    with sandbox(rows) as url:
        warm_up(url)
        count, before = raw_floor(url)
        figures = load_in_child(url, f"sqlite:///{workdir}/free_{rows}.db", None, concurrency=LICENCE)
        after = raw_floor(url)[1]
    floor = (before + after) / 2
    print(
        f"{rows:,} rows without server cost: raw floor {floor:.2f} s ({before:.2f}, {after:.2f}); operator (SQLite) "
        f"{figures['seconds']:.2f} s = {figures['seconds'] / floor:.2f}x the raw floor; peak RSS "
        f"{figures['peak_rss_mb']:.0f} MB + writer {figures['writer_peak_rss_mb']:.0f} MB"
    )


def main() -> None:
    cli = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_argument("--sizes", default="20000,200000")
    cli.add_argument("--floor-rows", type=int, default=200_000, help="0 skips the run without server cost")
    arguments = cli.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        for rows in (int(size) for size in arguments.sizes.split(",")):
            measure_with_server_cost(rows, workdir)
        if arguments.floor_rows:
            measure_without_server_cost(arguments.floor_rows, workdir)


if __name__ == "__main__":
    main()
