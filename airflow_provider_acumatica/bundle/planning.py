"""What one DAG run loads: the selected tables, their mode and window, from run type and trigger form.

Rules (docs/bundle.md, "Runs and windows"):

- scheduled run: incremental from the watermark up to the run's data_interval_end;
- backfill run: exactly [data_interval_start, data_interval_end), watermark untouched; tables that
  load in mode full are left out (they have no window to reload) and ``full_refresh`` is ignored;
- any other run (manual, asset-triggered...): the trigger form's window_start/window_end when given
  (a reload of that range), else from the watermark up to now. A manual run's data interval is
  never used: Airflow may give it one or none.
- ``tables`` (empty = all) filters the tables; ``full_refresh`` turns incremental tables to full.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from typing import Any

import pendulum

BACKFILL = "backfill"
SCHEDULED = "scheduled"
WINDOW_PARAMS = ("window_start", "window_end")


class InvalidRunRequest(ValueError):
    """The trigger form asks for something the run cannot do; the message names the param."""


def plan_loads(
    tables: Sequence[Mapping[str, Any]],
    *,
    run_type: str,
    params: Mapping[str, Any],
    data_interval_start: datetime.datetime | None,
    data_interval_end: datetime.datetime | None,
) -> list[dict[str, Any]]:
    """Operator kwargs of every table this run loads (``tables`` are the group's per-table kwargs)."""
    run_type = str(getattr(run_type, "value", run_type))
    window_start, window_end = run_window(run_type, params, data_interval_start, data_interval_end)
    selected = set(params.get("tables") or ())
    full_refresh = bool(params.get("full_refresh")) and run_type != BACKFILL
    plans = []
    for table in tables:
        if selected and table["table"] not in selected:
            continue
        mode = "full" if full_refresh else table["mode"]
        if mode == "full" and run_type == BACKFILL:
            continue
        windowed = mode == "incremental"
        plans.append(
            {
                **table,
                "mode": mode,
                "window_start": window_start if windowed else None,
                "window_end": window_end if windowed else None,
            }
        )
    return plans


def run_window(
    run_type: str,
    params: Mapping[str, Any],
    data_interval_start: datetime.datetime | None,
    data_interval_end: datetime.datetime | None,
) -> tuple[str | None, str | None]:
    """(window_start, window_end) as UTC ISO strings; None means "from the watermark" / "up to now"."""
    if run_type == BACKFILL:
        if data_interval_start is None or data_interval_end is None:
            raise InvalidRunRequest("a backfill run needs a data interval; create it with `airflow backfill create`")
        return _iso(data_interval_start), _iso(data_interval_end)
    start, end = (_param_datetime(params, name) for name in WINDOW_PARAMS)
    if start is not None and end is not None and end <= start:
        raise InvalidRunRequest(
            f"param 'window_end' ({_iso(end)}) must be later than param 'window_start' ({_iso(start)})"
        )
    if start is None and end is None and run_type == SCHEDULED and data_interval_end is not None:
        return None, _iso(data_interval_end)
    return _iso(start), _iso(end)


def _param_datetime(params: Mapping[str, Any], name: str) -> pendulum.DateTime | None:
    value = params.get(name)
    if value in (None, ""):
        return None
    if isinstance(value, datetime.datetime):
        return pendulum.instance(value, tz="UTC")
    try:
        parsed = pendulum.parse(str(value), tz="UTC")
    except ValueError:  # pendulum's ParserError is a ValueError
        parsed = None
    if not isinstance(parsed, pendulum.DateTime):
        raise InvalidRunRequest(
            f"param {name!r}: {value!r} is not a date-time (allowed: ISO 8601 like 2026-01-31T00:00:00Z, or empty)"
        )
    return parsed


def _iso(moment: datetime.datetime | None) -> str | None:
    if moment is None:
        return None
    return pendulum.instance(moment, tz="UTC").in_timezone("UTC").isoformat()
