"""The DAG bundle: per-tenant sync DAGs built from one YAML config.

``config`` parses and validates the file, ``catalog`` holds the prebuilt table lists, ``planning``
turns a run and its trigger form into load arguments, ``factory`` builds the DAGs, ``assets`` names
and emits the tables' Assets, ``pools`` creates the tenants' pools (``python -m
airflow_provider_acumatica.bundle pools``). ``dags/acumatica_sync.py`` calls
:func:`airflow_provider_acumatica.bundle.factory.build_dags_from_file`.
"""

from __future__ import annotations

from airflow_provider_acumatica.bundle.config import (
    BundleConfig,
    ConfigError,
    TableConfig,
    TenantConfig,
    load_config,
    parse_config,
)

__all__ = ["BundleConfig", "ConfigError", "TableConfig", "TenantConfig", "load_config", "parse_config"]
