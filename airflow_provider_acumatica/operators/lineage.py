"""OpenLineage for a sync (the Acumatica table in, the warehouse table out) and a payroll run (the warehouse's activity
table in, Acumatica's TimeEntry out), with schemas and the rows written, so that lineage tools (Marquez, DataHub,
OpenMetadata) see where each table comes from and goes.

Dataset names: the input is ``acumatica://{instance host}`` / ``{tenant}.{endpoint}.{table}`` (entity, DAC or
inquiry name); the output follows OpenLineage's naming of its database: ``postgres://{host}:{port}`` /
``{database}.{schema}.{table}``, or ``sqlite://{file}`` / ``{table}`` (``{schema}.{table}`` when a schema is
given). The OpenLineage provider is imported only when lineage is asked for: it is no dependency.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Engine, inspect


@dataclass(frozen=True)
class SyncLineage:
    """What one sync run read and wrote, in OpenLineage's terms."""

    input_namespace: str
    input_name: str
    input_fields: dict[str, str]
    output_namespace: str
    output_name: str
    output_columns: dict[str, str]
    rows: int


def sync_lineage(
    *,
    instance_url: str,
    endpoint: str,
    tenant: str,
    table: str,
    input_fields: dict[str, str] | None,
    engine: Engine,
    schema: str | None,
    target: str,
    rows: int,
) -> SyncLineage:
    """The lineage of a committed sync; the output's columns are read from the warehouse table as it now is."""
    namespace, name, columns = _warehouse_dataset(engine, schema, target)
    return SyncLineage(
        input_namespace=_acumatica_namespace(instance_url),
        input_name=f"{tenant}.{endpoint}.{table}",
        input_fields=dict(input_fields or {}),
        output_namespace=namespace,
        output_name=name,
        output_columns=columns,
        rows=rows,
    )


def payroll_lineage(
    *,
    instance_url: str,
    endpoint: str,
    tenant: str,
    entity: str,
    entry_fields: list[str],
    engine: Engine,
    schema: str | None,
    source_table: str | None,
    rows: int,
) -> SyncLineage:
    """The lineage of a payroll run: the warehouse's activity table in (none known for a source query), the
    Acumatica entity out, with the fields written and the entries sent."""
    namespace, name, columns = _warehouse_dataset(engine, schema, source_table) if source_table else ("", "", {})
    return SyncLineage(
        input_namespace=namespace,
        input_name=name,
        input_fields=columns,
        output_namespace=_acumatica_namespace(instance_url),
        output_name=f"{tenant}.{endpoint}.{entity}",
        output_columns=dict.fromkeys(entry_fields, "string"),
        rows=rows,
    )


def _acumatica_namespace(instance_url: str) -> str:
    return f"acumatica://{urlsplit(instance_url).netloc or instance_url}"


def _warehouse_dataset(engine: Engine, schema: str | None, table: str) -> tuple[str, str, dict[str, str]]:
    """(namespace, name, columns) of a warehouse table, named as OpenLineage names its database."""
    with engine.connect() as connection:
        columns = {c["name"]: str(c["type"]) for c in inspect(connection).get_columns(table, schema=schema)}
    url = engine.url
    if url.get_backend_name() == "sqlite":
        return f"sqlite://{url.database}", table if schema is None else f"{schema}.{table}", columns
    backend = "postgres" if url.get_backend_name() == "postgresql" else url.get_backend_name()
    return (
        f"{backend}://{url.host or 'localhost'}:{url.port or 5432}",
        f"{url.database}.{schema or 'public'}.{table}",
        columns,
    )


def operator_lineage(lineage: SyncLineage | None) -> Any:
    """An ``OperatorLineage`` of the run; None when there is none or the OpenLineage provider is not installed."""
    if lineage is None:
        return None
    try:
        from airflow.providers.common.compat.openlineage.facet import (
            Dataset,
            OutputDataset,
            OutputStatisticsOutputDatasetFacet,
            SchemaDatasetFacet,
            SchemaDatasetFacetFields,
        )
        from airflow.providers.openlineage.extractors import OperatorLineage
    except ImportError:
        return None

    def schema(fields: dict[str, str]) -> dict[str, Any]:
        return {
            "schema": SchemaDatasetFacet(
                fields=[SchemaDatasetFacetFields(name=name, type=kind) for name, kind in fields.items()]
            )
        }

    sources = (
        [Dataset(namespace=lineage.input_namespace, name=lineage.input_name, facets=schema(lineage.input_fields))]
        if lineage.input_name
        else []
    )
    target = OutputDataset(
        namespace=lineage.output_namespace,
        name=lineage.output_name,
        facets=schema(lineage.output_columns),
        outputFacets={"outputStatistics": OutputStatisticsOutputDatasetFacet(rowCount=lineage.rows)},
    )
    return OperatorLineage(inputs=sources, outputs=[target])
