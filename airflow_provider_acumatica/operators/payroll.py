"""AcumaticaPayrollPublishOperator: publish a tenant's approved time activities of a pay period as Acumatica
time entries, exactly once."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowException, AirflowFailException
from sqlalchemy import Engine

from airflow_provider_acumatica.client.errors import AcumaticaConfigError, AcumaticaError
from airflow_provider_acumatica.hooks.acumatica import AcumaticaHook
from airflow_provider_acumatica.operators.failures import permanent_failure
from airflow_provider_acumatica.operators.lineage import SyncLineage, operator_lineage, payroll_lineage
from airflow_provider_acumatica.operators.warehouse import check_warehouse_arguments, warehouse_target
from airflow_provider_acumatica.payroll.entries import BILLABLE_CHOICES, ENTITY, PublishSettings, time_entry
from airflow_provider_acumatica.payroll.publisher import Publisher
from airflow_provider_acumatica.payroll.push_log import Outcome, PushLog
from airflow_provider_acumatica.payroll.report import approval_report, status_counts, summary_table
from airflow_provider_acumatica.payroll.rules import References, Rejection, check_activities
from airflow_provider_acumatica.payroll.run_lock import tenant_lock
from airflow_provider_acumatica.payroll.source import (
    DEFAULT_SOURCE_TABLE,
    ActivitySource,
    PayPeriod,
    create_source_table,
)
from airflow_provider_acumatica.utils.flags import flag
from airflow_provider_acumatica.utils.instants import parse_instant
from airflow_provider_acumatica.warehouse.dialects import create_warehouse_engine

if TYPE_CHECKING:
    from airflow.sdk import Context

REPORT_XCOM_KEY = "report"


class AcumaticaPayrollPublishOperator(BaseOperator):
    """Push the approved time activities of one tenant and pay period to Acumatica as time entries.

    Activities come from the warehouse table ``source_table`` (or the query ``source_sql``); each becomes one
    time entry, found again by its ``ExternalRefNbr``, so crashes, retries, reruns and overlapping runs never
    create a second entry. Every good row is pushed; the task then fails, with a summary, if any row was rejected
    or failed, and the next run retries only those and changed rows. The push log table
    ``acumatica_payroll_push_log`` says what became of each activity.

    :param acumatica_conn_id: the ``acumatica`` connection of the tenant.
    :param sql_conn_id: warehouse connection; or give ``sql_url``.
    :param sql_url: warehouse SQLAlchemy URL, instead of ``sql_conn_id``.
    :param source_table: table of time activities (default ``payroll_time_activity``). (templated)
    :param source_sql: a query returning the source table's columns, instead of the table; it may use the bind
        parameters ``:tenant``, ``:period_start`` and ``:period_end``. (templated)
    :param tenant: the source's ``tenant`` value to publish (any case); default the connection's tenant.
    :param sync_tenant: the ``_tenant`` label the sync DAGs give this tenant's rows, for checking employees,
        projects, tasks, cost codes and earning types against the synced tables; default ``tenant``.
    :param period_start: start of the pay period (ISO 8601); default the run's data interval start. (templated)
    :param period_end: end of the pay period, excluded; default the data interval end. (templated)
    :param billable: ``True``, ``False`` or ``"source"`` (billable when ``billable_minutes`` > 0).
    :param hold: leave entries Open (on hold) instead of completing them.
    :param dry_run: look everything up and report what would be sent, without writing anything. (templated)
    :param create_source_table: create an empty source table if it does not exist.
    :param target_schema: schema of the source, the push log and the synced tables; default the connection's.
    :param lock_timeout: seconds to wait while another run publishes for the same tenant.
    :param max_concurrent_requests: at most this many requests in flight (and sessions); default the connection's.
    """

    template_fields: Sequence[str] = ("source_table", "source_sql", "period_start", "period_end", "dry_run")
    template_fields_renderers = {"source_sql": "sql"}
    ui_color = "#2e8b57"

    def __init__(
        self,
        *,
        acumatica_conn_id: str = AcumaticaHook.default_conn_name,
        sql_conn_id: str | None = None,
        sql_url: str | None = None,
        source_table: str | None = DEFAULT_SOURCE_TABLE,
        source_sql: str | None = None,
        tenant: str | None = None,
        sync_tenant: str | None = None,
        period_start: str | datetime | None = None,
        period_end: str | datetime | None = None,
        billable: bool | str = "source",
        hold: bool = True,
        dry_run: bool | str = False,
        create_source_table: bool = False,
        target_schema: str | None = None,
        lock_timeout: float = 600,
        max_concurrent_requests: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.acumatica_conn_id = acumatica_conn_id
        self.sql_conn_id = sql_conn_id
        self.sql_url = sql_url
        self.source_table = None if source_sql else source_table
        self.source_sql = source_sql
        self.tenant = tenant
        self.sync_tenant = sync_tenant
        self.period_start = period_start
        self.period_end = period_end
        self.billable = billable
        self.hold = hold
        self.dry_run = dry_run
        self.create_source_table = create_source_table
        self.target_schema = target_schema
        self.lock_timeout = lock_timeout
        self.max_concurrent_requests = max_concurrent_requests
        self._hook: AcumaticaHook | None = None
        self._lineage: SyncLineage | None = None
        self._check_arguments()

    def _check_arguments(self) -> None:
        where = f"{type(self).__name__} {self.task_id!r}"
        check_warehouse_arguments(where, self.sql_conn_id, self.sql_url)
        if not (self.source_table or self.source_sql):
            raise ValueError(f"{where}: give `source_table` or `source_sql`.")
        if self.billable not in BILLABLE_CHOICES:
            raise ValueError(f"{where}: `billable` is {self.billable!r}; allowed: True, False or 'source'.")
        if self.create_source_table and self.source_sql:
            raise ValueError(f"{where}: `create_source_table` needs `source_table`, not `source_sql`.")
        if not isinstance(self.lock_timeout, (int, float)) or self.lock_timeout < 0:
            raise ValueError(f"{where}: `lock_timeout` is {self.lock_timeout!r}; give seconds, 0 or more.")

    def execute(self, context: Context) -> dict[str, Any]:
        dry_run = _flag(self.dry_run, "dry_run")
        period = self._period(context)
        engine = create_warehouse_engine(warehouse_target(self.sql_conn_id, self.sql_url))[0]
        try:
            describe, counts, summary = self._publish(engine, period, dry_run, context)
        finally:
            engine.dispose()
        self._fail_on_bad_rows(describe, counts)
        return summary

    def _publish(
        self, engine: Engine, period: PayPeriod, dry_run: bool, context: Context
    ) -> tuple[str, dict[str, int], dict[str, Any]]:
        """Select, check and send the period's activities; what to call the run, its counts and its XCom summary."""
        try:
            self._hook = hook = AcumaticaHook(
                self.acumatica_conn_id, max_concurrent_requests=self.max_concurrent_requests
            )
        except AcumaticaConfigError as error:
            raise AirflowFailException(str(error)) from error
        tenant = self.tenant or hook.tenant
        describe = f"payroll of tenant {tenant!r}, period {period}"
        started = datetime.now(timezone.utc)
        try:
            activities, rejections = self._select(engine, tenant, period, describe)
            outcomes = self._send(hook, engine, tenant, activities, rejections, dry_run=dry_run, describe=describe)
        finally:
            hook.close(parallel=True)  # the normal end of work; on_kill closes sequentially
            self._hook = None
        counts = status_counts([*outcomes, *(_rejected(rejection) for rejection in rejections)])
        if not dry_run:
            self._lineage = self._read_lineage(hook, engine, tenant, activities, counts)
        elapsed = (datetime.now(timezone.utc) - started).total_seconds()
        summary = {
            "tenant": tenant,
            "period_start": period.start.isoformat(),
            "period_end": period.end.isoformat(),
            "dry_run": dry_run,
            "activities": len(activities) + len(rejections),
            **counts,
            "seconds": round(elapsed, 1),
        }
        self.log.info("%s: %s\n%s", describe, "dry run, nothing sent" if dry_run else "done", summary_table(counts))
        if dry_run and context.get("ti") is not None:  # for an approval step to show
            report = approval_report(activities, rejections, counts, f"Payroll for tenant {tenant}, {period}")
            context["ti"].xcom_push(key=REPORT_XCOM_KEY, value=report)
        return describe, counts, summary

    def _send(
        self,
        hook: AcumaticaHook,
        engine: Engine,
        tenant: str,
        activities: list,
        rejections: list[Rejection],
        *,
        dry_run: bool,
        describe: str,
    ) -> list[Outcome]:
        """Push the activities (a dry run only looks them up), holding the tenant's lock and logging each outcome."""
        settings = PublishSettings(self.billable, self.hold, hook.settings.zone)
        push_log = None if dry_run else PushLog(engine, self.target_schema, tenant)
        publisher = Publisher(hook, settings, push_log, describe=describe, logger=self.log)
        with _failing_fast(hook, tenant):
            if push_log is None:
                return publisher.publish(activities)
            push_log.create()
            with tenant_lock(engine, self.target_schema, tenant, timeout=self.lock_timeout):
                _log_rejections(push_log, rejections)
                return publisher.publish(activities)

    def _read_lineage(
        self, hook: AcumaticaHook, engine: Engine, tenant: str, activities: list, counts: dict[str, int]
    ) -> SyncLineage:
        settings = hook.settings
        fields = sorted(
            {
                field
                for activity in activities[:1]
                for field in time_entry(activity, PublishSettings(self.billable, self.hold, settings.zone))
            }
        )
        return payroll_lineage(
            instance_url=settings.instance_url,
            endpoint=f"{settings.endpoint_name}/{settings.endpoint_version}",
            tenant=tenant,
            entity=ENTITY,
            entry_fields=fields,
            engine=engine,
            schema=self.target_schema,
            source_table=self.source_table,
            rows=counts["pushed"] + counts["updated"],
        )

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """OpenLineage: the warehouse's activity table in, Acumatica's TimeEntry out, with their fields and the entries
        this run sent (see operators.lineage). Reported when apache-airflow-providers-openlineage is installed."""
        return operator_lineage(self._lineage)

    def _select(self, engine, tenant: str, period: PayPeriod, describe: str) -> tuple[list, list[Rejection]]:
        """The checked activities and the rejected rows of the tenant and period."""
        source = ActivitySource(self.source_table, self.source_sql, self.target_schema)
        if self.create_source_table and create_source_table(engine, self.source_table, self.target_schema):
            self.log.info("%s: created the empty source table %r", describe, self.source_table)
        with engine.connect() as connection:
            try:
                rows = source.read(connection, tenant, period)
            except LookupError as error:
                raise AirflowFailException(f"{describe}: {error}") from None
            references = References.load(connection, self.target_schema, self.sync_tenant or tenant)
        activities, rejections = check_activities(rows, tenant, period, references)
        self.log.info(
            "%s: %d approved activities from %s (checked against synced: %s)",
            describe,
            len(activities) + len(rejections),
            source.describe(),
            ", ".join(references.checked) or "none",
        )
        for rejection in rejections:
            self.log.warning("%s: rejected %s", describe, rejection)
        return activities, rejections

    def _period(self, context: Context) -> PayPeriod:
        start = _instant(self.period_start, "period_start") or _instant(context.get("data_interval_start"), "")
        end = _instant(self.period_end, "period_end") or _instant(context.get("data_interval_end"), "")
        if start is None or end is None or start >= end:
            raise AirflowFailException(
                f"{self.task_id}: no pay period: give period_start and period_end (ISO 8601), or run on a schedule "
                "whose data interval is the pay period (a manual run may have none)."
            )
        return PayPeriod(start, end)

    def _fail_on_bad_rows(self, describe: str, counts: dict[str, int]) -> None:
        """Fail after every good row was pushed: for good when rows were rejected (a retry cannot fix them),
        retryably when some failed (Acumatica may answer next time)."""
        if not (counts["rejected"] or counts["failed"]):
            return
        message = (
            f"{describe}: {counts['rejected']} rejected and {counts['failed']} failed activities (see the "
            f"warnings above and the push log); the next run retries only those and changed ones.\n"
            f"{summary_table(counts)}"
        )
        raise (AirflowException if counts["failed"] else AirflowFailException)(message)

    def on_kill(self) -> None:
        """Sign out now: an Acumatica session left open holds a licence slot for about ten minutes."""
        if self._hook is not None:
            self._hook.close()


