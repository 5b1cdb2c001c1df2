"""Acumatica sync DAGs, one family per tenant, built from the YAML config of this bundle.

The config is the file named by the environment variable ACUMATICA_DAGS_CONFIG, else acumatica.yaml
next to this file. A mistake in it raises here, so Airflow shows it as this file's DAG import error.
"""

from __future__ import annotations

import os
from pathlib import Path

from airflow_provider_acumatica.bundle.factory import build_dags_from_file

CONFIG_PATH = Path(os.environ.get("ACUMATICA_DAGS_CONFIG") or Path(__file__).with_name("acumatica.yaml"))

globals().update(build_dags_from_file(CONFIG_PATH))
