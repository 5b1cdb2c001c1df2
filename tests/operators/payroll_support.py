"""Time activities for payroll tests: a crew of the sandbox's active employees on an active project task, written
to a real warehouse source table; and the time entries Acumatica (the sandbox) ends up with."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy

from airflow_provider_acumatica.payroll.entries import external_ref
from airflow_provider_acumatica.payroll.source import DEFAULT_SOURCE_TABLE, source_table

TENANT = "Company"
MONDAY = datetime(2026, 11, 23, tzinfo=ZoneInfo("America/New_York"))
WEEK = (MONDAY, MONDAY + timedelta(days=7))


@dataclass(frozen=True)
class Crew:
    """Valid Acumatica ids of one tenant: active employees, a project with an active task, a cost code."""

    employees: tuple[str, ...]
    project: str
    task: str
    cost_code: str
    inactive_employee: str


def crew_of(sandbox, tenant: str = TENANT) -> Crew:
    truth = sandbox.control.truth
    employees = truth(tenant, "Employee")["records"]
    active = [e for e in employees if e["Status"] == "Active"]
    inactive = next((e for e in employees if e["Status"] != "Active"), None)
    if inactive is None:  # small sandboxes may have none: retire the last active one
        inactive = active.pop()
        sandbox.control.update(tenant, "Employee", records=[{"id": inactive["id"], "Status": "Inactive"}])
    projects = {p["ProjectID"] for p in truth(tenant, "Project")["records"] if p["Status"] == "Active"}
    task = next(
        t for t in truth(tenant, "ProjectTask")["records"] if t["Status"] == "Active" and t["ProjectID"] in projects
    )
    cost_code = next(c["CostCodeID"] for c in truth(tenant, "CostCode")["records"] if c["Active"])
    return Crew(
        employees=tuple(e["EmployeeID"] for e in active)[:6],
        project=task["ProjectID"],
        task=task["ProjectTaskID"],
        cost_code=cost_code,
        inactive_employee=inactive["EmployeeID"],
    )


def activity(
    crew: Crew,
    number: int,
    *,
    day: int = 0,
    hour: int = 7,
    minutes: int = 480,
    billable_minutes: int = 0,
    earning_type: str = "RG",
    tenant: str = TENANT,
    approved: bool = True,
    **overrides,
) -> dict:
    """One approved activity of the week's `day`, by employee `number % crew size`."""
    started = MONDAY + timedelta(days=day, hours=hour)
    row = {
        "activity_id": f"MC-{number:05d}",
        "tenant": tenant,
        "employee_id": crew.employees[number % len(crew.employees)],
        "project_id": crew.project,
        "project_task_id": crew.task,
        "cost_code": crew.cost_code,
        "earning_type": earning_type,
        "labor_item": None,
        "started_at": started,
        "minutes": minutes,
        "billable_minutes": billable_minutes,
        "summary": f"Framing, crew A, day {day + 1}",
        "approved": approved,
        "updated_at": started + timedelta(hours=10),
    }
    row.update(overrides)
    return row


def write_activities(warehouse, rows: list[dict], table: str = DEFAULT_SOURCE_TABLE) -> None:
    """Replace the source table's rows (created if missing); date-times kept with their offset."""
    url, schema = warehouse
    engine = sqlalchemy.create_engine(url)
    try:
        target = source_table(table, schema)
        with engine.begin() as connection:
            target.create(connection, checkfirst=True)
            connection.execute(target.delete())
            if rows:
                connection.execute(target.insert(), [_stored(row, engine.dialect.name) for row in rows])
    finally:
        engine.dispose()


def _stored(row: dict, dialect: str) -> dict:
    """SQLite keeps date-times as ISO text with their offset (as `create_source_table` lays them out)."""
    if dialect != "sqlite":
        return row
    return {name: value.isoformat() if isinstance(value, datetime) else value for name, value in row.items()}


def entries_of(sandbox, activity_ids, tenant: str = TENANT) -> dict[str, list[dict]]:
    """Acumatica's time entries per activity id (found by their ExternalRefNbr)."""
    by_ref = {}
    for record in sandbox.control.truth(tenant, "TimeEntry")["records"]:
        if record["ExternalRefNbr"]:
            by_ref.setdefault(record["ExternalRefNbr"], []).append(record)
    return {activity_id: by_ref.get(external_ref(activity_id), []) for activity_id in activity_ids}


def push_log(warehouse) -> dict[str, dict]:
    """The push log's lines per activity id."""
    url, schema = warehouse
    engine = sqlalchemy.create_engine(url)
    try:
        with engine.connect() as connection:
            log = sqlalchemy.Table(
                "acumatica_payroll_push_log", sqlalchemy.MetaData(), schema=schema, autoload_with=connection
            )
            return {row["activity_id"]: dict(row) for row in connection.execute(sqlalchemy.select(log)).mappings()}
    finally:
        engine.dispose()


class LogWatch(logging.Handler):
    """Sets `seen` when a log record containing `text` is emitted anywhere (a condition to wait on, no sleep)."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text
        self.seen = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if self.text in record.getMessage():
            self.seen.set()

    def __enter__(self) -> LogWatch:
        logging.getLogger().addHandler(self)
        return self

    def __exit__(self, *exc: object) -> None:
        logging.getLogger().removeHandler(self)
