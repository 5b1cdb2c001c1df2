"""`airflow-acumatica sync`: one table of one tenant into a warehouse, outside Airflow, with a progress bar.

For a first load or a trial: the very operator the DAGs run (`AcumaticaToSqlOperator`, so the same exactly-once
load and sync state), given a warehouse URL instead of a connection. The bar shows rows, rows/s and, when the
read plan estimated the window (a first or full load), the total and the time left.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import time
from collections.abc import Iterator
from typing import TextIO

from airflow_provider_acumatica.cli.common import CommandError, open_hook, say
from airflow_provider_acumatica.client.errors import AcumaticaError
from airflow_provider_acumatica.client.limits import DEFAULT_BATCH_SIZE, ENTITY, PAGE_SIZES, SOURCES
from airflow_provider_acumatica.extract.plan import INCREMENTAL, MODES

_PLAN_LOGGER = "airflow_provider_acumatica.extract.slicing"
_INTERACTIVE_SECONDS = 0.2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--conn-id", required=True, help="the Airflow connection of the tenant")
    parser.add_argument("--table", required=True, help="REST entity (e.g. Project), DAC or generic inquiry")
    parser.add_argument("--warehouse", required=True, help="SQLAlchemy URL of the warehouse (e.g. sqlite:///w.db)")
    parser.add_argument("--mode", choices=MODES, default=INCREMENTAL)
    parser.add_argument("--source", choices=SOURCES, default=ENTITY)
    parser.add_argument(
        "--timestamp-field",
        default="LastModifiedDateTime",
        help="the modification timestamp; 'none' for tables without one (full mode)",
    )
    parser.add_argument("--tenant", help="the _tenant value of the rows (default the connection's tenant)")
    parser.add_argument("--target-schema", help="warehouse schema (default the URL's)")
    parser.add_argument(
        "--batch-size",
        type=int,
        default=DEFAULT_BATCH_SIZE,
        help=f"records per request, {PAGE_SIZES} (default {DEFAULT_BATCH_SIZE})",
    )


def run(arguments: argparse.Namespace, stdin: TextIO, stdout: TextIO, stderr: TextIO) -> int:
    open_hook(arguments.conn_id).close()  # a missing or invalid connection is told before anything starts
    timestamp = None if arguments.timestamp_field.lower() == "none" else arguments.timestamp_field
    bar = ProgressBar(stderr, arguments.table)
    try:
        operator = _operator_class()(
            progress=bar,
            task_id=f"sync_{arguments.table}",
            table=arguments.table,
            acumatica_conn_id=arguments.conn_id,
            sql_url=arguments.warehouse,
            source=arguments.source,
            mode=arguments.mode,
            timestamp_field=timestamp,
            tenant=arguments.tenant,
            target_schema=arguments.target_schema,
            batch_size=arguments.batch_size,
        )
    except (ValueError, TypeError) as error:
        raise CommandError(f"Not synced: {error}") from None
    from airflow.sdk.exceptions import AirflowException  # the operator's permanent failures: Airflow's exception

    with bar.listening():
        try:
            summary = operator.execute({})
        except (AcumaticaError, AirflowException, ValueError) as error:  # AirflowFailException: a permanent error
            raise CommandError(f"Not synced: {error}. Nothing was committed; run again once fixed.") from None
    bar.finish()
    say(
        stdout,
        f"Synced {summary['table']} of tenant {summary['tenant']} ({summary['mode']}): {summary['rows']} rows "
        f"read, {summary['inserted']} inserted, {summary['updated']} updated, {summary['deleted']} marked "
        f"deleted; watermark {summary['watermark'] or '-'}.",
    )
    return 0


def _operator_class():
    """The DAGs' operator, counting each batch its reader hands over into the progress bar."""
    from airflow_provider_acumatica.operators.acumatica_to_sql import AcumaticaToSqlOperator

    class CountedSync(AcumaticaToSqlOperator):
        def __init__(self, *, progress: ProgressBar, **kwargs) -> None:
            super().__init__(**kwargs)
            self._bar = progress

        def _reader(self, source, fetch, page_size):
            reader = super()._reader(source, fetch, page_size)
            if fetch != source.fetch:  # listing keys for deletions: not rows
                return reader
            read, bar = reader.read, self._bar

            def counted(window):
                for batch in read(window):
                    yield batch
                    bar.add(len(batch))

            reader.read = counted
            return reader

    return CountedSync


class ProgressBar(logging.Handler):
    """Draws one line, redrawn in place on a terminal: rows, rows/s, and the ETA once the total is known (from
    the read plan's estimate of the window's records, which the slice reader logs)."""

    def __init__(self, stream: TextIO, table: str) -> None:
        super().__init__(logging.INFO)
        self.stream = stream
        self.table = table
        self.rows = 0
        self.total: int | None = None
        self.started = time.monotonic()
        self._drawn = 0.0
        self._tty = stream.isatty()

    def emit(self, record: logging.LogRecord) -> None:
        args = record.args if isinstance(record.args, tuple) else ()
        if "records planned as" in str(record.msg) and len(args) == 4:  # "window %s of about %d records planned..."
            self.total = (self.total or 0) + int(args[2])

    def add(self, rows: int) -> None:
        self.rows += rows
        self.draw()

    def line(self) -> str:
        elapsed = max(time.monotonic() - self.started, 1e-6)
        rate = self.rows / elapsed
        if self.total:
            done = min(self.rows / self.total, 1.0)
            filled = int(done * 30)
            left = (self.total - self.rows) / rate if rate and self.rows < self.total else 0
            return (
                f"{self.table} [{'#' * filled}{'.' * (30 - filled)}] {self.rows:,}/{self.total:,} rows "
                f"{rate:,.0f} rows/s ETA {left:,.0f} s"
            )
        return f"{self.table}: {self.rows:,} rows {rate:,.0f} rows/s"

    def draw(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and self._tty and now - self._drawn < _INTERACTIVE_SECONDS:
            return
        self._drawn = now
        self.stream.write(("\r" + self.line()) if self._tty else self.line() + "\n")
        self.stream.flush()

    def finish(self) -> None:
        """The last line, with the rows read as the total: the plan's figure was an estimate."""
        if self.total is not None:
            self.total = self.rows
        self.draw(force=True)
        if self._tty:
            self.stream.write("\n")

    @contextlib.contextmanager
    def listening(self) -> Iterator[ProgressBar]:
        """Hear the slice reader's log of the planned window's size while the load runs."""
        logger = logging.getLogger(_PLAN_LOGGER)
        level = logger.level
        logger.addHandler(self)
        logger.setLevel(logging.INFO)
        try:
            yield self
        finally:
            logger.removeHandler(self)
            logger.setLevel(level)
