"""The writer process's side of a load run there (``warehouse.writer``): it runs one ``Load`` as the task's
messages say, reading them ahead on a thread of its own, and answers with results, failures and its log records.
"""

from __future__ import annotations

import logging
import os
import pickle
import queue
import sys
import threading
import traceback
from collections.abc import Iterator
from contextlib import ExitStack
from multiprocessing.connection import Connection
from typing import Any

from airflow_provider_acumatica.warehouse.errors import WarehouseError
from airflow_provider_acumatica.warehouse.loader import Load, Warehouse
from airflow_provider_acumatica.warehouse.writer import PACKAGE_LOGGER, READ_AHEAD, WriterUse, _unpacked

_WAITED_FOR = ("mark_deleted", "commit")
"""Calls whose answer the task waits for; writes are answered only when they fail."""


class _LeftUncommitted(Exception):
    """Raised into the child's load when the parent leaves without committing: the load is left as a failed one."""


class _RecordKeeper(logging.Handler):
    """Keeps the child's log records until the next answer carries them to the parent."""

    LIMIT = 1000

    def __init__(self) -> None:
        super().__init__()
        self.records: list[tuple[str, int, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        if len(self.records) < self.LIMIT:
            self.records.append((record.name, record.levelno, record.getMessage()))

    def taken(self) -> list[tuple[str, int, str]]:
        records, self.records = self.records, []
        return records


def serve(commands: Connection, answers: Connection) -> None:
    """The child's side: run one load as the parent's messages say, until the parent closes the pipe."""
    keeper = _RecordKeeper()
    package_log = logging.getLogger(PACKAGE_LOGGER)
    package_log.addHandler(keeper)
    package_log.propagate = False

    def answer(kind: str, payload: Any) -> None:
        answers.send_bytes(pickle.dumps((kind, payload, keeper.taken()), protocol=pickle.HIGHEST_PROTOCOL))

    load: Load | None = None
    failure: tuple[BaseException, str] | None = None
    try:
        with ExitStack() as stack:
            for message in _messages(commands):
                name = message[0]
                if failure is not None:  # the parent has been told; answer what it waits for with the same failure
                    if name in _WAITED_FOR:
                        answer("failed", failure)
                    continue
                try:
                    if name == "open":
                        _, url, schema, fast_path, load_arguments, level = message
                        package_log.setLevel(level)
                        warehouse = stack.enter_context(Warehouse(url, schema, fast_path=fast_path))
                        load = stack.enter_context(warehouse.load(**load_arguments))
                    elif name == "write_columns":
                        load.write_columns(_unpacked(message[1]))
                    else:
                        _, arguments, keywords = message
                        answer("done", getattr(load, name)(*arguments, **keywords))
                except Exception as error:
                    failure = (_portable(error), "".join(traceback.format_exception(error)))
                    answer("failed", failure)
            if load is not None and not load.committed:
                raise _LeftUncommitted
    except _LeftUncommitted:
        pass
    finally:
        try:
            answer("closed", _own_use())
        except (BrokenPipeError, ConnectionResetError):  # the parent is gone
            pass


def _own_use() -> WriterUse:
    """What this process cost: CPU, and its own peak memory where Linux tells it."""
    times = os.times()
    try:
        with open("/proc/self/status") as status:
            peak = next((int(line.split()[1]) / 1024 for line in status if line.startswith("VmHWM:")), None)
    except OSError:
        peak = None
    return WriterUse(cpu_seconds=times.user + times.system, peak_memory_mb=peak)


def _messages(commands: Connection) -> Iterator[tuple]:
    """The parent's messages until it closes the pipe (a message cut short means it died writing it), read ahead by
    a thread of their own (see the module docstring), kept pickled (compact) until their turn."""
    received: queue.Queue[bytes | None] = queue.Queue(READ_AHEAD)
    threading.Thread(target=_receive, args=(commands, received), name="writer-read-ahead", daemon=True).start()
    while (message := received.get()) is not None:
        yield pickle.loads(message)


def _receive(commands: Connection, received: queue.Queue[bytes | None]) -> None:
    """Queue each message as it arrives, then None once the parent has closed the pipe."""
    try:
        while True:
            received.put(commands.recv_bytes())
    except (EOFError, OSError):
        received.put(None)


def _portable(error: BaseException) -> BaseException:
    """The error itself where it survives pickling; else a WarehouseError saying what it was."""
    try:
        pickle.loads(pickle.dumps(error))
        return error
    except Exception:
        return WarehouseError(f"{type(error).__name__}: {error}")


def main() -> None:
    """Entry point of the child: commands on standard input, answers on standard output (moved aside first, so
    that nothing else printed can garble them)."""
    answers = Connection(os.dup(1), readable=False)
    os.dup2(2, 1)
    commands = Connection(os.dup(0), writable=False)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    serve(commands, answers)
    sys.stderr.flush()
    os._exit(0)  # the load is closed and the parent told: tearing down the interpreter would only keep it waiting
