"""Whether a hidden table (a SQLite first load staging in place) belongs to a load still running, or was left behind.

A killed process cannot drop its hidden table, so the next load of the same tenant and table drops the ones it
finds; but a hidden table may as well be that of a run of the same tenant and table still going on (a backfill
beside a scheduled run, a key reconciliation on its own schedule). So a load holds an exclusive lock on a file
beside the database for as long as its hidden table exists: the operating system releases a process's locks when
it dies, however it was killed, so a table whose lock is held belongs to a live load and stays (ADR 0013).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from collections.abc import Callable, Mapping
from typing import BinaryIO

log = logging.getLogger(__name__)


class HiddenTableLock:
    """An exclusive lock on a hidden table's lock file: held by its load from before the table exists until after it
    is renamed or dropped; taken by a load that finds the table, to drop it, only when no live load holds it."""

    def __init__(self, path: str, file: BinaryIO) -> None:
        self.path = path
        self._file: BinaryIO | None = file

    @classmethod
    def acquire(cls, path: str) -> HiddenTableLock | None:
        """Lock the file at `path`, created if missing (a table a killed load made before it had one); None when a
        live load holds it."""
        file = open(path, "ab")  # noqa: SIM115 - held open while locked, closed by release()
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            file.close()
            return None
        except BaseException:
            file.close()
            raise
        return cls(path, file)

    def release(self) -> None:
        """Remove the lock file, then let go of its lock (call it once the table is renamed or dropped)."""
        if self._file is None:
            return
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        self._file.close()
        self._file = None


def drop_left_behind(lock_paths: Mapping[str, str | None], drop: Callable[[str], None], owner: str) -> None:
    """Drop each hidden table of ``lock_paths`` (name -> its lock file) whose lock no live load holds, holding the
    lock while ``drop`` drops it; a table whose lock is held, or that has no lock file (a database in memory, which
    no other process sees), belongs to a load still running and stays. ``owner`` names the tables' table and tenant
    in the log."""
    for name, path in lock_paths.items():
        lock = HiddenTableLock.acquire(path) if path else None
        if lock is None:
            log.info(
                "%s: %r belongs to a load still running (its lock is held, or the database is in memory, where no "
                "other process could have left it), left to it",
                owner,
                name,
            )
            continue
        try:
            log.warning("%s: dropping %r, left by a load that did not finish", owner, name)
            drop(name)
        finally:
            lock.release()
