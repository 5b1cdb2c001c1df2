"""What the Acumatica page shows: per tenant, its connection state and its tables' sync state.

It reads only metadata: the connection's settings (never its secrets), the token store's chain metadata
(`TokenStore.status`, nothing decrypted), the warehouse's `acumatica_sync_state` table, and failed load
attempts from Airflow's task instances. Tenants come from the bundle config (`ACUMATICA_DAGS_CONFIG`, else
`acumatica.yaml` in the DAGs folder); `acumatica` connections that no tenant uses are listed too.
"""

from __future__ import annotations

import dataclasses
import os
from datetime import datetime, timezone
from pathlib import Path

import sqlalchemy as sa

from airflow_provider_acumatica.bundle.config import BundleConfig, ConfigError, TenantConfig, load_config
from airflow_provider_acumatica.bundle.factory import DAG_ID_PREFIX
from airflow_provider_acumatica.client.tokens import ChainStatus
from airflow_provider_acumatica.hooks.acumatica import AcumaticaHook
from airflow_provider_acumatica.plugins.flows import Connected, FlowStore
from airflow_provider_acumatica.warehouse.schema import table_name
from airflow_provider_acumatica.warehouse.state import STATE_TABLE, state_table


@dataclasses.dataclass
class ConnectionState:
    conn_id: str
    auth_type: str | None = None
    tenant: str | None = None
    instance_url: str | None = None
    chain: ChainStatus | None = None
    connected: Connected | None = None
    problem: str | None = None


@dataclasses.dataclass
class TableState:
    table: str
    rows: int | None = None
    watermark: datetime | None = None
    finished_at: datetime | None = None
    mode: str | None = None
    last_error: str | None = None

    def lag_seconds(self, now: datetime) -> float | None:
        return None if self.watermark is None else (now - self.watermark).total_seconds()


@dataclasses.dataclass
class TenantState:
    name: str
    connection: ConnectionState
    warehouse_conn_id: str | None = None
    tables: list[TableState] = dataclasses.field(default_factory=list)
    problem: str | None = None


def bundle_config_path() -> Path | None:
    from airflow.configuration import conf

    named = os.environ.get("ACUMATICA_DAGS_CONFIG")
    path = Path(named) if named else Path(conf.get("core", "dags_folder")) / "acumatica.yaml"
    return path if path.is_file() else None


def connection_state(conn_id: str) -> ConnectionState:
    state = ConnectionState(conn_id)
    try:
        hook = AcumaticaHook(conn_id)
    except Exception as error:  # noqa: BLE001 - shown on the page: the settings' own messages name the field
        state.problem = f"{type(error).__name__}: {error}"
        return state
    with hook:
        settings = hook.settings
        state.auth_type, state.tenant, state.instance_url = settings.auth_type, settings.tenant, settings.instance_url
        store = hook.get_conn().token_store
        if store is not None:
            state.chain = store.status(settings.token_key)
            state.connected = FlowStore(store).last_connected(settings.token_key)
    return state


def tenant_states(config: BundleConfig | None, extra_conn_ids: list[str], now: datetime) -> list[TenantState]:
    tenants = []
    for tenant in config.tenants if config else ():
        tenants.append(_tenant_state(tenant, now))
    used = {tenant.connection.conn_id for tenant in tenants}
    tenants += [TenantState(conn_id, connection_state(conn_id)) for conn_id in extra_conn_ids if conn_id not in used]
    return tenants


def load_bundle_config() -> tuple[BundleConfig | None, str | None]:
    path = bundle_config_path()
    if path is None:
        return None, None
    try:
        return load_config(path), None
    except (ConfigError, OSError) as error:
        return None, str(error)


def _tenant_state(tenant: TenantConfig, now: datetime) -> TenantState:
    state = TenantState(tenant.name, connection_state(tenant.acumatica_conn_id), tenant.warehouse_conn_id)
    try:
        stored = _sync_states(tenant)
    except Exception as error:  # noqa: BLE001 - an unreachable warehouse is shown, not raised
        state.problem = f"warehouse {tenant.warehouse_conn_id!r} unreadable: {type(error).__name__}"
        stored = {}
    failures = _failed_loads(tenant.name)
    for table in tenant.tables:
        row = stored.get(table.target_table or table_name(table.name)) or TableState(table.name)
        row.table = table.name
        failure = failures.get(table.name)
        if failure and (row.finished_at is None or failure[0] > row.finished_at):
            row.last_error = failure[1]
        state.tables.append(row)
    return state


def _sync_states(tenant: TenantConfig) -> dict[str, TableState]:
    """The tenant's rows of the state table, by warehouse table name."""
    from airflow.sdk.bases.hook import BaseHook

    from airflow_provider_acumatica.operators.warehouse import warehouse_url

    engine = sa.create_engine(warehouse_url(BaseHook.get_connection(tenant.warehouse_conn_id)))
    try:
        if not sa.inspect(engine).has_table(STATE_TABLE, schema=tenant.target_schema):
            return {}
        table = state_table(sa.MetaData(), tenant.target_schema)
        with engine.connect() as connection:
            rows = connection.execute(sa.select(table).where(table.c.tenant == tenant.name)).mappings().all()
    finally:
        engine.dispose()
    return {
        row["table_name"]: TableState(
            row["table_name"], row["rows"], _utc(row["watermark"]), _utc(row["finished_at"]), row["mode"]
        )
        for row in rows
    }


def _failed_loads(tenant: str) -> dict[str, tuple[datetime, str]]:
    """The latest failed attempt of each table's load task of the tenant's DAGs: (when, what)."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from airflow.utils.state import TaskInstanceState

    failed = (TaskInstanceState.FAILED, TaskInstanceState.UP_FOR_RETRY)
    query = (
        sa.select(
            TaskInstance.dag_id,
            TaskInstance.run_id,
            TaskInstance.rendered_map_index,
            TaskInstance.end_date,
            TaskInstance.try_number,
            TaskInstance.state,
        )
        .where(
            TaskInstance.dag_id.startswith(DAG_ID_PREFIX + tenant),
            TaskInstance.task_id.endswith("load"),
            TaskInstance.state.in_(failed),
        )
        .order_by(TaskInstance.end_date.desc())
        .limit(500)
    )
    latest: dict[str, tuple[datetime, str]] = {}
    with create_session() as session:
        for dag_id, run_id, table, end, attempt, ti_state in session.execute(query):
            if table and end and table not in latest:
                latest[table] = (
                    _utc(end),
                    f"{ti_state} at {end:%Y-%m-%d %H:%M} UTC, try {attempt} ({dag_id}, run {run_id}): see the task log",
                )
    return latest


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)
