"""Acumatica payroll DAGs, one per tenant with a ``payroll`` block, built from the YAML config of this bundle.

The config is the file named by the environment variable ACUMATICA_DAGS_CONFIG, else acumatica.yaml next to
this file (the one the sync DAGs read). A mistake in it raises here, so Airflow shows it as an import error.
"""

from __future__ import annotations

import os
from pathlib import Path

from airflow_provider_acumatica.bundle.config import load_config
from airflow_provider_acumatica.bundle.payroll import build_payroll_dags

CONFIG_PATH = Path(os.environ.get("ACUMATICA_DAGS_CONFIG") or Path(__file__).with_name("acumatica.yaml"))

globals().update(build_payroll_dags(load_config(CONFIG_PATH)))
