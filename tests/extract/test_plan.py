"""The run plan: which window a run reads and whether it may move the watermark."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from airflow_provider_acumatica.extract.plan import plan_run

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=timezone.utc)
WATERMARK = datetime(2026, 11, 21, 11, 0, tzinfo=timezone.utc)


def plan(**overrides):
    arguments = dict(
        mode="incremental",
        watermark=WATERMARK,
        time_offset=300,
        window_start=None,
        window_end=None,
        now=NOW,
        describe="tenant 'Company', table 'TimeEntry'",
    )
    arguments.update(overrides)
    return plan_run(**arguments)


def test_incremental_reads_from_watermark_minus_offset_to_now_and_moves_the_watermark():
    run = plan()
    assert (run.window.start, run.window.end) == (WATERMARK - timedelta(seconds=300), NOW)
    assert run.moves_watermark


def test_first_incremental_run_reads_from_the_beginning():
    assert plan(watermark=None).window.start is None


def test_scheduled_window_end_bounds_the_read():
    end = NOW - timedelta(minutes=10)
    assert plan(window_end=end).window.end == end


def test_explicit_window_is_a_reload_that_leaves_the_watermark():
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    run = plan(window_start=start)
    assert (run.window.start, run.window.end) == (start, NOW)
    assert not run.moves_watermark


def test_watermark_past_the_end_reads_an_empty_window():
    run = plan(watermark=NOW + timedelta(hours=1), window_end=NOW)
    assert run.window.start == run.window.end == NOW


def test_full_reads_everything():
    run = plan(mode="full")
    assert (run.window.start, run.window.end) == (None, None)


def test_window_in_the_wrong_order_names_both_ends():
    with pytest.raises(ValueError, match="window_start .* is not before window_end"):
        plan(window_start=NOW, window_end=NOW - timedelta(days=1))
