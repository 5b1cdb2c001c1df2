"""Time the parse of dags/acumatica_sync.py for a config of 20 tenants x 30 tables (target: under 1 s).

Parses through Airflow's DagBag, as the DAG processor does; prints the seconds of the cold first
parse (imports included) and the median of the warm re-parses.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

import yaml

TENANTS = 20
EXTRA_TABLES = 14  # the construction catalog has 16 tables: 30 per tenant
REPEATS = 5
SYNC_FILE = Path(__file__).resolve().parents[1] / "dags" / "acumatica_sync.py"


def write_config(directory: Path) -> Path:
    extra = [{"name": f"GI_Report{index}", "source": "gi", "mode": "full"} for index in range(EXTRA_TABLES)]
    tenants = [
        {"name": f"tenant{i}", "acumatica_conn_id": f"acumatica_tenant{i}", "tables": ["construction", *extra]}
        for i in range(TENANTS)
    ]
    tenants[0]["tables"].append({"name": "TimeEntry", "schedule": "*/15 * * * *"})
    path = directory / "acumatica.yaml"
    path.write_text(yaml.safe_dump({"tenants": tenants}), encoding="utf-8")
    return path


def parse_seconds() -> tuple[float, int]:
    from airflow.dag_processing.dagbag import DagBag

    started = time.perf_counter()
    bag = DagBag(dag_folder=SYNC_FILE, bundle_path=SYNC_FILE.parent)
    elapsed = time.perf_counter() - started
    if bag.import_errors:
        raise SystemExit(f"import errors: {bag.import_errors}")
    return elapsed, len(bag.dag_ids)


def main() -> None:
    with tempfile.TemporaryDirectory() as directory:
        os.environ.setdefault("AIRFLOW_HOME", directory)
        os.environ["ACUMATICA_DAGS_CONFIG"] = str(write_config(Path(directory)))
        cold, dags = parse_seconds()
        warm = statistics.median(parse_seconds()[0] for _ in range(REPEATS))
    print(f"bench_dag_parse: {TENANTS} tenants x {16 + EXTRA_TABLES} tables -> {dags} DAGs")
    print(f"  first parse (with imports): {cold:.3f} s")
    print(f"  re-parse, median of {REPEATS}: {warm:.3f} s (target < 1 s)")


if __name__ == "__main__":
    main()
