"""What a payroll run did, for people: counts per status, hours per employee and project, rejected rows."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence

from airflow_provider_acumatica.payroll.push_log import STATUSES, Outcome
from airflow_provider_acumatica.payroll.rules import Activity, Rejection


def status_counts(outcomes: Iterable[Outcome]) -> dict[str, int]:
    """How many activities ended in each status (every status named, zeros included)."""
    counted = Counter(outcome.status for outcome in outcomes)
    return {status: counted.get(status, 0) for status in STATUSES}


def summary_table(counts: dict[str, int]) -> str:
    """The counts as a small two-column text table."""
    width = max(len(status) for status in counts)
    lines = [f"{'status':<{width}}  entries", f"{'-' * width}  -------"]
    lines += [f"{status:<{width}}  {count:>7}" for status, count in counts.items()]
    return "\n".join(lines)


def approval_report(
    activities: Sequence[Activity], rejections: Sequence[Rejection], counts: dict[str, int], title: str
) -> str:
    """Markdown for whoever approves the push: what would be sent, hours per employee and per project, and the
    rows that will not be sent with their reasons."""
    lines = [f"### {title}", "", "| would be | entries |", "|---|---|"]
    lines += [f"| {status} | {count} |" for status, count in counts.items() if count]
    lines += ["", *_hours_table("Employee", activities, lambda a: a.employee_id)]
    lines += ["", *_hours_table("Project", activities, lambda a: a.project_id)]
    if rejections:
        lines += [
            "",
            f"**{len(rejections)} rows will not be sent:**",
            "",
            "| activity | field | reason |",
            "|---|---|---|",
        ]
        lines += [f"| {r.activity_id or f'row {r.row}'} | {r.field} | {r.reason} |" for r in rejections]
    return "\n".join(lines)


def _hours_table(label: str, activities: Sequence[Activity], key) -> list[str]:
    minutes: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for activity in activities:
        totals = minutes[key(activity)]
        totals[0] += activity.minutes
        totals[1] += activity.billable_minutes
    rows = [
        f"| {name} | {spent / 60:.2f} | {billable / 60:.2f} |" for name, (spent, billable) in sorted(minutes.items())
    ]
    return [f"| {label} | hours | billable hours |", "|---|---|---|", *rows]
