"""How an activity becomes a time entry: the external reference, time spans, dates in the profile time zone."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from airflow_provider_acumatica.payroll.entries import (
    PublishSettings,
    external_ref,
    hours_and_minutes,
    matches,
    payload_hash,
    time_entry,
)
from airflow_provider_acumatica.payroll.rules import Activity

NEW_YORK = ZoneInfo("America/New_York")


def an_activity(**changes) -> Activity:
    fields = dict(
        activity_id="MC-1",
        employee_id="EP1",
        project_id="P1",
        project_task_id="01",
        cost_code="01-100",
        earning_type="RG",
        labor_item=None,
        started_at=datetime(2026, 11, 24, 4, 30, tzinfo=timezone.utc),
        minutes=510,
        billable_minutes=0,
        summary="Framing",
    )
    fields.update(changes)
    return Activity(**fields)


def test_the_external_reference_is_stable_short_and_plain():
    refs = {external_ref(f"activity-{n}") for n in range(10_000)}
    assert len(refs) == 10_000
    assert all(re.fullmatch(r"AF[A-Z2-7]{13}", ref) for ref in refs)
    assert external_ref("MC-1") == external_ref("MC-1") != external_ref("mc-1")
    assert len(external_ref("x" * 5000)) == 15


@pytest.mark.parametrize(("minutes", "span"), [(0, "00:00"), (5, "00:05"), (510, "08:30"), (6000, "100:00")])
def test_time_spans_are_hours_and_minutes_and_match_when_read_back_in_another_form(minutes, span):
    assert hours_and_minutes(minutes) == span
    sent = {"TimeSpent": span}
    assert matches({"TimeSpent": minutes}, sent)
    if len(span) == 5:  # HHMM reads unambiguously with two hour digits
        assert matches({"TimeSpent": span.replace(":", "")}, sent)
    assert not matches({"TimeSpent": minutes + 1}, sent) and not matches({"TimeSpent": "soon"}, sent)


def test_the_date_is_the_start_in_the_profile_time_zone_so_its_local_date_is_the_work_day():
    entry = time_entry(an_activity(), PublishSettings("source", True, NEW_YORK))
    assert entry["Date"].isoformat() == "2026-11-23T23:30:00-05:00"  # 04:30 UTC on the 24th is the 23rd there
    assert entry["ExternalRefNbr"] == external_ref("MC-1") and "LaborItem" not in entry


@pytest.mark.parametrize(
    ("billable", "billable_minutes", "expected"),
    [
        (True, 0, (True, "08:30")),
        (True, 240, (True, "04:00")),
        (False, 240, (False, "00:00")),
        ("source", 240, (True, "04:00")),
        ("source", 0, (False, "00:00")),
    ],
)
def test_billable_time_follows_the_setting(billable, billable_minutes, expected):
    entry = time_entry(an_activity(billable_minutes=billable_minutes), PublishSettings(billable, False, NEW_YORK))
    assert (entry["Billable"], entry["BillableTime"]) == expected


def test_the_payload_hash_changes_with_what_is_sent_and_the_status_it_ends_in():
    held, completed = PublishSettings("source", True, NEW_YORK), PublishSettings("source", False, NEW_YORK)
    entry = time_entry(an_activity(), held)
    assert payload_hash(entry, held) == payload_hash(time_entry(an_activity(), held), held)
    assert payload_hash(entry, held) != payload_hash(entry, completed)
    assert payload_hash(entry, held) != payload_hash(time_entry(an_activity(minutes=480), held), held)


def test_an_entry_read_back_matches_whatever_form_acumatica_answers_in():
    entry = time_entry(an_activity(), PublishSettings(True, False, NEW_YORK))
    read_back = {
        **entry,
        "Date": datetime(2026, 11, 24, 4, 30, tzinfo=timezone.utc),
        "TimeSpent": "0830",
        "BillableTime": 510,
        "Summary": "Framing",
        "LaborItem": None,
    }
    assert matches(read_back, entry)
    assert not matches({**read_back, "TimeSpent": "08:00"}, entry)
    assert not matches({**read_back, "Date": datetime(2026, 11, 24, 5, 30, tzinfo=timezone.utc)}, entry)


def test_billable_must_be_true_false_or_source():
    with pytest.raises(ValueError, match="billable is 'yes'"):
        PublishSettings("yes", True, NEW_YORK)
