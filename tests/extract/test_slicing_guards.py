"""The slice reader's two guards against a hostile or restless server, provoked in the sandbox over HTTP:
RUNAWAY_PAGES (a server ignoring $skip stops the read with what to check) and MAX_PASSES (a part still
changing after that many passes is left for the next run, with a warning)."""

from __future__ import annotations

import logging
from datetime import datetime

import pytest
from test_slicing import _crowded_instant

from airflow_provider_acumatica.extract.slices import TimeSlice
from airflow_provider_acumatica.extract.slicing import MAX_PASSES, SliceReader
from airflow_provider_acumatica.extract.sources import TableSource
from airflow_provider_acumatica.hooks.acumatica import AcumaticaHook

DESCRIPTION = "Company TimeEntry"
PAGE = 200
#: With timestamps, a crowded instant (seed 3 puts > 1,000 records at one); without, the whole table.
KINDS = pytest.mark.parametrize("timestamped", [True, False], ids=["crowded-instant", "no-timestamps"])


def reader(hook: AcumaticaHook, *, timestamped: bool) -> SliceReader:
    """TimeEntry read by its LastModifiedDateTime, or as a table without timestamps (paged whole)."""
    field = "LastModifiedDateTime" if timestamped else None
    source = TableSource(
        hook, table="TimeEntry", kind="entity", timestamp_field=field, key_fields=[], expand=[], describe=DESCRIPTION
    )
    return SliceReader(
        source.fetch,
        timestamps=source.fetch_timestamps,
        keys=source.fetch_keys,
        timestamp_field=field,
        page_size=PAGE,
        workers=3,
        record_ids=source.record_ids,
        description=DESCRIPTION,
    )


def part_of(sandbox, timestamped: bool) -> TimeSlice:
    return _crowded_instant(sandbox) if timestamped else TimeSlice(None, None)


def ids_in(sandbox, part: TimeSlice) -> set[str]:
    """The ids the sandbox holds now in `part` (its ground truth)."""
    records = sandbox.control.truth("Company", "TimeEntry")["records"]
    return {
        record["id"]
        for record in records
        if part.holds(datetime.fromisoformat(record["LastModifiedDateTime"].replace("Z", "+00:00")))
    }


@KINDS
def test_a_server_ignoring_skip_stops_the_read_naming_the_part_and_what_to_check(
    new_sandbox, acumatica_connection, timestamped
):
    sandbox = new_sandbox(rows=3000, seed=3, tenants=("Company",))
    part = part_of(sandbox, timestamped)
    # Only the record pages ($top=200) lose their $skip: the timestamp probe pages with $skip too but has no
    # such guard, and would page forever. 20 pages, then $skip is honoured again: without the guard the read
    # ends (having read every record) instead of raising, so this test fails rather than hangs.
    sandbox.control.inject_fault("ignore_skip", count=20, path_contains=f"$top={PAGE}&")
    with AcumaticaHook(acumatica_connection(sandbox)) as hook, pytest.raises(RuntimeError) as raised:
        for _ in reader(hook, timestamped=timestamped).read(part):
            pass
    message = str(raised.value)
    assert message.startswith(f"{DESCRIPTION}: ") and str(part) in message
    assert "only 200 distinct ones came back" in message and "ignore $skip" in message
    assert "Check the endpoint with a plain $top/$skip request" in message


@KINDS
def test_a_part_still_changing_after_max_passes_is_left_for_the_next_run_with_a_warning(
    new_sandbox, acumatica_connection, caplog, timestamped
):
    sandbox = new_sandbox(rows=3000, seed=3, tenants=("Company",))
    part = part_of(sandbox, timestamped)
    before = ids_in(sandbox, part)
    # Every pass, 50 records arrive in the part while its fifth page is asked for: most land among the pages
    # already read, so each pass finds records the last one missed. One arrival more than MAX_PASSES: without
    # the guard the read goes on to a quiet pass and ends without a warning, so this test fails, not hangs.
    arrivals = {"tenant": "Company", "entity": "TimeEntry", "op": "insert", "random": 50}
    if timestamped:
        arrivals["timestamp"] = part.start.isoformat()
    sandbox.control.inject_fault(
        "mutate", count=MAX_PASSES + 1, path_contains=f"$top={PAGE}&$skip={4 * PAGE}", mutation=arrivals
    )
    with caplog.at_level(logging.INFO, logger="airflow_provider_acumatica.extract.slicing"):
        with AcumaticaHook(acumatica_connection(sandbox)) as hook:
            read = {
                record_id
                for batch in reader(hook, timestamped=timestamped).read(part)
                for record_id in batch.column("id")
            }
    again = [entry for entry in caplog.records if "reading it again" in entry.getMessage()]
    warnings = [entry.getMessage() for entry in caplog.records if entry.levelno == logging.WARNING]
    assert len(again) == MAX_PASSES - 1
    assert warnings == [
        f"{DESCRIPTION}: {part} still changing after {MAX_PASSES} passes; its newest records wait for the next run"
    ]
    waiting = ids_in(sandbox, part) - read
    assert before <= read  # what was there from the start is all read
    assert waiting and not waiting & before  # only records that arrived while it was read wait


def test_a_server_ignoring_skip_on_every_request_ends_the_probe_too(new_sandbox, acumatica_connection):
    # The timestamp probe pages with $skip as well: a page equal to its first one ends it, and the fetch's guard
    # then names the problem. 60 requests lose their $skip: without the probe's check it would page until they are
    # spent, then read everything normally, and this test would fail (no error) rather than hang.
    sandbox = new_sandbox(rows=3000, seed=3, tenants=("Company",))
    part = part_of(sandbox, timestamped=True)
    sandbox.control.inject_fault("ignore_skip", count=60)
    with AcumaticaHook(acumatica_connection(sandbox)) as hook, pytest.raises(RuntimeError, match="ignore \\$skip"):
        for _ in reader(hook, timestamped=True).read(part):
            pass
