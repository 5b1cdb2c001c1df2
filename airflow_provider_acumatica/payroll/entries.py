"""How an approved time activity becomes an Acumatica time entry (the `TimeEntry` entity's fields).

The entry's `ExternalRefNbr` is derived from the activity id alone, so the same activity always maps to the
same entry, whatever the run: it is how a push finds what an earlier, perhaps crashed, push created.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from airflow_provider_acumatica.client.schema import parse_duration

ENTITY = "TimeEntry"
EXTERNAL_REF_PREFIX = "AF"
EXTERNAL_REF_LENGTH = 15
"""Acumatica's external reference numbers are 15 characters on many forms; assumed for TimeEntry too."""
BILLABLE_CHOICES = (True, False, "source")
COMPLETED = "Completed"


@dataclass(frozen=True)
class PublishSettings:
    """How entries are published: `billable` true, false or "source" (billable when billable_minutes > 0);
    `hold` leaves entries Open instead of completing them; `zone` is the API user's profile time zone."""

    billable: bool | str
    hold: bool
    zone: ZoneInfo

    def __post_init__(self) -> None:
        if self.billable not in BILLABLE_CHOICES:
            raise ValueError(f"billable is {self.billable!r}; allowed: true, false or 'source'")

    @property
    def status(self) -> str:
        """The ApprovalStatus an entry ends in."""
        return "Open" if self.hold else COMPLETED


def external_ref(activity_id: str) -> str:
    """`AF` + the first 13 base32 characters of the SHA-256 of the activity id: stable, 15 characters,
    letters and digits only (65 bits: no collision in practice, and a collision in one run is refused)."""
    digest = hashlib.sha256(activity_id.encode("utf-8")).digest()
    encoded = base64.b32encode(digest).decode("ascii")
    return EXTERNAL_REF_PREFIX + encoded[: EXTERNAL_REF_LENGTH - len(EXTERNAL_REF_PREFIX)]


def hours_and_minutes(minutes: int) -> str:
    """Minutes as Acumatica's `HH:MM` time span (`08:30`; hours may exceed 99)."""
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def time_entry(activity: Any, settings: PublishSettings) -> dict[str, Any]:
    """The entry's fields (plain values) for a checked activity; `Date` is the start in the profile time zone,
    so its local date is the work day, never a UTC day."""
    billable = _is_billable(activity, settings.billable)
    entry = {
        "Employee": activity.employee_id,
        "Date": activity.started_at.astimezone(settings.zone),
        "ProjectID": activity.project_id,
        "ProjectTaskID": activity.project_task_id,
        "CostCode": activity.cost_code,
        "EarningType": activity.earning_type,
        "TimeSpent": hours_and_minutes(activity.minutes),
        "Billable": billable,
        "BillableTime": hours_and_minutes(_billable_minutes(activity) if billable else 0),
        "Summary": activity.summary or "",
        "ExternalRefNbr": external_ref(activity.activity_id),
    }
    if activity.labor_item:
        entry["LaborItem"] = activity.labor_item
    return entry


def payload_hash(entry: dict[str, Any], settings: PublishSettings) -> str:
    """A fingerprint of what a push sends (the entry and the status it ends in): equal means nothing to send."""
    canonical = {**entry, "Date": _instant(entry["Date"]), "ApprovalStatus": settings.status}
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def matches(record: dict[str, Any], entry: dict[str, Any]) -> bool:
    """Whether an entry read from Acumatica holds what `entry` would send (its approval status aside)."""
    for field, wanted in entry.items():
        found = record.get(field)
        if field == "Date":
            if found is None or _instant(found) != _instant(wanted):
                return False
        elif field in ("TimeSpent", "BillableTime"):
            if (_minutes(found) or 0) != _minutes(wanted):
                return False
        elif field == "Billable":
            if bool(found) != wanted:
                return False
        elif (found or "") != (wanted or ""):
            return False
    return True


def _minutes(span: Any) -> int | None:
    """Minutes of a time span as Acumatica may answer it; an unreadable one matches nothing."""
    try:
        return parse_duration(span)
    except ValueError:
        return -1


def _is_billable(activity: Any, billable: bool | str) -> bool:
    return (activity.billable_minutes or 0) > 0 if billable == "source" else bool(billable)


def _billable_minutes(activity: Any) -> int:
    """Billable time of a billable entry: the billable minutes when given (above zero), else the time spent."""
    return activity.billable_minutes if (activity.billable_minutes or 0) > 0 else activity.minutes


def _instant(moment: datetime) -> str:
    return moment.astimezone(ZoneInfo("UTC")).isoformat(timespec="milliseconds")
