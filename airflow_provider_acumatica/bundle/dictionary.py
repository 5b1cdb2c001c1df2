"""The warehouse's data dictionary and dbt `sources.yml`, for the tables a bundle config syncs.

Each table's columns come from what its source declares (a REST entity's fields from the endpoint's
swagger.json, a DAC's or inquiry's from `$metadata`), named and typed as the warehouse names and types them,
plus the system columns. Tenants that load into one warehouse connection and schema share its tables (rows
told apart by `_tenant`): they make one dbt source, whose freshness is checked on `_synced_at` against the
tables' schedules.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import yaml
from croniter import croniter

from airflow_provider_acumatica.bundle.config import BundleConfig, TableConfig, TenantConfig
from airflow_provider_acumatica.client import schema as field_types
from airflow_provider_acumatica.extract.sources import MINUTES_SUFFIX
from airflow_provider_acumatica.warehouse.columns import EDM_KINDS, Kind
from airflow_provider_acumatica.warehouse.schema import (
    ACUMATICA_ID,
    DELETED_AT,
    LAST_MODIFIED,
    SYNCED_AT,
    TENANT,
    column_name,
    table_name,
)

SYSTEM_COLUMNS: tuple[tuple[str, str, str], ...] = (
    (TENANT, "text", "The tenant (bundle tenant name) the row belongs to; part of the primary key."),
    (ACUMATICA_ID, "text", "The record's id in Acumatica (REST `id`, or the DAC's NoteID): stable, a GUID."),
    (
        LAST_MODIFIED,
        "timestamp (UTC)",
        "When the record last changed in Acumatica (its modification timestamp "
        "field; empty for tables without one). The only copy of that field.",
    ),
    (SYNCED_AT, "timestamp (UTC)", "When the load that last wrote the row started: the freshness of the row."),
    (
        DELETED_AT,
        "timestamp (UTC)",
        "When the record was found deleted in Acumatica; empty while it exists. "
        "Rows are marked, never removed: filter `_deleted_at is null`.",
    ),
)
_TYPE_NAMES = {
    field_types.TEXT: "text",
    field_types.GUID: "text (GUID)",
    field_types.DECIMAL: "decimal (exact)",
    field_types.FLOAT: "float",
    field_types.INTEGER: "integer",
    field_types.BOOLEAN: "boolean",
    field_types.DATETIME: "timestamp (UTC)",
    field_types.DATE: "date",
    field_types.DURATION: "text (HH:MM)",
}
_KIND_NAMES = {
    Kind.TEXT: "text",
    Kind.INTEGER: "integer",
    Kind.DECIMAL: "decimal (exact)",
    Kind.FLOAT: "float",
    Kind.BOOLEAN: "boolean",
    Kind.TIMESTAMP: "timestamp (UTC)",
    Kind.DATE: "date",
}


@dataclass(frozen=True)
class DictionaryColumn:
    name: str
    type: str
    source_field: str | None
    description: str


@dataclass(frozen=True)
class DictionaryTable:
    name: str
    source: str
    description: str
    columns: tuple[DictionaryColumn, ...]
    schedule: str


FieldReader = Callable[[TenantConfig, TableConfig], Mapping[str, str] | None]
"""(tenant, table) -> {field: field type of client.schema, or an Edm type}; None when unknown."""


def table_dictionary(table: TableConfig, fields: Mapping[str, str] | None) -> DictionaryTable:
    """One table's entry: system columns, then each field's column(s) in the source's order."""
    timestamp = table.timestamp_field
    columns = [DictionaryColumn(name, kind, None, text) for name, kind, text in SYSTEM_COLUMNS]
    for field, declared in (fields or {}).items():
        if field == timestamp:
            continue
        columns.append(
            DictionaryColumn(
                column_name(field),
                _type_name(declared),
                f"{table.name}.{field}",
                _describe(table.name, field, declared),
            )
        )
        if declared == field_types.DURATION:
            columns.append(
                DictionaryColumn(
                    column_name(field + MINUTES_SUFFIX),
                    "integer",
                    f"{table.name}.{field}",
                    f"{table.name}.{field} in minutes (the HH:MM text as a number).",
                )
            )
    mode = f"incremental on {timestamp}" if table.mode == "incremental" else "full reload"
    description = f"Acumatica {table.name} ({table.source}), {mode}; one row per tenant and record." + (
        "" if fields else " Columns beyond the system ones are typed from values when first seen."
    )
    return DictionaryTable(
        table.target_table or table_name(table.name),
        f"{table.source}:{table.name}",
        description,
        tuple(columns),
        table.schedule,
    )


def _type_name(declared: str) -> str:
    if declared in _TYPE_NAMES:
        return _TYPE_NAMES[declared]
    return _KIND_NAMES.get(EDM_KINDS.get(declared, Kind.TEXT), "text")


