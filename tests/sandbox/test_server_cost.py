"""The sandbox's server-cost model: records rendered per list answer are counted (and, with ms_per_record,
charged while the request holds its concurrency slot), $select-ed answers alike."""

from __future__ import annotations

from conftest import REST, sign_in


def test_list_answers_count_their_records_select_or_not_and_single_records_do_not(make_sandbox):
    sandbox = make_sandbox(rows=300, ms_per_record=0.01)
    session = sign_in(sandbox)
    sandbox.control.reset_counters()
    assert len(session.get(f"{sandbox.url}{REST}/TimeEntry", params={"$top": 120}).json()) == 120
    stamps = session.get(
        f"{sandbox.url}{REST}/TimeEntry", params={"$select": "LastModifiedDateTime", "$top": 50, "$skip": 280}
    ).json()
    assert len(stamps) == 20
    one = stamps and session.get(f"{sandbox.url}{REST}/TimeEntry", params={"$top": 1, "$skip": 299}).json()
    assert len(one) == 1
    assert sandbox.control.counters()["records_rendered"] == 120 + 20 + 1


def test_odata_pages_are_counted_too(make_sandbox):
    sandbox = make_sandbox(rows=300)
    session = sign_in(sandbox)
    sandbox.control.reset_counters()
    rows = session.get(f"{sandbox.url}/t/Company/api/odata/dac/PMTask", params={"$top": 7}).json()["value"]
    assert len(rows) == 7 and sandbox.control.counters()["records_rendered"] == 7
