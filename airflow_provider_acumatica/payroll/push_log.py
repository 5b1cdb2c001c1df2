"""The push log: per tenant and activity, the time entry it became, how its last push ended, and what was sent.

It is a record, not the truth: a crash can fall between Acumatica's answer and the log's write, so the publisher
always looks an entry up in Acumatica before creating it. The log saves work (an activity pushed with the same
payload is not looked at again) and tells people what happened to each activity.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import Column, Engine, MetaData, String, Table, Text, delete, func, insert, inspect, select

from airflow_provider_acumatica.warehouse.columns import UtcDateTime

PUSH_LOG_TABLE = "acumatica_payroll_push_log"
STATUSES = ("pushed", "updated", "unchanged", "rejected", "failed", "locked")
DONE = ("pushed", "updated", "unchanged")
LOOKUP_CHUNK = 500
"""Activity ids per query when reading the log (well below every database's limit of bound parameters)."""
"""Statuses after which an activity whose payload has not changed needs nothing more."""


@dataclass(frozen=True)
class Outcome:
    """How one activity's push ended."""

    activity_id: str | None
    status: str
    external_ref: str | None = None
    time_entry_id: str | None = None
    payload_hash: str | None = None
    error: str | None = None

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"push status {self.status!r} is not one of {', '.join(STATUSES)}")


def push_log_table(schema: str | None) -> Table:
    return Table(
        PUSH_LOG_TABLE,
        MetaData(),
        Column("tenant", String(255), primary_key=True),
        Column("activity_id", String(255), primary_key=True),
        Column("time_entry_id", String(64)),
        Column("external_ref", String(64)),
        Column("status", String(16), nullable=False),
        Column("error", Text()),
        Column("payload_hash", String(64)),
        Column("pushed_at", UtcDateTime(), nullable=False),
        schema=schema,
    )


class PushLog:
    """The push log of one tenant in the warehouse."""

    def __init__(self, engine: Engine, schema: str | None, tenant: str) -> None:
        self.engine = engine
        self.table = push_log_table(schema)
        self.tenant = tenant

    def create(self) -> None:
        """Create the log table if it does not exist yet."""
        with self.engine.begin() as connection:
            if not inspect(connection).has_table(PUSH_LOG_TABLE, schema=self.table.schema):
                self.table.create(connection)

    def previous(self, activity_ids: Iterable[str]) -> dict[str, Outcome]:
        """The logged outcome of each of these activities that has one."""
        wanted = sorted(set(activity_ids))
        log = self.table
        found: dict[str, Outcome] = {}
        with self.engine.connect() as connection:
            for start in range(0, len(wanted), LOOKUP_CHUNK):  # the tenant's history may be long: read only these
                chunk = wanted[start : start + LOOKUP_CHUNK]
                where = (func.lower(log.c.tenant) == self.tenant.lower()) & log.c.activity_id.in_(chunk)
                for row in connection.execute(select(log).where(where)).mappings():
                    found[row["activity_id"]] = _outcome(row)
        return found

    def record(self, outcome: Outcome) -> None:
        """Replace the activity's line with this outcome, in its own transaction (written as soon as known)."""
        log = self.table
        row = {
            "tenant": self.tenant,
            "activity_id": outcome.activity_id,
            "time_entry_id": outcome.time_entry_id,
            "external_ref": outcome.external_ref,
            "status": outcome.status,
            "error": outcome.error,
            "payload_hash": outcome.payload_hash,
            "pushed_at": datetime.now(timezone.utc),
        }
        with self.engine.begin() as connection:
            connection.execute(
                delete(log).where(
                    func.lower(log.c.tenant) == self.tenant.lower(), log.c.activity_id == outcome.activity_id
                )
            )
            connection.execute(insert(log), row)


def _outcome(row) -> Outcome:
    return Outcome(
        row["activity_id"], row["status"], row["external_ref"], row["time_entry_id"], row["payload_hash"], row["error"]
    )
