"""Command line of the bundle: ``validate`` a config, create/resize its tenants' ``pools``, or describe the
warehouse its tables land in (``dictionary``: Markdown; ``dbt-sources``: a dbt ``sources.yml``).

    python -m airflow_provider_acumatica.bundle validate [--config dags/acumatica.yaml]
    python -m airflow_provider_acumatica.bundle pools [--config ...] [--dry-run]
    python -m airflow_provider_acumatica.bundle dictionary [--config ...] [--output FILE]
    python -m airflow_provider_acumatica.bundle dbt-sources [--config ...] [--output models/sources.yml]

``dictionary`` and ``dbt-sources`` read each tenant's field types from Acumatica (its Airflow connection).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from airflow_provider_acumatica.bundle.config import BundleConfig, ConfigError, load_config
from airflow_provider_acumatica.bundle.dictionary import (
    AcumaticaFields,
    dbt_sources,
    dictionary_markdown,
    warehouse_dictionary,
)
from airflow_provider_acumatica.bundle.pools import sync_pools

DEFAULT_CONFIG = "dags/acumatica.yaml"


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; a bad config prints its error and exits with status 2."""
    arguments = _parser().parse_args(argv)
    try:
        config = load_config(arguments.config)
    except ConfigError as error:
        print(error, file=sys.stderr)
        return 2
    if arguments.command == "validate":
        _print_summary(config)
    elif arguments.command == "pools":
        sync_pools(config, airflow=arguments.airflow, dry_run=arguments.dry_run)
    else:
        _write(_describe_warehouse(config, arguments.command), arguments.output)
    return 0


def _describe_warehouse(config: BundleConfig, command: str) -> str:
    from airflow_provider_acumatica.hooks.acumatica import AcumaticaHook

    fields = AcumaticaFields(lambda conn_id: AcumaticaHook(acumatica_conn_id=conn_id))
    try:
        described = warehouse_dictionary(config, fields)
    finally:
        fields.close()
    return dictionary_markdown(described) if command == "dictionary" else dbt_sources(described)


def _write(text: str, output: str | None) -> None:
    if output is None:
        sys.stdout.write(text)
        return
    with open(output, "w", encoding="utf-8") as file:
        file.write(text)
    print(f"wrote {output}")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m airflow_provider_acumatica.bundle", description=__doc__)
    parser.add_argument(
        "command",
        choices=("validate", "pools", "dictionary", "dbt-sources"),
        help="validate: check the config, list tenants and tables; pools: `airflow pools set` per tenant; "
        "dictionary: the warehouse's tables and columns (Markdown); dbt-sources: a dbt sources.yml",
    )
    parser.add_argument(
        "--config",
        default=os.environ.get("ACUMATICA_DAGS_CONFIG") or DEFAULT_CONFIG,
        help=f"config file (default: $ACUMATICA_DAGS_CONFIG, else {DEFAULT_CONFIG})",
    )
    parser.add_argument("--dry-run", action="store_true", help="pools: print the commands, run nothing")
    parser.add_argument("--airflow", default="airflow", help="pools: the airflow executable")
    parser.add_argument("--output", help="dictionary, dbt-sources: write to this file instead of the terminal")
    return parser


def _print_summary(config: BundleConfig) -> None:
    print(f"{config.path}: {len(config.tenants)} tenant(s)")
    for tenant in config.tenants:
        print(f"  {tenant.name}: {tenant.acumatica_conn_id}, pool {tenant.pool} ({tenant.pool_slots} slots)")
        for table in tenant.tables:
            print(f"    {table.name}: {table.mode}, {table.source}, every {table.schedule!r}")


if __name__ == "__main__":
    sys.exit(main())
