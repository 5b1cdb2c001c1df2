"""Checks of time activities before anything is sent: each bad row is rejected with a reason naming the field.

An activity must have an id, a time-zone-aware start, positive minutes, billable minutes within them, and (where
the tenant's reference tables are synced into the warehouse) an active employee, project, task, cost code and
earning type. Rows not approved, or starting outside the pay period, are not selected at all.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, column, func, inspect, select, table

from airflow_provider_acumatica.payroll.entries import external_ref
from airflow_provider_acumatica.payroll.source import PayPeriod
from airflow_provider_acumatica.utils.flags import flag

_REQUIRED_IDS = ("employee_id", "project_id", "project_task_id", "cost_code", "earning_type")


@dataclass(frozen=True)
class Activity:
    """An approved time activity, checked and ready to become a time entry."""

    activity_id: str
    employee_id: str
    project_id: str
    project_task_id: str
    cost_code: str
    earning_type: str
    labor_item: str | None
    started_at: datetime
    minutes: int
    billable_minutes: int
    summary: str | None


@dataclass(frozen=True)
class Rejection:
    """A row that will not be sent, with the field at fault and what to do."""

    activity_id: str | None
    row: int
    field: str
    reason: str

    def __str__(self) -> str:
        who = f"activity {self.activity_id!r}" if self.activity_id else f"row {self.row} (no activity id)"
        return f"{who}: {self.field}: {self.reason}"


@dataclass(frozen=True)
class Reference:
    """One kind of record a time entry points to, as synced into the warehouse (`_tenant`-labelled rows)."""

    field: str
    label: str
    table: str
    keys: tuple[str, ...]
    active: str
    """The column telling whether the record is usable: `status` ('Active') or `active` (true)."""


REFERENCES = (
    Reference("employee_id", "employee", "employee", ("employee_id",), "status"),
    Reference("project_id", "project", "project", ("project_id",), "status"),
    Reference("project_task_id", "project task", "project_task", ("project_id", "project_task_id"), "status"),
    Reference("cost_code", "cost code", "cost_code", ("cost_code_id",), "active"),
    Reference("earning_type", "earning type", "earning_type_code", ("earning_type_code_id",), "active"),
)


class References:
    """The tenant's synced reference records: key -> active, per reference table found in the warehouse."""

    def __init__(self, known: Mapping[str, dict[tuple, bool]]) -> None:
        self._known = known

    @classmethod
    def load(cls, connection: Connection, schema: str | None, sync_tenant: str) -> References:
        """Read each reference table that exists and holds rows of `sync_tenant` (its `_tenant`, any case)."""
        known: dict[str, dict[tuple, bool]] = {}
        inspector = inspect(connection)
        for reference in REFERENCES:
            if not inspector.has_table(reference.table, schema=schema):
                continue
            columns = {info["name"] for info in inspector.get_columns(reference.table, schema=schema)}
            if not {*reference.keys, "_tenant"} <= columns:
                continue
            records = _reference_rows(connection, schema, reference, columns, sync_tenant)
            if records:
                known[reference.field] = records
        return cls(known)

    @property
    def checked(self) -> list[str]:
        """The references checked (those synced for this tenant)."""
        return [reference.label for reference in REFERENCES if reference.field in self._known]

    def problem(self, activity: Activity) -> tuple[str, str] | None:
        """(field, reason) of the first reference the activity gets wrong, or None."""
        for reference in REFERENCES:
            records = self._known.get(reference.field)
            if records is None:
                continue
            key = tuple(getattr(activity, _activity_field(name)) for name in reference.keys)
            shown = " / ".join(key)
            if key not in records:
                return reference.field, (
                    f"{reference.label} {shown!r} is not in Acumatica (not in the synced "
                    f"{reference.table!r} table); correct it in the time-tracking system"
                )
            if not records[key]:
                return reference.field, (
                    f"{reference.label} {shown!r} is inactive in Acumatica; "
                    "activate it there or move the time to an active one"
                )
        return None


def check_activities(
    rows: Iterable[Mapping[str, Any]],
    tenant: str,
    period: PayPeriod,
    references: References,
) -> tuple[list[Activity], list[Rejection]]:
    """The approved rows of the tenant that start in the period, as activities or rejections."""
    activities: list[Activity] = []
    rejections: list[Rejection] = []
    for number, row in enumerate(rows, start=1):
        if str(row.get("tenant") or "").lower() != tenant.lower() or not _approved(row.get("approved")):
            continue
        checked = _activity(row, number, period)
        if checked is None:
            continue
        if isinstance(checked, Activity):
            problem = references.problem(checked)
            if problem is not None:
                checked = Rejection(checked.activity_id, number, *problem)
        (activities if isinstance(checked, Activity) else rejections).append(checked)
    return _without_twins(activities, rejections)


