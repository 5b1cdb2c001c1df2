"""The per-tenant Airflow pools, sized to each licence's concurrent requests, created from the config.

DAG parsing may do no I/O, so the DAGs cannot create their pools. Run
``python -m airflow_provider_acumatica.bundle pools`` (once, and after changing ``pool_slots``):
it runs ``airflow pools set <pool> <slots> <description>`` for every tenant. Airflow 3.3 never
schedules a task whose pool does not exist: the scheduler logs "Tasks using non-existent pool ...
will not be scheduled" and the task waits in state scheduled; the DAG processor shows a DAG warning
"references non-existent pools".
"""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Callable

from airflow_provider_acumatica.bundle.config import BundleConfig, TenantConfig


def pool_command(tenant: TenantConfig, airflow: str = "airflow") -> list[str]:
    """The ``airflow pools set`` command that creates or resizes one tenant's pool."""
    description = f"Acumatica tenant {tenant.name}: concurrent requests of its licence"
    return [airflow, "pools", "set", tenant.pool, str(tenant.pool_slots), description]


def sync_pools(
    config: BundleConfig,
    *,
    airflow: str = "airflow",
    dry_run: bool = False,
    echo: Callable[[str], None] = print,
) -> list[list[str]]:
    """Create or resize every tenant's pool with the Airflow CLI; echo each command; return them."""
    commands = [pool_command(tenant, airflow) for tenant in config.tenants]
    for command in commands:
        echo(shlex.join(command))
        if not dry_run:
            subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return commands
