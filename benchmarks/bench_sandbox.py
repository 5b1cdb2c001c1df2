"""Sandbox throughput: records/s served for 1,000-record TimeEntry pages over real HTTP (target >= 50,000/s).

Reads every page of a 200,000-row table with a plain `requests` loop, twice: the first pass renders each
record (cold), the second serves cached fragments (warm). Also times data generation.
Run: .venv/bin/python benchmarks/bench_sandbox.py [--rows N]
"""

from __future__ import annotations

import argparse
import time

import requests

from airflow_provider_acumatica.sandbox import SANDBOX_PASSWORD, SANDBOX_USER, SandboxSettings, start_sandbox

PAGE = 1000


def read_all(session: requests.Session, url: str, decode: bool) -> int:
    """Page through TimeEntry with $top/$skip until a short page; returns the record count."""
    total = 0
    while True:
        response = session.get(url, params={"$top": PAGE, "$skip": total})
        response.raise_for_status()
        count = len(response.json()) if decode else response.content.count(b'"rowNumber":')
        total += count
        if count < PAGE:
            return total


def main() -> None:
    cli = argparse.ArgumentParser(description=__doc__)
    cli.add_argument("--rows", type=int, default=200_000)
    rows = cli.parse_args().rows
    with start_sandbox(SandboxSettings(tenants=("Company",), rows=rows)) as sandbox:
        started = time.perf_counter()
        sandbox.app.store.table("Company", "TimeEntry")
        print(f"generate {rows:,} TimeEntry rows: {time.perf_counter() - started:.2f} s")
        session = requests.Session()
        login = {"name": SANDBOX_USER, "password": SANDBOX_PASSWORD, "tenant": "Company"}
        session.post(f"{sandbox.url}/entity/auth/login", json=login).raise_for_status()
        url = f"{sandbox.url}/entity/Default/24.200.001/TimeEntry"
        for label, decode in (("cold, bytes only", False), ("warm, bytes only", False), ("warm, json decoded", True)):
            started = time.perf_counter()
            count = read_all(session, url, decode)
            elapsed = time.perf_counter() - started
            print(f"{label:>20}: {count:,} records in {elapsed:.2f} s = {count / elapsed:,.0f} records/s")
        session.post(f"{sandbox.url}/entity/auth/logout")


if __name__ == "__main__":
    main()
