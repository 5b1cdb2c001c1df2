"""`airflow-acumatica tables`: what the connection's endpoint serves, from its OpenAPI document.

Real instances publish `/entity/{Endpoint}/{Version}/swagger.json` (read by `client.schema`, as the sync reads it
for column types); every record is keyed by its stable GUID `id`. Listed per entity: its key, its modification timestamp (`LastModifiedDateTime` or
`LastModified`, or none: such a table is reloaded in full) and its number of fields. With `--config`, the
REST tables of the bundle config are marked as served or not, and a timestamp field the endpoint lacks is named.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any, TextIO

from airflow_provider_acumatica.cli.common import CommandError, open_hook, say
from airflow_provider_acumatica.client.errors import AcumaticaError
from airflow_provider_acumatica.client.schema import DATETIME, parse_swagger

TIMESTAMP_FIELDS = ("LastModifiedDateTime", "LastModified")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--conn-id", required=True, help="the Airflow connection whose endpoint to list")
    parser.add_argument("--config", help="a bundle config (acumatica.yaml): mark which of its tables are served")


def run(arguments: argparse.Namespace, stdin: TextIO, stdout: TextIO, stderr: TextIO) -> int:
    wanted = _config_tables(arguments.config, arguments.conn_id) if arguments.config else None
    hook = open_hook(arguments.conn_id)
    settings = hook.settings
    where = f"/entity/{settings.endpoint_name}/{settings.endpoint_version}/swagger.json"
    with hook:
        client = hook.get_conn()
        try:
            document = client.transport.request(
                "GET", client.entity_path("swagger.json"), authenticator=client.authenticator
            ).data
        except AcumaticaError as error:
            raise CommandError(
                f"swagger.json unavailable: {where} of {settings.instance_url} could not be read "
                f"({client.masker.redact(str(error))}). The endpoint and version must exist "
                "(airflow-acumatica check lists them)."
            ) from None
    entities = endpoint_entities(document or {})
    if not entities:
        raise CommandError(f"swagger.json unavailable: {where} declares no entities.")
    say(stdout, f"Endpoint {settings.endpoint_name} {settings.endpoint_version}: {len(entities)} entities")
    width = max(len(name) for name in entities)
    for name, fields in sorted(entities.items()):
        stamp = timestamp_field(fields) or "(none: full reloads)"
        say(stdout, f"  {name:<{width}}  key id  timestamp {stamp}  {len(fields)} fields")
    if wanted is None:
        return 0
    return _mark(wanted, entities, stdout)


def endpoint_entities(document: Mapping[str, Any]) -> Mapping[str, Mapping[str, str]]:
    """{entity: {field: field type}} of an OpenAPI 3 or 2 document (client.schema reads it, as the sync does)."""
    try:
        return parse_swagger(document).entities
    except ValueError:
        return {}


def timestamp_field(fields: Mapping[str, str]) -> str | None:
    return next((name for name in TIMESTAMP_FIELDS if fields.get(name) == DATETIME), None)


def _config_tables(path: str, conn_id: str) -> list:
    """The config's REST tables of the tenants on this connection (every tenant's when none is)."""
    from airflow_provider_acumatica.bundle.config import ConfigError, load_config

    try:
        config = load_config(path)
    except (ConfigError, OSError) as error:
        raise CommandError(str(error)) from None
    tenants = [tenant for tenant in config.tenants if tenant.acumatica_conn_id == conn_id] or list(config.tenants)
    seen, tables = set(), []
    for tenant in tenants:
        for table in tenant.tables:
            if table.name not in seen:
                seen.add(table.name)
                tables.append(table)
    return tables


def _mark(wanted: list, entities: Mapping[str, Mapping[str, str]], stdout: TextIO) -> int:
    say(stdout, "Tables of the config:")
    missing = 0
    for table in wanted:
        if table.source != "entity":
            say(stdout, f"  {table.name}: {table.source} over OData, not described by swagger.json")
            continue
        fields = entities.get(table.name)
        if fields is None:
            missing += 1
            say(stdout, f"  {table.name}: MISSING: this endpoint has no entity {table.name}")
        elif table.timestamp_field and table.timestamp_field not in fields:
            missing += 1
            say(stdout, f"  {table.name}: served, but without its timestamp field {table.timestamp_field}")
        else:
            say(stdout, f"  {table.name}: served")
    if missing:
        say(
            stdout,
            f"{missing} table(s) of the config cannot be synced from this endpoint: extend the endpoint in "
            "Acumatica (Web Service Endpoints, SM207060) or disable them in the config.",
        )
    return 1 if missing else 0
