"""Reads and writes through the hook: exact records, filters, details, custom fields, OData, date-times."""

from __future__ import annotations

import datetime
from zoneinfo import ZoneInfo

import pytest

from airflow_provider_acumatica.client.api import action_status_path
from airflow_provider_acumatica.client.errors import AcumaticaApiError, AcumaticaValidationError
from airflow_provider_acumatica.client.queries import and_, eq, ge, lt
from airflow_provider_acumatica.hooks.acumatica import AcumaticaHook

UTC = datetime.timezone.utc


def _instant(text):
    """Truth date-times are UTC '...Z' strings; other values compare as they are."""
    if isinstance(text, str) and text.endswith("Z") and "T" in text:
        return datetime.datetime.fromisoformat(text)
    return text


def _truth(sandbox, entity, tenant="Company"):
    return {record["id"]: record for record in sandbox.control.truth(tenant, entity)["records"]}


def _assert_same_instants(records, truth, fields, naive_zone=None) -> int:
    """Compare with the truth; return how many naive values fell in a repeated hour."""
    assert {record["id"] for record in records} == set(truth)
    repeated = 0
    for record in records:
        for field in fields:
            expected = _instant(truth[record["id"]][field])
            if naive_zone is not None:  # the offset is lost: a repeated wall time means its EARLIER instant
                wall = expected.astimezone(naive_zone).replace(tzinfo=None)
                earlier = wall.replace(tzinfo=naive_zone, fold=0).astimezone(UTC)
                repeated += earlier != expected
                expected = earlier
            assert record[field] == expected, (record["id"], field)
            assert record[field].utcoffset() == datetime.timedelta(0)
    return repeated


# Zones on both sides of UTC, with DST in both hemispheres; the sandbox's data spans a year and puts
# records on the DST changes, so repeated autumn hours and spring gaps are in the data.
@pytest.mark.parametrize("zone", ["America/New_York", "Europe/Berlin", "Australia/Sydney", "Asia/Kolkata"])
@pytest.mark.parametrize("naive", [True, False])
def test_datetimes_come_out_as_the_right_utc_instants(new_sandbox, acumatica_connection, zone, naive):
    sandbox = new_sandbox(rows=400, profile_timezone=zone, naive_datetimes=naive, tenants=("Company",))
    conn_id = acumatica_connection(sandbox, profile_timezone=zone, page_size=100)
    with AcumaticaHook(conn_id) as hook:
        records = list(hook.iter_entity("TimeEntry"))  # the first page teaches its shape, the next are parsed typed
        stamps = hook.get_entity_values("TimeEntry", "LastModifiedDateTime", top=400)
    assert stamps == [record["LastModifiedDateTime"] for record in records]
    repeated = _assert_same_instants(
        records, _truth(sandbox, "TimeEntry"), ("Date", "LastModifiedDateTime"), ZoneInfo(zone) if naive else None
    )
    if naive and zone != "Asia/Kolkata":
        assert repeated, "the data should hold wall times in a repeated autumn hour"


def test_iter_entity_returns_exactly_the_records_with_custom_fields(shared_sandbox, acumatica_connection):
    truth = _truth(shared_sandbox, "TimeEntry")
    with AcumaticaHook(acumatica_connection(shared_sandbox)) as hook:
        records = list(hook.iter_entity("TimeEntry", custom=["TimeActivity.UsrShift"], page_size=64))
    assert len(records) == len(truth) == 300
    for record in records:
        expected = truth[record["id"]]
        assert record["custom"] == {"TimeActivity.UsrShift": expected["UsrShift"]}
        assert {field: record[field] for field in ("Employee", "TimeSpent", "CostRate", "ExternalRefNbr")} == {
            field: expected[field] for field in ("Employee", "TimeSpent", "CostRate", "ExternalRefNbr")
        }
        assert "_links" not in record


