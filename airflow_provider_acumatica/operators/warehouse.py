"""The warehouse an operator writes to: one of `sql_conn_id` (an Airflow connection) or `sql_url`."""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseHook
from sqlalchemy.engine import URL


def check_warehouse_arguments(where: str, sql_conn_id: str | None, sql_url: str | None) -> None:
    """Refuse, naming the task, anything but exactly one way to the warehouse."""
    if (sql_conn_id is None) == (sql_url is None):
        raise ValueError(f"{where}: give exactly one of `sql_conn_id` or `sql_url` for the warehouse.")


def warehouse_target(sql_conn_id: str | None, sql_url: str | None) -> str | URL:
    """The SQLAlchemy URL of the warehouse: `sql_url`, or the one of connection `sql_conn_id`."""
    return sql_url or warehouse_url(BaseHook.get_connection(sql_conn_id))


def warehouse_url(connection: Any) -> str | URL:
    """SQLAlchemy URL of an Airflow connection: extra `sqlalchemy_url`, sqlite, postgres, or its own URI."""
    extra = connection.extra_dejson
    if extra.get("sqlalchemy_url"):
        return extra["sqlalchemy_url"]
    conn_type = (connection.conn_type or "").lower()
    if conn_type == "sqlite":
        return f"sqlite:///{connection.host}"
    if conn_type in ("postgres", "postgresql"):
        return URL.create(
            "postgresql+psycopg",
            username=connection.login or None,
            password=connection.password or None,
            host=connection.host or None,
            port=connection.port or None,
            database=connection.schema or None,
        )
    return connection.get_uri()
