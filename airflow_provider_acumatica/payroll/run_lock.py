"""One payroll run per tenant at a time, whatever the workers: a lock in the warehouse the run holds while it
looks entries up and creates them (a look-up and a create are two requests; two runs between them would both
create). The lock goes with the process: a killed run never leaves it held.

SQLite: an exclusive `flock` on a file beside the database. PostgreSQL: a session advisory lock. Other databases:
a row lock (`SELECT ... FOR UPDATE`) in a transaction held open for the run.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
from collections.abc import Iterator

import tenacity
from sqlalchemy import Column, Engine, MetaData, String, Table, insert, inspect, select, text
from sqlalchemy.exc import IntegrityError

from airflow_provider_acumatica.utils.retry import RetryPolicy

LOCK_TABLE = "acumatica_payroll_lock"
_LOGGER = logging.getLogger(f"airflow.task.{__name__}")  # standard logging: Airflow routes it into the task log


class PayrollLockTimeout(RuntimeError):
    """Another payroll run of the tenant held the lock for longer than this run would wait."""


@contextlib.contextmanager
def tenant_lock(engine: Engine, schema: str | None, tenant: str, *, timeout: float) -> Iterator[None]:
    """Hold the tenant's payroll lock for the block; wait for it at most `timeout` seconds."""
    name = f"{schema or ''}:{tenant.lower()}"
    if engine.dialect.name == "sqlite":
        lock = _file_lock(engine, name, timeout)
    elif engine.dialect.name == "postgresql":
        lock = _advisory_lock(engine, name, timeout)
    else:
        lock = _row_lock(engine, schema, name)
    with lock:
        yield


@contextlib.contextmanager
def _file_lock(engine: Engine, name: str, timeout: float) -> Iterator[None]:
    database = engine.url.database
    if not database or database == ":memory:":
        yield  # one process owns an in-memory database
        return
    path = f"{database}-payroll-{hashlib.sha256(name.encode()).hexdigest()[:12]}.lock"
    with open(path, "ab") as file:
        _wait(lambda: _try_flock(file), name, timeout)
        try:
            yield
        finally:
            fcntl.flock(file, fcntl.LOCK_UN)


def _try_flock(file) -> bool:
    try:
        fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


@contextlib.contextmanager
def _advisory_lock(engine: Engine, name: str, timeout: float) -> Iterator[None]:
    key = int.from_bytes(hashlib.sha256(f"acumatica_payroll:{name}".encode()).digest()[:8], "big", signed=True)
    with engine.connect() as connection:

        def attempt() -> bool:
            taken = connection.execute(text("select pg_try_advisory_lock(:key)"), {"key": key}).scalar()
            connection.commit()
            return bool(taken)

        _wait(attempt, name, timeout)
        try:
            yield
        finally:
            connection.execute(text("select pg_advisory_unlock(:key)"), {"key": key})
            connection.commit()


@contextlib.contextmanager
def _row_lock(engine: Engine, schema: str | None, name: str) -> Iterator[None]:
    locks = Table(LOCK_TABLE, MetaData(), Column("name", String(255), primary_key=True), schema=schema)
    with engine.begin() as connection:
        if not inspect(connection).has_table(LOCK_TABLE, schema=schema):
            locks.create(connection)
    with contextlib.suppress(IntegrityError), engine.begin() as connection:
        connection.execute(insert(locks), {"name": name})
    with engine.begin() as connection:
        connection.execute(select(locks).where(locks.c.name == name).with_for_update())
        yield


def _wait(attempt, name: str, timeout: float) -> None:
    """Try `attempt` until it succeeds, backing off up to 5 s between tries; PayrollLockTimeout after `timeout`."""
    if attempt():
        return
    _LOGGER.info("Payroll of %s: another run of this tenant is publishing; waiting up to %.0f s for it", name, timeout)
    retrying = RetryPolicy(None, timeout, 0.2, cap_seconds=5.0, jitter=False).retrying(
        tenacity.retry_if_result(lambda taken: not taken)
    )
    try:
        retrying(attempt)
    except tenacity.RetryError:
        raise PayrollLockTimeout(
            f"payroll of tenant {name.split(':', 1)[1]!r}: another run held the publishing "
            f"lock for more than {timeout:.0f} s; let it finish, then run again (or raise "
            "lock_timeout)"
        ) from None