def test_iter_entity_and_iter_odata_read_everything_from_an_instance_that_caps_its_pages(
    new_sandbox, acumatica_connection
):
    sandbox = new_sandbox(rows=500, tenants=("Company",), max_page_size=70)
    with AcumaticaHook(acumatica_connection(sandbox, page_size=200)) as hook:
        entries = [record["id"] for record in hook.iter_entity("TimeEntry")]
        tasks = [row["NoteID"] for row in hook.iter_odata("PMTask")]
    assert sorted(entries) == sorted(
        record["id"] for record in sandbox.control.truth("Company", "TimeEntry")["records"]
    )
    assert sorted(tasks) == sorted(
        record["id"] for record in sandbox.control.truth("Company", "ProjectTask")["records"]
    )


def test_filter_builder_selects_the_window(shared_sandbox, acumatica_connection):
    truth = list(_truth(shared_sandbox, "TimeEntry").values())
    stamps = sorted(_instant(record["LastModifiedDateTime"]) for record in truth)
    start, end = stamps[50], stamps[200]
    expected = {r["id"] for r in truth if start <= _instant(r["LastModifiedDateTime"]) < end and r["Billable"]}
    window = and_(
        ge("LastModifiedDateTime", start.astimezone(datetime.timezone(datetime.timedelta(hours=-7)))),
        lt("LastModifiedDateTime", end),
        eq("Billable", True),
    )
    with AcumaticaHook(acumatica_connection(shared_sandbox)) as hook:
        found = {record["id"] for record in hook.iter_entity("TimeEntry", filter=window, page_size=40)}
    assert found == expected and found


def test_expanded_details_are_lists_of_plain_records(shared_sandbox, acumatica_connection):
    with AcumaticaHook(acumatica_connection(shared_sandbox)) as hook:
        plain = hook.get_entity_page("Project", top=3)
        expanded = hook.get_entity_page("Project", expand="Tasks", top=3)
    assert "Tasks" not in plain[0]
    tasks = [task for project in expanded for task in project["Tasks"]]
    assert tasks and all(
        isinstance(task["ProjectTaskID"], str) and "id" in task and "_links" not in task for task in tasks
    )


def test_iter_odata_reads_every_row_with_typed_datetimes(shared_sandbox, acumatica_connection):
    truth = _truth(shared_sandbox, "Project")
    with AcumaticaHook(acumatica_connection(shared_sandbox, auth_type="oauth2_password")) as hook:
        metadata = hook.get_odata_metadata()
        rows = list(
            hook.iter_odata(
                "PMProject", filter=ge("LastModifiedDateTime", datetime.datetime(2000, 1, 1, tzinfo=UTC)), page_size=4
            )
        )
    assert "LastModifiedDateTime" in metadata["PMProject"].datetime_columns and metadata["PMProject"].key
    assert {row["NoteID"] for row in rows} == set(truth)
    for row in rows:
        assert row["LastModifiedDateTime"] == _instant(truth[row["NoteID"]]["LastModifiedDateTime"])


def test_writes_put_action_delete_and_field_errors(new_sandbox, acumatica_connection):
    sandbox = new_sandbox(rows=30, tenants=("Company",))
    template = next(iter(_truth(sandbox, "TimeEntry").values()))
    entry = {
        field: template[field]
        for field in ("Employee", "ProjectID", "ProjectTaskID", "CostCode", "EarningType", "UnionLocal", "WCCCode")
    }
    entry.update(
        Date=datetime.datetime(2026, 1, 5, 8, 0, tzinfo=UTC),
        TimeSpent="02:30",
        BillableTime="00:00",
        Billable=False,
        Summary="from the hook",
        ExternalRefNbr="EXT-1",
    )
    with AcumaticaHook(acumatica_connection(sandbox)) as hook:
        with pytest.raises(AcumaticaValidationError) as caught:
            hook.put_entity("TimeEntry", {**entry, "Employee": "NOBODY"}, mode="insert")
        created = hook.put_entity("TimeEntry", entry, mode="insert")
        hook.invoke_action("TimeEntry", "CompleteTimeEntry", {"id": created["id"]})
        truth = _truth(sandbox, "TimeEntry")[created["id"]]
        hook.delete_entity("TimeEntry", created["id"])
    assert "Employee" in caught.value.field_errors and "NOBODY" in caught.value.field_errors["Employee"]
    assert created["Summary"] == "from the hook" and created["Date"] == entry["Date"]
    assert truth["ApprovalStatus"] == "Completed" and truth["ExternalRefNbr"] == "EXT-1"
    assert created["id"] in {item["id"] for item in sandbox.control.truth("Company", "TimeEntry")["deleted"]}


