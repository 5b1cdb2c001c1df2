"""The payroll half of `make demo`: a week of a crew's approved time activities in the warehouse's source table,
published to the sandbox by the payroll DAG, and what became of them.

The crew is drawn from the tables the sync just loaded (active employees, active project tasks, active cost
codes), so every good row is one Acumatica accepts; three rows are bad on purpose, as real exports have.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import sqlalchemy

from airflow_provider_acumatica.payroll.source import source_table

SOURCE = "payroll_time_activity"
SHOP_TASK_EVERY = 4  # every 4th employee-day is shop time: not billable


def last_monday(now: datetime) -> datetime:
    """The most recent Monday 00:00 UTC at or before `now`."""
    midnight = now.astimezone(ZoneInfo("UTC")).replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight - timedelta(days=midnight.weekday())


def seed_week(warehouse: Path, dag_tenant: str, tenant: str, monday: datetime, zone: ZoneInfo) -> int:
    """Write the crew's week starting `monday` (local 07:00 starts, overtime some evenings) plus three bad rows
    and one unapproved row; returns how many rows."""
    engine = sqlalchemy.create_engine(f"sqlite:///{warehouse}")
    rng = random.Random(7)
    with engine.begin() as connection:
        crew, tasks, cost_codes = _crew(connection, dag_tenant, rng)
        rows = []
        for number, employee in enumerate(crew):
            project, task = tasks[number % len(tasks)]
            for day in range(5):
                start = datetime.combine((monday + timedelta(days=day)).date(), datetime.min.time(), zone)
                start += timedelta(hours=7)
                billable = (number + day) % SHOP_TASK_EVERY != 0
                rows.append(
                    _row(
                        f"MC-{monday:%Y%m%d}-{number:02d}-{day}-RG",
                        tenant,
                        employee,
                        project,
                        task,
                        rng.choice(cost_codes),
                        "RG",
                        start,
                        480,
                        billable,
                        "Framing and layout",
                    )
                )
                if rng.random() < 0.3:  # overtime after the shift
                    minutes = rng.choice((60, 90, 120))
                    rows.append(
                        _row(
                            f"MC-{monday:%Y%m%d}-{number:02d}-{day}-OT",
                            tenant,
                            employee,
                            project,
                            task,
                            rng.choice(cost_codes),
                            "OT",
                            start + timedelta(hours=8, minutes=30),
                            minutes,
                            billable,
                            "Overtime: concrete pour",
                        )
                    )
        first = rows[0]
        rows += [
            {
                **first,
                "activity_id": f"MC-{monday:%Y%m%d}-BAD-1",
                "cost_code": "99-999",
                "summary": "Typo in cost code",
            },
            {
                **first,
                "activity_id": f"MC-{monday:%Y%m%d}-BAD-2",
                "billable_minutes": 600,
                "summary": "Billable > spent",
            },
            {
                **first,
                "activity_id": f"MC-{monday:%Y%m%d}-BAD-3",
                "minutes": 0,
                "billable_minutes": 0,
                "summary": "Clocked in and out at once",
            },
            {**first, "activity_id": f"MC-{monday:%Y%m%d}-PENDING", "approved": False, "summary": "Not approved yet"},
        ]
        table = source_table(SOURCE, None)
        table.create(connection, checkfirst=True)
        connection.execute(table.delete())
        connection.execute(table.insert(), rows)
    engine.dispose()
    return len(rows)


def correct_one_row(warehouse: Path, monday: datetime) -> None:
    """The time-tracking system fixes the cost code typo (BAD-1) to a valid cost code."""
    engine = sqlalchemy.create_engine(f"sqlite:///{warehouse}")
    with engine.begin() as connection:
        connection.execute(
            sqlalchemy.text(
                f"update {SOURCE} set cost_code = (select cost_code from {SOURCE} where activity_id not like '%BAD%' "
                "limit 1), summary = 'Cost code corrected' where activity_id = :id"
            ),
            {"id": f"MC-{monday:%Y%m%d}-BAD-1"},
        )
    engine.dispose()


def report(warehouse: Path, title: str) -> None:
    """Counts per status from the push log, hours per employee sent, and the rejected rows."""
    engine = sqlalchemy.create_engine(f"sqlite:///{warehouse}")
    with engine.connect() as connection:
        counts = dict(
            connection.execute(
                sqlalchemy.text("select status, count(*) from acumatica_payroll_push_log group by status")
            ).all()
        )
        hours = connection.execute(
            sqlalchemy.text(
                f"select a.employee_id, count(*), sum(a.minutes) / 60.0, sum(case when a.earning_type = 'OT' "
                f"then a.minutes else 0 end) / 60.0 from acumatica_payroll_push_log l join {SOURCE} a "
                "on a.activity_id = l.activity_id where l.status in ('pushed', 'updated', 'unchanged') "
                "group by a.employee_id order by a.employee_id"
            )
        ).all()
        rejected = connection.execute(
            sqlalchemy.text(
                "select activity_id, error from acumatica_payroll_push_log where status in ('rejected', 'failed') "
                "order by activity_id"
            )
        ).all()
    engine.dispose()
    print(
        f"  {title}: "
        + ", ".join(
            f"{status} {counts.get(status, 0)}"
            for status in ("pushed", "updated", "unchanged", "rejected", "failed", "locked")
        )
    )
    print(f"    {'employee':<10} {'entries':>7} {'hours':>6} {'overtime':>8}")
    for employee, entries, total, overtime in hours:
        print(f"    {employee:<10} {entries:>7} {total:>6.1f} {overtime:>8.1f}")
    for activity_id, error in rejected:
        print(f"    not sent: {activity_id}: {error}")


def _crew(connection, dag_tenant: str, rng: random.Random) -> tuple[list[str], list[tuple[str, str]], list[str]]:
    """Six active employees, active tasks of active projects, active cost codes — as synced for the tenant."""

    def column(sql: str) -> list:
        return connection.execute(sqlalchemy.text(sql), {"tenant": dag_tenant}).all()

    employees = [
        row[0]
        for row in column(
            "select employee_id from employee where _tenant = :tenant "
            "and status = 'Active' and _deleted_at is null order by employee_id"
        )
    ]
    tasks = [
        tuple(row)
        for row in column(
            "select t.project_id, t.project_task_id from project_task t join project p on p.project_id = t.project_id "
            "and p._tenant = t._tenant where t._tenant = :tenant and t.status = 'Active' and p.status = 'Active' "
            "and t._deleted_at is null order by t.project_id, t.project_task_id"
        )
    ]
    cost_codes = [
        row[0]
        for row in column(
            "select cost_code_id from cost_code where _tenant = :tenant "
            "and active and _deleted_at is null order by cost_code_id"
        )
    ]
    return rng.sample(employees, 6), rng.sample(tasks, 3), cost_codes[:8]


def _row(
    activity_id, tenant, employee, project, task, cost_code, earning_type, start, minutes, billable, summary
) -> dict:
    return {
        "activity_id": activity_id,
        "tenant": tenant,
        "employee_id": employee,
        "project_id": project,
        "project_task_id": task,
        "cost_code": cost_code,
        "earning_type": earning_type,
        "labor_item": None,
        "started_at": start.isoformat(),
        "minutes": minutes,
        "billable_minutes": minutes if billable else 0,
        "summary": summary,
        "approved": True,
        "updated_at": (start + timedelta(hours=10)).isoformat(),
    }
