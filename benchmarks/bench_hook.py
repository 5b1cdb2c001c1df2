"""Streaming speed: records/s through AcumaticaHook.iter_entity vs a bare requests loop, same pages, same run.

Prints both figures and the ratio (target: the hook at least 0.8x the bare loop). The sandbox runs in a
separate process so that its JSON rendering does not share the GIL with the readers being measured.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

import requests

ROWS = int(os.environ.get("BENCH_HOOK_ROWS", "200000"))
PAGE = 1000
SERVE = """
import sys
from airflow_provider_acumatica.sandbox import SandboxSettings, start_sandbox
sandbox = start_sandbox(SandboxSettings(tenants=("Company",), rows=int(sys.argv[1])))
print(sandbox.url, flush=True)
sys.stdin.read()
"""


def bare_loop(url: str) -> int:
    from airflow_provider_acumatica.sandbox import SANDBOX_PASSWORD, SANDBOX_USER

    session = requests.Session()
    session.post(
        f"{url}/entity/auth/login",
        json={"name": SANDBOX_USER, "password": SANDBOX_PASSWORD, "tenant": "Company"},
        timeout=60,
    ).raise_for_status()
    count, skip = 0, 0
    try:
        while True:
            response = session.get(
                f"{url}/entity/Default/24.200.001/TimeEntry",
                params={"$top": str(PAGE), "$skip": str(skip)},
                timeout=120,
            )
            response.raise_for_status()
            page = json.loads(response.content)
            count += len(page)
            if len(page) < PAGE:
                return count
            skip += PAGE
    finally:
        session.post(f"{url}/entity/auth/logout", timeout=60)


def hook_loop(url: str) -> int:
    from airflow_provider_acumatica.hooks.acumatica import AcumaticaHook

    with AcumaticaHook("acumatica_bench") as hook:
        return sum(1 for _record in hook.iter_entity("TimeEntry"))


def define_connection(url: str) -> None:
    """The Airflow connection, defined (and Airflow imported) before anything is timed."""
    from airflow.sdk import Connection

    from airflow_provider_acumatica.hooks.acumatica import AcumaticaHook  # noqa: F401 - import cost untimed
    from airflow_provider_acumatica.sandbox import SANDBOX_PASSWORD, SANDBOX_USER

    os.environ["AIRFLOW_CONN_ACUMATICA_BENCH"] = Connection(
        conn_id="acumatica_bench",
        conn_type="acumatica",
        host=url,
        login=SANDBOX_USER,
        password=SANDBOX_PASSWORD,
        extra=json.dumps({"tenant": "Company", "page_size": PAGE, "profile_timezone": "America/New_York"}),
    ).as_json()


def measure(name: str, loop, url: str) -> float:
    started = time.perf_counter()
    count = loop(url)
    seconds = time.perf_counter() - started
    assert count == ROWS, f"{name} read {count} records, expected {ROWS}"
    rate = count / seconds
    print(f"{name:>12}: {count} records in {seconds:.2f} s = {rate:,.0f} records/s", flush=True)
    return rate


def main() -> None:
    os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="bench-hook-"))
    server = subprocess.Popen(
        [sys.executable, "-c", SERVE, str(ROWS)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        url = server.stdout.readline().strip()
        define_connection(url)
        measure("warm-up", bare_loop, url)  # the sandbox renders each page once, then serves it warm
        rates = {"bare loop": [], "hook": []}
        for _round in range(2):  # interleaved, best of two each, so that neither profits from the order
            for name, loop in (("bare loop", bare_loop), ("hook", hook_loop)):
                rates[name].append(measure(name, loop, url))
        bare, hook = max(rates["bare loop"]), max(rates["hook"])
        print(f"best: bare loop {bare:,.0f} records/s, hook {hook:,.0f} records/s")
        print(f"ratio hook/bare: {hook / bare:.2f}x (target >= 0.8x)")
    finally:
        server.stdin.close()
        server.wait(timeout=60)


if __name__ == "__main__":
    main()