def _open_entry(sandbox) -> str:
    return next(record["id"] for record in _truth(sandbox, "TimeEntry").values() if record["ApprovalStatus"] == "Open")


def test_a_long_running_action_is_waited_for_until_applied(new_sandbox, acumatica_connection):
    """202 + Location: the hook polls the status (202, 202, then 204) and returns once the action is applied."""
    sandbox = new_sandbox(rows=30, tenants=("Company",))
    entry = _open_entry(sandbox)
    with AcumaticaHook(acumatica_connection(sandbox)) as hook:
        hook.get_entity_batch("TimeEntry", top=1)  # signed in: from here on, every request is the action's
        sandbox.control.inject_fault("long_running", polls=2, path_contains="CompleteTimeEntry")
        before = sandbox.control.counters()["requests"]
        hook.invoke_action("TimeEntry", "CompleteTimeEntry", {"id": entry})
        requests = sandbox.control.counters()["requests"] - before
        assert _truth(sandbox, "TimeEntry")[entry]["ApprovalStatus"] == "Completed"
    assert requests == 1 + 3  # the POST and three status checks


def test_a_long_running_action_that_fails_raises_its_error_at_once(new_sandbox, acumatica_connection):
    """The status check's 500 is the action's outcome: raised with Acumatica's message, not retried."""
    sandbox = new_sandbox(rows=30, tenants=("Company",))
    entry = _open_entry(sandbox)
    with AcumaticaHook(acumatica_connection(sandbox)) as hook:
        sandbox.control.inject_fault("long_running", polls=0, path_contains="CompleteTimeEntry", count=1)
        hook.get_entity_batch("TimeEntry", top=1)
        before = sandbox.control.counters()["requests"]
        sandbox.control.inject_fault(
            "mutate",
            path_contains="/status/",
            mutation={
                "tenant": "Company",
                "entity": "TimeEntry",
                "op": "update",
                "records": [{"id": entry, "ApprovalStatus": "Completed"}],
            },
        )
        with pytest.raises(AcumaticaApiError, match="disabled for a time entry with the status Completed") as caught:
            hook.invoke_action("TimeEntry", "CompleteTimeEntry", {"id": entry})
        requests = sandbox.control.counters()["requests"] - before
    assert caught.value.status == 500 and "/status/" in caught.value.path
    assert requests == 1 + 1


@pytest.mark.parametrize(
    "location",
    [
        "/entity/Default/24.200.001/TimeEntry/Release/status/3f1c",
        "/AcumaticaERP/entity/Default/24.200.001/TimeEntry/Release/status/3f1c",
        "https://erp.example.com/AcumaticaERP/Entity/Default/24.200.001/TimeEntry/Release/status/3f1c",
    ],
    ids=["site at the root", "site in a virtual directory", "whole URL"],
)
def test_the_status_of_a_long_running_action_is_polled_under_the_instance_url(location):
    """The instance URL already holds the site (`https://host/AcumaticaERP`): only what follows `/entity/` is
    appended to it, so an instance in a virtual directory is not asked for `/AcumaticaERP/AcumaticaERP/...`, and a
    Location naming another host sends no credentials there."""
    path = action_status_path("/entity/Default/24.200.001/TimeEntry/Release", location)
    assert path.lower() == "/entity/default/24.200.001/timeentry/release/status/3f1c"


def test_a_202_without_a_status_location_is_an_error_that_says_the_outcome_is_unknown():
    with pytest.raises(AcumaticaApiError, match="outcome is unknown"):
        action_status_path("/entity/Default/24.200.001/TimeEntry/Release", None)
