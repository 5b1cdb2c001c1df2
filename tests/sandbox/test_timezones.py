"""Date-times stored in UTC and rendered in the profile time zone, with and without offsets, across DST."""

from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest
from conftest import REST, sign_in


def _rendered_and_truth(sandbox, entity="TimeEntry"):
    session = sign_in(sandbox)
    rendered = {
        r["id"]: r["LastModifiedDateTime"]["value"] for r in session.get(f"{sandbox.url}{REST}/{entity}").json()
    }
    truth = {r["id"]: r["LastModifiedDateTime"] for r in sandbox.control.truth("Company", entity)["records"]}
    return rendered, truth


@pytest.mark.parametrize("zone", ["America/New_York", "Europe/Berlin", "Australia/Sydney"])
def test_offsets_render_the_same_instant_across_dst(make_sandbox, zone):
    sandbox = make_sandbox(rows=600, profile_timezone=zone)
    rendered, truth = _rendered_and_truth(sandbox)
    offsets = set()
    for row_id, text in rendered.items():
        moment = datetime.fromisoformat(text)
        assert moment.utcoffset() == moment.astimezone(ZoneInfo(zone)).utcoffset()
        assert moment.astimezone(timezone.utc) == datetime.fromisoformat(truth[row_id].replace("Z", "+00:00"))
        offsets.add(moment.utcoffset())
    assert len(offsets) == 2  # both standard and daylight time occur in the data


def test_naive_rendering_is_wall_time_including_the_repeated_autumn_hour(make_sandbox):
    zone = ZoneInfo("America/New_York")
    sandbox = make_sandbox(rows=600, naive_datetimes=True)
    rendered, truth = _rendered_and_truth(sandbox)
    repeated = 0
    for row_id, text in rendered.items():
        utc = datetime.fromisoformat(truth[row_id].replace("Z", "+00:00"))
        local = utc.astimezone(zone)
        assert text == local.replace(tzinfo=None).isoformat(timespec="milliseconds")
        repeated += local.fold == 1
    assert repeated  # some timestamps fall in the second pass of the repeated hour


def test_dates_inside_dst_transitions_exist_for_zones_on_both_sides_of_utc(shared_sandbox):
    stamps = [
        datetime.fromisoformat(r["LastModifiedDateTime"].replace("Z", "+00:00"))
        for r in shared_sandbox.control.truth("Company", "TimeEntry")["records"]
    ]
    for zone in (ZoneInfo("America/New_York"), ZoneInfo("Europe/Berlin")):
        ambiguous = [
            s
            for s in stamps
            if s.astimezone(zone).replace(fold=1 - s.astimezone(zone).fold).utcoffset()
            != s.astimezone(zone).utcoffset()
        ]
        assert ambiguous, zone
