"""Plan one run of a table: the time window to read and whether its result may move the watermark."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from airflow_provider_acumatica.client.limits import WholeNumbers
from airflow_provider_acumatica.extract.slices import TimeSlice

INCREMENTAL = "incremental"
FULL = "full"
MODES = (INCREMENTAL, FULL)
TIME_OFFSETS = WholeNumbers(0, 3_600)
"""The seconds a run may re-read before the watermark (`time_offset`)."""
DEFAULT_TIME_OFFSET = 300
"""... and re-reads unless the table's `time_offset` says otherwise."""


@dataclass(frozen=True)
class RunPlan:
    """What one run reads and what it may change in the sync state."""

    mode: str
    window: TimeSlice
    moves_watermark: bool
    """False for an explicit window (manual reload or backfill): the watermark stays where it was."""


def plan_run(
    *,
    mode: str,
    watermark: datetime | None,
    time_offset: int,
    window_start: datetime | None,
    window_end: datetime | None,
    now: datetime,
    describe: str,
) -> RunPlan:
    """Incremental: [watermark - offset, end); explicit window: exactly it; full: everything.

    `now` bounds an open window so that records changed while we read land in the next run,
    which starts `time_offset` before the watermark and so also absorbs clock skew and records
    whose transaction committed after their timestamp.
    """
    if mode == FULL:
        return RunPlan(FULL, TimeSlice(None, None), moves_watermark=True)
    end = window_end or now
    if window_start is not None:
        _check_order(window_start, end, describe)
        return RunPlan(INCREMENTAL, TimeSlice(window_start, end), moves_watermark=False)
    start = watermark - timedelta(seconds=time_offset) if watermark is not None else None
    if start is not None and start > end:  # the watermark is past this run's end: nothing new to read
        start = end
    return RunPlan(INCREMENTAL, TimeSlice(start, end), moves_watermark=True)


def _check_order(start: datetime, end: datetime, describe: str) -> None:
    if start >= end:
        raise ValueError(
            f"{describe}: window_start {start.isoformat()} is not before window_end {end.isoformat()}; "
            "give a window_start earlier than window_end (or leave window_end empty for 'now')."
        )