@contextmanager
def _failing_fast(hook: AcumaticaHook, tenant: str) -> Iterator[None]:
    """An Acumatica error a retry would meet again (a refused sign-in, an endpoint without TimeEntry) fails the task
    without retries, saying what to fix; entries' own errors never get here (they are outcomes)."""
    try:
        yield
    except AcumaticaError as error:
        endpoint = f"{hook.settings.endpoint_name}/{hook.settings.endpoint_version}"
        failure = permanent_failure(error, tenant=tenant, table=ENTITY, timestamp_field=None, endpoint=endpoint)
        if failure is None:
            raise
        raise failure from error


def _log_rejections(push_log: PushLog, rejections: list[Rejection]) -> None:
    """Rejected rows with an id go to the push log (keeping the entry an earlier push made, if any)."""
    with_id = [rejection for rejection in rejections if rejection.activity_id]
    previous = push_log.previous(rejection.activity_id for rejection in with_id)
    for rejection in with_id:
        earlier = previous.get(rejection.activity_id)
        push_log.record(_rejected(rejection, earlier.time_entry_id if earlier else None))


def _rejected(rejection: Rejection, time_entry_id: str | None = None) -> Outcome:
    return Outcome(
        rejection.activity_id, "rejected", time_entry_id=time_entry_id, error=f"{rejection.field}: {rejection.reason}"
    )


def _flag(value: bool | str, name: str) -> bool:
    if (parsed := flag(value)) is not None:
        return parsed
    raise AirflowFailException(f"`{name}` rendered as {value!r}; give true or false.")


def _instant(value: str | datetime | None, argument: str) -> datetime | None:
    try:
        return parse_instant(value, argument, "payroll")
    except ValueError as error:
        raise AirflowFailException(str(error)) from None
