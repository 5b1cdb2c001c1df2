"""Loads run in a writer process of their own, so that staging uses the machine's other core.

A load's Python work (converting values, binding them into INSERTs) holds the GIL, and so takes turns on one
core with the threads that decode Acumatica's pages (ADR 0003).
(PostgreSQL's binary COPY is encoded in C and worked by the server: it stays in the caller's process.)
A ``WriterLoad`` runs the same ``Load`` in a child Python process (``writer_process``)
and hands it each batch, pickled, over a pipe; the child stages a batch while the next ones are fetched.

- A thread of the child reads messages ahead, up to ``READ_AHEAD`` of them, while the child works: staging in place,
  the child moves ``MOVE_ROWS`` staged rows at a time (SQLite's work, the GIL released), during which a parent whose
  writes a full pipe refused would wait with the pages' decoding stopped. Memory stays bounded: a write waits once the
  child holds that many batches, pickled.
- A batch the child refuses is reported by the first call (write, mark or commit) after the child reached it (the
  commit at the latest, which waits for every batch) with its own exception type and message, the child's traceback
  chained to it; nothing more is staged after it.
- Nothing is half-written: the child commits only when told to. When this side leaves without committing, or dies
  (a killed task closes the pipe), the child leaves its load uncommitted, exactly as a failed in-process load does.
- The child's log records are logged again here, under their own logger names, at the next call that waits for it.
- The warehouse's URL, password included, travels over the pipe, never on a command line or in the environment.
- A column of aware UTC date-times (the hook's timestamps) travels as msgpack timestamps, not pickled datetimes, which
  cost far more to pack and unpack.
"""

from __future__ import annotations

import logging
import os
import pickle
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from multiprocessing.connection import Connection
from pathlib import Path
from types import TracebackType
from typing import Any

import msgspec
from sqlalchemy.engine import URL

from airflow_provider_acumatica.warehouse.columns import are_utc_datetimes
from airflow_provider_acumatica.warehouse.errors import WarehouseError
from airflow_provider_acumatica.warehouse.loader import Load, LoadResult, Warehouse
from airflow_provider_acumatica.warehouse.state import SyncState

log = logging.getLogger(__name__)

PACKAGE_LOGGER = "airflow_provider_acumatica"
"""The child's records of this logger and those below it are logged again by the parent."""
EXIT_TIMEOUT_SECONDS = 60
"""How long leaving a load waits for the child to drop what it staged and exit, before killing it."""
READ_AHEAD = 8
"""Messages (batches) the child holds read but not yet acted on, at most."""
_CHILD_PROGRAM = (
    "import sys; sys.path.append(sys.argv[1]); from airflow_provider_acumatica.warehouse.writer_process import main; "
    "main()"
)
"""The child's program; its argument is where this package lies here, for a caller that made it importable by a path
of its own. Appended to the path, it shadows nothing; and the module runs under its own name, so that what the child
pickles (``WriterUse``) unpickles here."""


@dataclass(frozen=True)
class WriterUse:
    """What a writer process cost: its CPU time and its own peak memory (None where the system does not say)."""

    cpu_seconds: float
    peak_memory_mb: float | None


@dataclass(frozen=True)
class _PackedInstants:
    """A column of aware UTC datetimes and Nones, packed as msgpack timestamps (which unpack as exactly those)."""

    packed: bytes


_pack = msgspec.msgpack.Encoder().encode
_unpack_instants = msgspec.msgpack.Decoder(list[datetime | None]).decode


def _packed(columns: Mapping[str, Sequence[Any]]) -> dict[str, Any]:
    """The batch with its columns of UTC date-times packed; a column shared by two fields stays one object (pickled
    once, and unpacked once: ``_last_modified`` is the timestamp field's list)."""
    by_id: dict[int, Any] = {}
    packed = {}
    for field, values in columns.items():
        if id(values) not in by_id:
            by_id[id(values)] = _PackedInstants(_pack(values)) if _all_utc_instants(values) else values
        packed[field] = by_id[id(values)]
    return packed


def _unpacked(columns: Mapping[str, Any]) -> dict[str, Sequence[Any]]:
    """``_packed``'s batch as it was given (a shared column still shared)."""
    by_id: dict[int, Sequence[Any]] = {}
    unpacked = {}
    for field, values in columns.items():
        if isinstance(values, _PackedInstants):
            if id(values) not in by_id:
                by_id[id(values)] = _unpack_instants(values.packed)
            values = by_id[id(values)]
        unpacked[field] = values
    return unpacked


def _all_utc_instants(values: Sequence[Any]) -> bool:
    """Whether the values are datetimes in ``timezone.utc`` or None, one at least a datetime (no subclass: those are
    pickled, to arrive as they left)."""
    first = next((value for value in values if value is not None), None)
    return first.__class__ is datetime and are_utc_datetimes(values)


class WriterProcessError(WarehouseError):
    """The writer process ended before it answered (killed, out of memory, crashed)."""


def load_in_writer_process(warehouse: Warehouse, **load_arguments: Any) -> Load | WriterLoad:
    """A load of ``warehouse`` (``Warehouse.load``'s arguments) run in a writer process where staging is Python's
    work (SQLite, the portable path); in this process for PostgreSQL's COPY, and where the warehouse's engine was
    handed in by the caller, as a child could not make the same one."""
    if not warehouse.owns_engine or not warehouse.dialect.stages_in_python:
        return warehouse.load(**load_arguments)
    return WriterLoad(warehouse.engine.url, warehouse.schema, warehouse.fast_path, load_arguments)


