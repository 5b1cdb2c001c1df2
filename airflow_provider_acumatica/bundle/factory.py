"""Builds the per-tenant sync DAGs from a resolved config; parsing them does no network or database I/O.

One DAG per tenant, ``acumatica_sync__<tenant>``, on the tenant's schedule. Tables given their own
schedule go to one more DAG per distinct schedule, ``acumatica_sync__<tenant>__<schedule slug>``
(``*/15 * * * *`` -> ``x-15_x_x_x_x``): a DAG has one timetable, and its data intervals are the
windows its backfills reload. All DAGs of a tenant share the tenant's pool, and each load task takes
as many of its slots as it may have requests in flight, so the licence's concurrent-request limit holds
across them (docs/adr/0007-one-licence-per-instance.md). Each DAG has a task group per mode (``incremental``,
``full``) with a ``plan`` task (reads the trigger form, no I/O) and ONE mapped load task.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterable, Sequence
from typing import Any

import pendulum
from airflow.sdk import DAG, CronDataIntervalTimetable, Param, TaskGroup, get_current_context, task

from airflow_provider_acumatica.bundle.assets import emit_table_asset, table_asset_uri, tenant_alias
from airflow_provider_acumatica.bundle.config import (
    BundleConfig,
    TableConfig,
    TenantConfig,
    load_config,
)
from airflow_provider_acumatica.bundle.planning import plan_loads
from airflow_provider_acumatica.extract.plan import MODES
from airflow_provider_acumatica.operators.acumatica_to_sql import AcumaticaToSqlOperator

DAG_ID_PREFIX = "acumatica_sync__"
_SLUG_CHARACTERS = {"*": "x", "/": "-", ",": ".", " ": "_", "?": "x"}


def build_dags_from_file(path: str) -> dict[str, DAG]:
    """Load the config file and build its DAGs, keyed by DAG id (ready for ``globals().update``)."""
    return build_dags(load_config(path))


def build_dags(config: BundleConfig) -> dict[str, DAG]:
    """Every tenant's DAGs, keyed by DAG id."""
    dags: dict[str, DAG] = {}
    for tenant in config.tenants:
        for schedule, tables in _tables_by_schedule(tenant):
            dag = _tenant_dag(config, tenant, schedule, tables)
            dags[dag.dag_id] = dag
    return dags


def dag_id(tenant: str, schedule: str | None = None) -> str:
    """``acumatica_sync__<tenant>``, or with ``__<slug>`` for tables on a schedule of their own."""
    return DAG_ID_PREFIX + tenant + (f"__{schedule_slug(schedule)}" if schedule else "")


def schedule_slug(schedule: str) -> str:
    """A readable DAG-id-safe form of a cron expression: ``*/15 * * * *`` -> ``x-15_x_x_x_x``."""
    slug = "".join(_SLUG_CHARACTERS.get(character, character) for character in schedule.strip().lstrip("@"))
    return re.sub(r"[^A-Za-z0-9_.-]", "", slug)


def table_kwargs(table: TableConfig) -> dict[str, Any]:
    """The per-table operator arguments one mapped load task receives (before the run's plan).

    Optional arguments appear only when the config sets them, so the operator's defaults apply.
    """
    kwargs: dict[str, Any] = {
        "table": table.name,
        "source": table.source,
        "mode": table.mode,
        "timestamp_field": table.timestamp_field,
        "time_offset": table.time_offset,
        "batch_size": table.batch_size,
    }
    optional = {
        "key_fields": list(table.key_fields or ()),
        "expand": list(table.expand or ()),
        "track_deletes": table.track_deletes,
        "target_table": table.target_table,
    }
    kwargs.update({key: value for key, value in optional.items() if value})
    return kwargs


def trigger_params(tables: Sequence[TableConfig]) -> dict[str, Param]:
    """The trigger form: which tables, full refresh, and an optional window to reload."""
    names = [table.name for table in tables]
    return {
        "tables": Param(
            [],
            type="array",
            items={"type": "string", "enum": names},
            uniqueItems=True,
            examples=names,
            title="Tables",
            description="Tables to load; empty loads all of this DAG's tables.",
        ),
        "full_refresh": Param(
            False,
            type="boolean",
            title="Full refresh",
            description="Reload incremental tables completely (mode full) instead of from the watermark.",
        ),
        "window_start": instant_param(
            "Window start", "Reload records modified from here (the watermark stays). Empty: from the watermark."
        ),
        "window_end": instant_param("Window end", "Load records modified before this. Empty: up to now."),
    }


