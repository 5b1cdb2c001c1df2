"""How each database is written: the dialect of an engine (SQLite, PostgreSQL, or portable SQL) and the engine to
load through."""

from __future__ import annotations

import logging

from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import URL, make_url

from airflow_provider_acumatica.warehouse.portable import MergeCounts as MergeCounts  # public: what a merge did
from airflow_provider_acumatica.warehouse.portable import WarehouseDialect
from airflow_provider_acumatica.warehouse.postgres import PostgresDialect
from airflow_provider_acumatica.warehouse.sqlite import SqliteDialect, create_sqlite_engine

log = logging.getLogger(__name__)


def create_warehouse_engine(target: str | URL | Engine) -> tuple[Engine, bool]:
    """The engine to load through, and whether we created it (and so must dispose of it).

    PostgreSQL URLs get the psycopg 3 driver. SQLite always gets an engine of ours (for an Engine we
    are given too, on the same file): WAL journal, a busy timeout, and BEGIN IMMEDIATE for writes.
    """
    if isinstance(target, Engine):
        if target.dialect.name != "sqlite":
            return target, False
        url = target.url
    else:
        url = make_url(target)
    if url.get_backend_name() != "sqlite":
        if url.drivername in ("postgresql", "postgres"):
            url = url.set(drivername="postgresql+psycopg")
        return create_engine(url), True
    return create_sqlite_engine(url), True


def dialect_for(engine: Engine, *, fast_path: bool = True) -> WarehouseDialect:
    """The way to write to this engine's database."""
    if engine.dialect.name == "sqlite":
        return SqliteDialect(fast_path)
    if engine.dialect.name == "postgresql" and engine.dialect.driver == "psycopg":
        return PostgresDialect(fast_path)
    log.info("Warehouse dialect %s+%s: using portable SQL", engine.dialect.name, engine.dialect.driver)
    return WarehouseDialect(fast_path=False)