def _activity(row: Mapping[str, Any], number: int, period: PayPeriod) -> Activity | Rejection | None:
    """The row as an activity, its rejection, or None when it starts outside the period."""
    activity_id = _text(row.get("activity_id"))

    def reject(field: str, reason: str) -> Rejection:
        return Rejection(activity_id, number, field, reason)

    started_at, problem = _instant(row.get("started_at"))
    if problem:
        return reject("started_at", problem)
    if started_at not in period:
        return None
    if not activity_id:
        return reject("activity_id", "missing: every activity needs the time-tracking system's stable id")
    for field in _REQUIRED_IDS:
        if not _text(row.get(field)):
            return reject(field, "missing: give the Acumatica ID")
    minutes, problem = _whole(row.get("minutes"))
    if problem or minutes <= 0:
        return reject("minutes", problem or f"{minutes} is not positive: an entry needs time spent")
    billable, problem = _whole(row.get("billable_minutes"), default=0)
    if problem or billable < 0:
        return reject("billable_minutes", problem or f"{billable} is negative")
    if billable > minutes:
        return reject("billable_minutes", f"{billable} is more than the {minutes} minutes spent")
    return Activity(
        activity_id=activity_id,
        employee_id=_text(row["employee_id"]),
        project_id=_text(row["project_id"]),
        project_task_id=_text(row["project_task_id"]),
        cost_code=_text(row["cost_code"]),
        earning_type=_text(row["earning_type"]),
        labor_item=_text(row.get("labor_item")) or None,
        started_at=started_at,
        minutes=minutes,
        billable_minutes=billable,
        summary=_text(row.get("summary")) or None,
    )


def _without_twins(activities: list[Activity], rejections: list[Rejection]) -> tuple[list[Activity], list[Rejection]]:
    """Refuse activities whose id (or external reference) appears twice in the selection: which one is meant?"""
    ids = Counter(activity.activity_id for activity in activities)
    refs = Counter(external_ref(activity.activity_id) for activity in activities)
    kept = []
    for number, activity in enumerate(activities, start=1):
        if ids[activity.activity_id] > 1:
            rejections.append(
                Rejection(
                    activity.activity_id,
                    number,
                    "activity_id",
                    f"appears {ids[activity.activity_id]} times; activity ids must be unique",
                )
            )
        elif refs[external_ref(activity.activity_id)] > 1:
            rejections.append(
                Rejection(
                    activity.activity_id,
                    number,
                    "activity_id",
                    "shares its ExternalRefNbr with another activity; rename one of them",
                )
            )
        else:
            kept.append(activity)
    return kept, rejections


def _reference_rows(
    connection: Connection, schema: str | None, reference: Reference, columns: set[str], sync_tenant: str
) -> dict[tuple, bool]:
    names = [*reference.keys, *([reference.active] if reference.active in columns else [])]
    source = table(reference.table, *(column(name) for name in [*names, "_tenant", "_deleted_at"]), schema=schema)
    statement = select(*(source.c[name] for name in names)).where(func.lower(source.c._tenant) == sync_tenant.lower())
    if "_deleted_at" in columns:
        statement = statement.where(source.c._deleted_at.is_(None))
    records = {}
    for row in connection.execute(statement):
        key = tuple(str(value) for value in row[: len(reference.keys)])
        state = row[len(reference.keys)] if reference.active in columns else True
        records[key] = state == "Active" if reference.active == "status" else _approved(state)
    return records


def _activity_field(reference_column: str) -> str:
    """The activity attribute a reference table's key column matches."""
    return {"cost_code_id": "cost_code", "earning_type_code_id": "earning_type"}.get(reference_column, reference_column)


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _approved(value: Any) -> bool:
    return flag(value) is True if isinstance(value, str) else bool(value)


def _instant(value: Any) -> tuple[datetime | None, str | None]:
    """An aware datetime from a datetime or ISO 8601 text, or the reason it is not one."""
    if value is None or value == "":
        return None, "missing: give when the work started, with its time zone"
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return None, f"{value!r} is not an ISO 8601 date-time"
    if not isinstance(value, datetime):
        return None, f"{value!r} is not a date-time"
    if value.tzinfo is None or value.utcoffset() is None:
        return None, (
            f"{value.isoformat()} has no time zone; store it with its offset (timestamptz on "
            "PostgreSQL, ISO 8601 with offset on SQLite) so its work day is known"
        )
    return value, None


def _whole(value: Any, default: int | None = None) -> tuple[int, str | None]:
    """A whole number of minutes, or the reason the value is not one."""
    if value is None or value == "":
        return (default, None) if default is not None else (0, "missing")
    if isinstance(value, bool):
        return 0, f"{value!r} is not a number of minutes"
    try:
        number = Decimal(str(value).strip())
    except ArithmeticError:
        return 0, f"{value!r} is not a number of minutes"
    if number != number.to_integral_value():
        return 0, f"{value} is not a whole number of minutes"
    return int(number), None
