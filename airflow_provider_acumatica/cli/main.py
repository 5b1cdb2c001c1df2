"""`airflow-acumatica`: connect, check, list and sync an Acumatica tenant from a terminal.

Each command reads the Airflow connection like Airflow does (environment, secrets backend, metadata DB),
exits 0 when it did its job and 1 when not, with the reason and what to do on stderr.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TextIO

from airflow_provider_acumatica.cli import check, connect, sync, tables
from airflow_provider_acumatica.cli.common import run_command

COMMANDS = {
    "connect": (connect, "authorize an oauth2_code connection in a browser and store its refresh-token chain"),
    "check": (check, "sign in, list endpoints, read one record, compare the profile time zone, sign out"),
    "tables": (tables, "what the endpoint serves (swagger.json): entities, keys, timestamps; the config's tables"),
    "sync": (sync, "load one table into a warehouse outside Airflow, with a progress bar"),
}


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="airflow-acumatica", description=__doc__.splitlines()[0])
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module, summary) in COMMANDS.items():
        module.add_arguments(commands.add_parser(name, help=summary, description=summary))
    return top


def main(
    argv: Sequence[str] | None = None,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    arguments = parser().parse_args(argv)
    module = COMMANDS[arguments.command][0]
    return run_command(module.run, arguments, stdin or sys.stdin, stdout or sys.stdout, stderr or sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
