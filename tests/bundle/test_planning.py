"""Run planning: each run type gets the right tables, modes and windows from the trigger form."""

from __future__ import annotations

import datetime

import pytest

from airflow_provider_acumatica.bundle.planning import InvalidRunRequest, plan_loads

UTC = datetime.timezone.utc
INTERVAL_START = datetime.datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
INTERVAL_END = datetime.datetime(2026, 3, 1, 11, 0, tzinfo=UTC)
TABLES = [
    {"table": "Project", "mode": "incremental", "source": "entity", "expand": ["Tasks"]},
    {"table": "TimeEntry", "mode": "incremental", "source": "entity"},
    {"table": "UnionLocal", "mode": "full", "source": "entity"},
]
NO_FORM = {"tables": [], "full_refresh": False, "window_start": None, "window_end": None}


def plan(run_type, params=NO_FORM, start=INTERVAL_START, end=INTERVAL_END):
    return plan_loads(TABLES, run_type=run_type, params=params, data_interval_start=start, data_interval_end=end)


def windows(plans):
    return {p["table"]: (p["mode"], p["window_start"], p["window_end"]) for p in plans}


def test_scheduled_run_loads_from_the_watermark_up_to_the_interval_end():
    assert windows(plan("scheduled")) == {
        "Project": ("incremental", None, "2026-03-01T11:00:00+00:00"),
        "TimeEntry": ("incremental", None, "2026-03-01T11:00:00+00:00"),
        "UnionLocal": ("full", None, None),
    }


@pytest.mark.parametrize("interval", [(INTERVAL_START, INTERVAL_END), (None, None)])
def test_manual_run_without_window_loads_from_the_watermark_up_to_now_whatever_its_interval(interval):
    plans = plan("manual", NO_FORM, *interval)
    assert windows(plans)["TimeEntry"] == ("incremental", None, None)


def test_manual_run_with_window_reloads_that_range_in_utc():
    form = {**NO_FORM, "window_start": "2026-02-01T00:00:00-05:00", "window_end": "2026-02-02T00:00:00Z"}
    plans = plan("manual", form)
    assert windows(plans)["Project"] == ("incremental", "2026-02-01T05:00:00+00:00", "2026-02-02T00:00:00+00:00")
    assert windows(plans)["UnionLocal"] == ("full", None, None)


def test_manual_run_with_only_a_window_end_reads_from_the_watermark():
    plans = plan("manual", {**NO_FORM, "window_end": "2026-02-02T00:00:00Z"})
    assert windows(plans)["TimeEntry"] == ("incremental", None, "2026-02-02T00:00:00+00:00")


def test_backfill_run_reloads_its_data_interval_and_leaves_out_full_tables():
    assert windows(plan("backfill")) == {
        "Project": ("incremental", "2026-03-01T10:00:00+00:00", "2026-03-01T11:00:00+00:00"),
        "TimeEntry": ("incremental", "2026-03-01T10:00:00+00:00", "2026-03-01T11:00:00+00:00"),
    }


def test_backfill_run_ignores_full_refresh():
    plans = plan("backfill", {**NO_FORM, "full_refresh": True})
    assert {p["mode"] for p in plans} == {"incremental"}


def test_backfill_run_without_interval_is_refused():
    with pytest.raises(InvalidRunRequest, match="a backfill run needs a data interval"):
        plan("backfill", NO_FORM, None, None)


def test_tables_param_selects_tables_and_keeps_their_arguments():
    plans = plan("manual", {**NO_FORM, "tables": ["Project", "UnionLocal"]})
    assert [p["table"] for p in plans] == ["Project", "UnionLocal"]
    assert plans[0]["expand"] == ["Tasks"] and plans[0]["source"] == "entity"


def test_full_refresh_turns_incremental_tables_full_without_windows():
    plans = plan("manual", {**NO_FORM, "full_refresh": True, "window_start": "2026-02-01T00:00:00Z"})
    assert set(windows(plans).values()) == {("full", None, None)}


def test_window_end_before_window_start_is_refused_naming_both_params():
    form = {**NO_FORM, "window_start": "2026-02-02T00:00:00Z", "window_end": "2026-02-01T00:00:00Z"}
    with pytest.raises(InvalidRunRequest, match=r"param 'window_end' \(2026-02-01T00:00:00\+00:00\) must be later"):
        plan("manual", form)


def test_window_that_is_not_a_date_time_is_refused_naming_the_param():
    with pytest.raises(InvalidRunRequest, match=r"param 'window_start': 'yesterday' is not a date-time"):
        plan("manual", {**NO_FORM, "window_start": "yesterday"})


def test_run_type_enum_of_airflow_is_understood():
    from airflow.utils.types import DagRunType

    assert windows(plan(DagRunType.BACKFILL_JOB))["Project"][1] == "2026-03-01T10:00:00+00:00"