def instant_param(title: str, description: str) -> Param:
    """An optional date-time field of a trigger form (empty: the run's own value)."""
    return Param(None, type=["null", "string"], format="date-time", title=title, description=description)


def tenant_dag_settings(config: BundleConfig, tenant: TenantConfig, schedule: str) -> dict[str, Any]:
    """What every DAG of a tenant shares: a data-interval timetable on `schedule` (its intervals are what runs
    and backfills load or publish), the config's start date, one run at a time, the tenant's owner and retries."""
    return {
        "schedule": CronDataIntervalTimetable(schedule, timezone=config.timezone),
        "start_date": pendulum.datetime(*config.start_date.timetuple()[:3], tz=config.timezone),
        "catchup": False,
        "max_active_runs": 1,
        "default_args": {
            "owner": tenant.owner,
            "retries": tenant.retries,
            "retry_delay": datetime.timedelta(seconds=tenant.retry_delay),
        },
    }


def _tables_by_schedule(tenant: TenantConfig) -> Iterable[tuple[str | None, list[TableConfig]]]:
    """(None, tables on the tenant's schedule), then (schedule, tables) for each other schedule."""
    own = [table for table in tenant.tables if table.schedule == tenant.schedule]
    if own:
        yield None, own
    others = dict.fromkeys(table.schedule for table in tenant.tables if table.schedule != tenant.schedule)
    for schedule in others:
        yield schedule, [table for table in tenant.tables if table.schedule == schedule]


def _tenant_dag(config: BundleConfig, tenant: TenantConfig, own_schedule: str | None, tables: list[TableConfig]) -> DAG:
    schedule = own_schedule or tenant.schedule
    with DAG(
        dag_id=dag_id(tenant.name, own_schedule),
        description=f"Sync Acumatica tenant {tenant.name}: {len(tables)} tables, schedule {schedule}",
        **tenant_dag_settings(config, tenant, schedule),
        tags=["acumatica", f"tenant:{tenant.name}"],
        params=trigger_params(tables),
        doc_md=_doc(config, tenant, schedule, tables),
    ) as dag:
        for mode in MODES:
            group_tables = [table for table in tables if table.mode == mode]
            if group_tables:
                _load_group(tenant, mode, group_tables)
    return dag


@task(task_id="plan")
def _plan(tables: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Pick this run's tables, modes and windows from the trigger form and the run type (no I/O)."""
    context = get_current_context()
    return plan_loads(
        tables,
        run_type=context["dag_run"].run_type,
        params=context["params"],
        data_interval_start=context.get("data_interval_start"),
        data_interval_end=context.get("data_interval_end"),
    )


def _load_group(tenant: TenantConfig, mode: str, tables: list[TableConfig]) -> None:
    with TaskGroup(group_id=mode, tooltip=f"{mode} tables: {', '.join(table.name for table in tables)}"):
        planned = _plan([table_kwargs(table) for table in tables])
        AcumaticaToSqlOperator.partial(
            task_id="load",
            acumatica_conn_id=tenant.acumatica_conn_id,
            sql_conn_id=tenant.warehouse_conn_id,
            target_schema=tenant.target_schema,
            tenant=tenant.name,
            pool=tenant.pool,
            pool_slots=tenant.task_requests,  # a slot per request the task may have in flight: see docs/adr/0007
            max_concurrent_requests=tenant.task_requests,
            outlets=[tenant_alias(tenant.name)],
            post_execute=emit_table_asset,
            map_index_template="{{ task.table }}",
        ).expand_kwargs(planned)


def _doc(config: BundleConfig, tenant: TenantConfig, schedule: str, tables: list[TableConfig]) -> str:
    rows = "\n".join(
        f"| {table.name} | {table.mode} | {table.source} | `{table_asset_uri(tenant.name, table.name)}` |"
        for table in tables
    )
    return (
        f"### Acumatica sync: tenant `{tenant.name}`\n\n"
        f"Connection `{tenant.acumatica_conn_id}` -> warehouse `{tenant.warehouse_conn_id}`, "
        f"schedule `{schedule}` ({config.timezone}), pool `{tenant.pool}` ({tenant.pool_slots} slots, "
        f"{tenant.task_requests} per load task). "
        f"Config: `{config.path}`.\n\n"
        "Trigger with a config to load some tables, reload a window (`window_start`/`window_end`; the "
        "watermark stays) or reload everything (`full_refresh`). Backfills reload their data intervals.\n\n"
        "| Table | Mode | Source | Asset |\n|---|---|---|---|\n" + rows + "\n"
    )