class WriterLoad:
    """A ``Load`` in a child process, used like one in a ``with`` block: ``write_columns``, ``mark_deleted``,
    ``commit``. It belongs to the thread that uses it."""

    def __init__(self, url: URL, schema: str | None, fast_path: bool, load_arguments: Mapping[str, Any]) -> None:
        self._opening = (
            "open",
            url,
            schema,
            fast_path,
            dict(load_arguments),
            logging.getLogger(PACKAGE_LOGGER).getEffectiveLevel(),
        )
        self.describe = f"load of tenant {load_arguments.get('tenant')!r} into {load_arguments.get('table')!r}"
        self._process: subprocess.Popen | None = None
        self._commands: Connection | None = None
        self._answers: Connection | None = None
        self._stderr: Any = None
        self.use: WriterUse | None = None
        """What the writer process cost, once the load is left."""

    def __enter__(self) -> WriterLoad:
        """Start the child and ask it to open the load, without waiting: it starts while the caller reads."""
        commands_read, commands_write = os.pipe()
        answers_read, answers_write = os.pipe()
        self._stderr = tempfile.TemporaryFile()
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-c", _CHILD_PROGRAM, str(Path(__file__).resolve().parents[2])],
                stdin=commands_read,
                stdout=answers_write,
                stderr=self._stderr,
            )
        except BaseException:
            for descriptor in (commands_read, commands_write, answers_read, answers_write):
                os.close(descriptor)
            self._stderr.close()
            raise
        finally:
            if self._process is not None:
                os.close(commands_read)
                os.close(answers_write)
        self._commands = Connection(commands_write, readable=False)
        self._answers = Connection(answers_read, writable=False)
        self._send(self._opening)
        return self

    @property
    def pid(self) -> int:
        """The writer process's id (while the load is open), for monitoring it."""
        if self._process is None:
            raise RuntimeError(f"{self.describe}: use it inside a 'with' block")
        return self._process.pid

    def write_columns(self, columns: Mapping[str, Sequence[Any]]) -> int:
        """Hand a batch held by field to the child (``Load.write_columns``); returns its rows."""
        self._raise_reported_failure()
        self._send(("write_columns", _packed(columns)))
        return len(next(iter(columns.values()), ()))

    def mark_deleted(self, keys: Iterable[Any], deleted_at: datetime, *, by_id: bool = False) -> int:
        """``Load.mark_deleted`` in the child."""
        return self._call("mark_deleted", list(keys), deleted_at, by_id=by_id)

    def commit(self, state: SyncState) -> LoadResult:
        """``Load.commit`` in the child: data and state in one transaction there."""
        return self._call("commit", state)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback_: TracebackType | None
    ) -> None:
        """Close the pipe (the child leaves an uncommitted load as a failed one), take its last log records, reap it."""
        if self._process is None:
            return
        try:
            self._commands.close()
            self._drain_answers(deadline=time.monotonic() + EXIT_TIMEOUT_SECONDS)
            self._process.wait(EXIT_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            log.warning("%s: the writer process did not exit within %d s; killed", self.describe, EXIT_TIMEOUT_SECONDS)
            self._process.kill()
            self._process.wait()
        finally:
            self._answers.close()
            self._stderr.close()
            self._process = None

    # -- the pipe -------------------------------------------------------------------------------------

    def _call(self, name: str, *arguments: Any, **keywords: Any) -> Any:
        self._raise_reported_failure()
        self._send((name, arguments, keywords))
        return self._answer()

    def _send(self, message: tuple) -> None:
        if self._process is None:
            raise RuntimeError(f"{self.describe}: use it inside a 'with' block")
        try:
            self._commands.send_bytes(pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL))
        except (BrokenPipeError, ConnectionResetError):
            self._answer()  # the child's reason, when it gave one
            raise self._ended_unexpectedly() from None

    def _raise_reported_failure(self) -> None:
        """Raise the failure the child reported of an earlier write, if it reported one."""
        if self._answers.poll():
            self._answer()

    def _answer(self) -> Any:
        """The child's next answer: its value, or its failure raised here."""
        try:
            kind, payload, records = pickle.loads(self._answers.recv_bytes())
        except EOFError:
            raise self._ended_unexpectedly() from None
        _log_again(records)
        if kind == "failed":
            error, child_traceback = payload
            raise error from _ChildTraceback(child_traceback)
        return payload

    def _drain_answers(self, deadline: float) -> None:
        """Read what the child still says until it closes the pipe (or the deadline passes: it is then killed): log
        records, failures no call asked for, and at last what it cost (logged, and kept in ``use``)."""
        while True:
            if not self._answers.poll(max(0.0, deadline - time.monotonic())):
                raise subprocess.TimeoutExpired(self._process.args, EXIT_TIMEOUT_SECONDS)
            try:
                kind, payload, records = pickle.loads(self._answers.recv_bytes())
            except EOFError:
                return
            _log_again(records)
            if kind == "closed":
                self.use = payload
                memory = f", peak memory {payload.peak_memory_mb:.0f} MB" if payload.peak_memory_mb else ""
                log.info("%s: writer process CPU %.1f s%s", self.describe, payload.cpu_seconds, memory)

    def _ended_unexpectedly(self) -> WriterProcessError:
        self._stderr.seek(0)
        lines = self._stderr.read().decode(errors="replace").strip().splitlines()
        said = f": {lines[-1]}" if lines else ""
        return WriterProcessError(
            f"{self.describe}: the writer process ended unexpectedly{said}; the load did not "
            "finish, and a commit it had not finished is rolled back. Run the task again; if it "
            "recurs, check the worker's memory and logs."
        )


class _ChildTraceback(Exception):
    """The writer process's traceback of a failure, chained to the failure raised here."""

    def __str__(self) -> str:
        return f"\n\nIn the writer process:\n{self.args[0]}"


def _log_again(records: Sequence[tuple[str, int, str]]) -> None:
    for name, level, message in records:
        logging.getLogger(name).log(level, "%s", message)