def _describe(entity: str, field: str, declared: str) -> str:
    if declared == field_types.DATE:
        return f"{entity}.{field}: the calendar date shown in Acumatica (the API user's time zone)."
    if declared in (field_types.DATETIME, "Edm.DateTimeOffset", "Edm.DateTime"):
        return f"{entity}.{field}: an instant, in UTC."
    return f"{entity}.{field}."


def warehouse_dictionary(config: BundleConfig, read_fields: FieldReader) -> dict[tuple[str, str | None], list]:
    """{(warehouse connection, schema): [DictionaryTable, ...]} for the config's enabled tables."""
    groups: dict[tuple[str, str | None], dict[str, DictionaryTable]] = {}
    for tenant in config.tenants:
        tables = groups.setdefault((tenant.warehouse_conn_id, tenant.target_schema), {})
        for table in tenant.tables:
            entry = table_dictionary(table, read_fields(tenant, table))
            known = tables.get(entry.name)
            if known is None or len(entry.columns) > len(known.columns):
                tables[entry.name] = entry
    return {group: sorted(tables.values(), key=lambda t: t.name) for group, tables in groups.items()}


def dictionary_markdown(dictionary: Mapping[tuple[str, str | None], list[DictionaryTable]]) -> str:
    """The data dictionary as Markdown: a section per table, a row per column."""
    lines = ["# Acumatica warehouse: data dictionary", ""]
    for (connection, schema), tables in dictionary.items():
        lines += [f"Warehouse connection `{connection}`, schema `{schema or '(default)'}`.", ""]
        for table in tables:
            lines += [
                f"## {table.name}",
                "",
                table.description,
                "",
                "| column | type | source field | description |",
                "|---|---|---|---|",
            ]
            lines += [
                f"| `{c.name}` | {c.type} | {c.source_field or '(system)'} | {c.description} |" for c in table.columns
            ]
            lines.append("")
    return "\n".join(lines)


def dbt_sources(dictionary: Mapping[tuple[str, str | None], list[DictionaryTable]]) -> str:
    """dbt `sources.yml` (version 2): a source per warehouse connection and schema, freshness on `_synced_at`."""
    sources = []
    for (connection, schema), tables in dictionary.items():
        source: dict[str, Any] = {
            "name": _source_name(connection, schema, len(dictionary)),
            "description": f"Acumatica data synced by airflow-provider-acumatica (warehouse connection {connection}).",
        }
        if schema:
            source["schema"] = schema
        source["loaded_at_field"] = SYNCED_AT
        source["tables"] = [_dbt_table(table) for table in tables]
        sources.append(source)
    return yaml.safe_dump({"version": 2, "sources": sources}, sort_keys=False, allow_unicode=True, width=120)


def _dbt_table(table: DictionaryTable) -> dict[str, Any]:
    hours = max(1, round(_schedule_hours(table.schedule)))
    columns = []
    for column in table.columns:
        entry: dict[str, Any] = {"name": column.name, "description": column.description}
        if column.name in (TENANT, ACUMATICA_ID, SYNCED_AT):
            entry["data_tests"] = ["not_null"]
        columns.append(entry)
    return {
        "name": table.name,
        "description": table.description,
        "freshness": {
            "warn_after": {"count": 2 * hours, "period": "hour"},
            "error_after": {"count": 6 * hours, "period": "hour"},
        },
        "columns": columns,
    }


def _schedule_hours(schedule: str) -> float:
    """The longest gap between two runs of `schedule` (a cron expression) over its next runs, in hours."""
    runs = croniter(schedule, datetime(2024, 1, 1, tzinfo=timezone.utc))
    times = [runs.get_next(datetime) for _ in range(50)]
    return max((later - earlier).total_seconds() for earlier, later in zip(times, times[1:])) / 3600


def _source_name(connection: str, schema: str | None, groups: int) -> str:
    if groups == 1:
        return "acumatica"
    return column_name(f"acumatica_{schema or connection}")


class AcumaticaFields:
    """A FieldReader asking each tenant's Acumatica (a hook per connection, from `hook_for(conn_id)`):
    swagger.json for REST entities, `$metadata` for DACs and inquiries. Close it to sign out."""

    def __init__(self, hook_for: Callable[[str], Any]) -> None:
        self._hook_for = hook_for
        self._hooks: dict[str, Any] = {}

    def __call__(self, tenant: TenantConfig, table: TableConfig) -> Mapping[str, str] | None:
        conn_id = tenant.acumatica_conn_id
        hook = self._hooks.get(conn_id) or self._hooks.setdefault(conn_id, self._hook_for(conn_id))
        if table.source == "entity":
            schema = field_types.SCHEMAS.get(hook.get_conn())
            return schema.fields_of(table.name) if schema else None
        entity_set = hook.get_odata_metadata(table.source).get(table.name)
        return dict(entity_set.properties) if entity_set else None

    def close(self) -> None:
        for hook in self._hooks.values():
            hook.close()
        self._hooks.clear()
