"""Command line of the bundle: ``validate`` a config, or create/resize its tenants' ``pools``.

    python -m airflow_provider_acumatica.bundle validate [--config dags/acumatica.yaml]
    python -m airflow_provider_acumatica.bundle pools [--config ...] [--dry-run]
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from airflow_provider_acumatica.bundle.config import BundleConfig, ConfigError, load_config
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
    else:
        sync_pools(config, airflow=arguments.airflow, dry_run=arguments.dry_run)
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m airflow_provider_acumatica.bundle", description=__doc__)
    parser.add_argument(
        "command",
        choices=("validate", "pools"),
        help="validate: check the config, list tenants and tables; pools: `airflow pools set` per tenant",
    )
    parser.add_argument(
        "--config",
        default=os.environ.get("ACUMATICA_DAGS_CONFIG") or DEFAULT_CONFIG,
        help=f"config file (default: $ACUMATICA_DAGS_CONFIG, else {DEFAULT_CONFIG})",
    )
    parser.add_argument("--dry-run", action="store_true", help="pools: print the commands, run nothing")
    parser.add_argument("--airflow", default="airflow", help="pools: the airflow executable")
    return parser


def _print_summary(config: BundleConfig) -> None:
    print(f"{config.path}: {len(config.tenants)} tenant(s)")
    for tenant in config.tenants:
        print(f"  {tenant.name}: {tenant.acumatica_conn_id}, pool {tenant.pool} ({tenant.pool_slots} slots)")
        for table in tenant.tables:
            print(f"    {table.name}: {table.mode}, {table.source}, every {table.schedule!r}")


if __name__ == "__main__":
    sys.exit(main())
