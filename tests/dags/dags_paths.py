"""Where the tests find the bundle's DAG files, and how the sandbox names the config's tenants."""

from __future__ import annotations

from pathlib import Path

DAGS_FOLDER = Path(__file__).resolve().parents[2] / "dags"
SYNC_FILE = DAGS_FOLDER / "acumatica_sync.py"
PAYROLL_FILE = DAGS_FOLDER / "acumatica_payroll.py"
SANDBOX_TENANTS = {"company": "Company", "subsidiary": "Subsidiary"}
