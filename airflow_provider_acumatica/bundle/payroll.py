"""Builds the per-tenant payroll DAGs from a resolved config; parsing them does no network or database I/O.

One DAG per tenant with a ``payroll`` block, ``acumatica_payroll__<tenant>``, on its payroll schedule: each
run's data interval is the pay period it publishes, so backfills publish past periods. A ``period`` task
picks the period (trigger form, else the data interval, else — a manual run without one — the last complete
period of the schedule); with ``require_approval`` a dry run summarizes what would be sent and a person
approves it in the UI before the ``publish`` task sends anything (a rejection skips it).
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.providers.standard.operators.hitl import ApprovalOperator
from airflow.sdk import DAG, Param, get_current_context, task

from airflow_provider_acumatica.bundle.config import BundleConfig, PayrollConfig, TenantConfig
from airflow_provider_acumatica.bundle.factory import instant_param, tenant_dag_settings
from airflow_provider_acumatica.operators.payroll import REPORT_XCOM_KEY, AcumaticaPayrollPublishOperator

PAYROLL_DAG_ID_PREFIX = "acumatica_payroll__"


def build_payroll_dags(config: BundleConfig) -> dict[str, DAG]:
    """The payroll DAG of every tenant that has a ``payroll`` block, keyed by DAG id."""
    return {
        dag.dag_id: dag
        for dag in (_payroll_dag(config, tenant, tenant.payroll) for tenant in config.tenants if tenant.payroll)
    }


def payroll_dag_id(tenant: str) -> str:
    return PAYROLL_DAG_ID_PREFIX + tenant


def payroll_params() -> dict[str, Param]:
    """The trigger form: the pay period (empty: the run's data interval) and a dry run."""
    return {
        "period_start": instant_param(
            "Period start", "Publish activities that started from here. Empty: the run's pay period."
        ),
        "period_end": instant_param(
            "Period end", "... and before this. Empty: the run's pay period (the last complete one for a manual run)."
        ),
        "dry_run": Param(
            False,
            type="boolean",
            title="Dry run",
            description="Look everything up and report what would be sent; send nothing.",
        ),
    }


@task(task_id="period")
def pay_period(schedule: str, timezone: str) -> dict[str, Any]:
    """The run's pay period and dry-run flag, from the trigger form, the data interval or the schedule."""
    from airflow.timetables.interval import CronDataIntervalTimetable as CoreCronTimetable

    context = get_current_context()
    params = context["params"]
    start = params.get("period_start") or context.get("data_interval_start")
    end = params.get("period_end") or context.get("data_interval_end")
    if not start or not end or start == end:  # a manual run without dates: the last complete pay period
        timetable = CoreCronTimetable(schedule, timezone=pendulum.timezone(timezone))
        interval = timetable.infer_manual_data_interval(run_after=pendulum.now("UTC"))
        start, end = interval.start, interval.end
    return {"period_start": _iso(start), "period_end": _iso(end), "dry_run": bool(params.get("dry_run"))}


def _payroll_dag(config: BundleConfig, tenant: TenantConfig, payroll: PayrollConfig) -> DAG:
    with DAG(
        dag_id=payroll_dag_id(tenant.name),
        description=f"Publish approved time activities of tenant {tenant.name} to Acumatica as time entries",
        **tenant_dag_settings(config, tenant, payroll.schedule),
        tags=["acumatica", "payroll", f"tenant:{tenant.name}"],
        params=payroll_params(),
        doc_md=_doc(config, tenant, payroll),
    ) as dag:
        period = pay_period(payroll.schedule, config.timezone)
        arguments = {
            "acumatica_conn_id": tenant.acumatica_conn_id,
            "sql_conn_id": tenant.warehouse_conn_id,
            "source_table": payroll.source_table,
            "source_sql": payroll.source_sql,
            "sync_tenant": tenant.name,
            "period_start": period["period_start"],
            "period_end": period["period_end"],
            "billable": payroll.billable,
            "hold": payroll.hold,
            "target_schema": tenant.target_schema,
            "pool": tenant.pool,
            "pool_slots": tenant.task_requests,  # a slot per request the task may have in flight: docs/adr/0007
            "max_concurrent_requests": tenant.task_requests,
        }
        publish = AcumaticaPayrollPublishOperator(task_id="publish", dry_run=period["dry_run"], **arguments)
        if payroll.require_approval:
            summarize = AcumaticaPayrollPublishOperator(task_id="summarize", dry_run=True, retries=0, **arguments)
            approve = ApprovalOperator(
                task_id="approve",
                subject=f"Publish payroll of tenant {tenant.name} to Acumatica?",
                body=f"{{{{ ti.xcom_pull(task_ids='summarize', key='{REPORT_XCOM_KEY}') }}}}",
                retries=0,
            )
            period >> summarize >> approve >> publish
    return dag


def _iso(value: Any) -> str:
    return value if isinstance(value, str) else value.isoformat()


def _doc(config: BundleConfig, tenant: TenantConfig, payroll: PayrollConfig) -> str:
    source = f"query `{payroll.source_sql}`" if payroll.source_sql else f"table `{payroll.source_table}`"
    return (
        f"### Acumatica payroll: tenant `{tenant.name}`\n\n"
        f"Approved time activities from the {source} in warehouse `{tenant.warehouse_conn_id}` become time entries "
        f"of connection `{tenant.acumatica_conn_id}`, once each (push log `acumatica_payroll_push_log`). "
        f"Pay periods follow `{payroll.schedule}` ({config.timezone}); billable: `{payroll.billable}`, "
        f"hold: `{payroll.hold}`, approval before publishing: `{payroll.require_approval}`.\n\n"
        "Trigger with a `period_start`/`period_end` to publish another period, or `dry_run` to see what would "
        "be sent. Backfills publish past pay periods. See docs/payroll.md.\n"
    )
