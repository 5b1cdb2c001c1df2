"""What every `airflow-acumatica` command shares: finding the connection, and writing to the terminal."""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import Iterator
from typing import TextIO

from airflow_provider_acumatica.hooks.acumatica import AcumaticaHook

# Airflow's switch between server and worker secrets lookups. Private, but Airflow offers no public way for a
# command to read connections from the metadata DB: its own `airflow connections` command sets it to "server"
# (airflow/cli/commands/connection_command.py), as do the API server, scheduler and DAG processor.
_PROCESS_CONTEXT = "_AIRFLOW_PROCESS_CONTEXT"


class CommandError(Exception):
    """The command failed; the message says why and what to do (never a secret). Exit status 1."""


@contextlib.contextmanager
def metadata_db_connections() -> Iterator[None]:
    """Let a command find connections kept in the metadata database, as `airflow connections` does: outside
    tasks and servers, Airflow 3 reads only environment variables and external secrets backends."""
    previous = os.environ.get(_PROCESS_CONTEXT)
    os.environ.setdefault(_PROCESS_CONTEXT, "server")
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(_PROCESS_CONTEXT, None)


def open_hook(conn_id: str) -> AcumaticaHook:
    """The hook of `conn_id`, or CommandError naming the connection and what to set."""
    from airflow.exceptions import AirflowNotFoundException

    from airflow_provider_acumatica.client.errors import AcumaticaError

    try:
        return AcumaticaHook(conn_id)
    except AirflowNotFoundException:
        raise CommandError(
            f"Acumatica connection {conn_id!r} is not defined: create it (Admin > Connections, "
            f"or AIRFLOW_CONN_{conn_id.upper()})."
        ) from None
    except (AcumaticaError, ValueError) as error:
        raise CommandError(str(error)) from None


def run_command(run, arguments: argparse.Namespace, stdin: TextIO, stdout: TextIO, stderr: TextIO) -> int:
    """Run a command's `run` where it finds the metadata DB's connections; a CommandError is exit status 1."""
    try:
        with metadata_db_connections():
            return run(arguments, stdin, stdout, stderr)
    except CommandError as error:
        say(stderr, str(error))
        return 1


def positive_seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = float("nan")
    if not seconds > 0:
        raise argparse.ArgumentTypeError(f"must be a number of seconds > 0, got {text!r}")
    return seconds


def say(stream: TextIO, text: str) -> None:
    stream.write(text + "\n")
    stream.flush()
