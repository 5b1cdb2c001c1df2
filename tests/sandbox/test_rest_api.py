"""The REST entity API over real HTTP: filters, select/expand/custom, paging, writes, actions, errors."""

from __future__ import annotations

import pytest
from conftest import REST, sign_in


def _get(session, sandbox, entity, **params):
    return session.get(f"{sandbox.url}{REST}/{entity}", params=params)


def _error_shape(response, status):
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"message", "exceptionMessage", "exceptionType", "stackTrace"}
    return body


def test_endpoint_list_names_default_versions(shared_sandbox):
    import requests

    endpoints = requests.get(f"{shared_sandbox.url}/entity").json()["endpoints"]
    assert {(e["name"], e["version"]) for e in endpoints} >= {("Default", "22.200.001"), ("Default", "25.200.001")}


@pytest.mark.parametrize("operators", [("gt",), ("ge",), ("lt",), ("le",), ("ge", "le"), ("gt", "lt")])
def test_pure_time_ranges_answered_from_the_index_are_exact_at_their_bounds(shared_sandbox, shared_session, operators):
    # A filter of time bounds alone is answered from the index without testing each row: equal timestamps
    # (an instant many records share) must fall on the right side of each bound.
    truth = shared_sandbox.control.truth("Company", "TimeEntry")["records"]
    stamps = [r["LastModifiedDateTime"] for r in truth]
    instant = max(set(stamps), key=stamps.count)
    tests = {"gt": str.__gt__, "ge": str.__ge__, "lt": str.__lt__, "le": str.__le__}
    literal = f"datetimeoffset'{instant.replace('Z', '%2B00:00')}'"
    flt = " and ".join(f"LastModifiedDateTime {op} {literal}" for op in operators)
    expected = [r["id"] for r in truth if all(tests[op](r["LastModifiedDateTime"], instant) for op in operators)]
    response = shared_session.get(f"{shared_sandbox.url}{REST}/TimeEntry?$filter={flt}&$select=Summary")
    assert stamps.count(instant) > 1 and response.status_code == 200, response.text
    assert [r["id"] for r in response.json()] == expected


@pytest.mark.parametrize(
    ("flt", "check"),
    [
        ("EarningType eq 'OT'", lambda r: r["EarningType"] == "OT"),
        ("EarningType ne 'RG' and Billable eq true", lambda r: r["EarningType"] != "RG" and r["Billable"]),
        ("not (ApprovalStatus eq 'Completed')", lambda r: r["ApprovalStatus"] != "Completed"),
        ("CostRate gt 60 or CostRate lt 30", lambda r: r["CostRate"] > 60 or r["CostRate"] < 30),
        ("CostRate ge 50.5 and CostRate le 51", lambda r: 50.5 <= r["CostRate"] <= 51),
        ("startswith(Summary,'pour')", lambda r: r["Summary"].lower().startswith("pour")),
        ("endswith(Summary,'list')", lambda r: r["Summary"].endswith("list")),
        ("substringof('wall', Summary)", lambda r: "wall" in r["Summary"]),
        ("ExternalRefNbr eq null", lambda r: r["ExternalRefNbr"] is None),
        (
            "LastModifiedDateTime ge datetimeoffset'2026-06-01T00:00:00.000%2B02:00'",
            lambda r: r["LastModifiedDateTime"] >= "2026-05-31T22:00:00.000Z",
        ),
        # time windows are answered from a sorted index: same rows, same key order as a full scan
        (
            "LastModifiedDateTime ge datetimeoffset'2026-05-01T00:00:00Z' and LastModifiedDateTime lt "
            "datetimeoffset'2026-07-01T00:00:00Z'",
            lambda r: "2026-05-01" <= r["LastModifiedDateTime"] < "2026-07-01",
        ),
        (
            "LastModifiedDateTime gt datetimeoffset'2026-05-01T00:00:00Z' and EarningType eq 'OT' and "
            "LastModifiedDateTime le datetimeoffset'2026-09-01T00:00:00Z'",
            lambda r: (
                "2026-05-01T00:00:00.000Z" < r["LastModifiedDateTime"] <= "2026-09-01T00:00:00.000Z"
                and r["EarningType"] == "OT"
            ),
        ),
        ("LastModifiedDateTime lt datetimeoffset'2100-01-01T00:00:00Z'", lambda r: True),  # bounds holding every row
        (
            "LastModifiedDateTime lt datetimeoffset'2026-05-01T00:00:00Z' or EarningType eq 'OT'",
            lambda r: r["LastModifiedDateTime"] < "2026-05-01" or r["EarningType"] == "OT",
        ),
        (
            "not (LastModifiedDateTime lt datetimeoffset'2026-05-01T00:00:00Z')",
            lambda r: r["LastModifiedDateTime"] >= "2026-05-01",
        ),
    ],
)
def test_filter_operators_match_the_truth(shared_sandbox, shared_session, flt, check):
    from urllib.parse import unquote

    truth = shared_sandbox.control.truth("Company", "TimeEntry")["records"]
    expected = [r["id"] for r in truth if check(r)]
    response = shared_session.get(f"{shared_sandbox.url}{REST}/TimeEntry?$filter={flt}&$select=Summary")
    assert response.status_code == 200, (unquote(flt), response.text)
    assert [r["id"] for r in response.json()] == expected
    assert expected  # the data must exercise the operator


def test_string_literal_with_escaped_quote_and_date_literal(shared_sandbox, shared_session):
    response = _get(
        shared_session,
        shared_sandbox,
        "Project",
        **{"$filter": "Description eq 'O''Brien' or StartDate ge date'2020-01-01'"},
    )
    assert response.status_code == 200 and response.json()


@pytest.mark.parametrize(
    "flt",
    [
        "contains(Summary,'x')",
        "tolower(Summary) eq 'x'",
        "EarningType in ('RG','OT')",
        "Nope eq 1",
        "EarningType eq",
        "LastModifiedDateTime ge 2026-01-01T00:00:00Z",
    ],
)
def test_unsupported_filters_answer_400_with_acumatica_body(shared_sandbox, shared_session, flt):
    body = _error_shape(_get(shared_session, shared_sandbox, "TimeEntry", **{"$filter": flt}), 400)
    assert "$filter" in body["exceptionMessage"]


def test_select_limits_fields_and_keeps_id_and_row_number(shared_sandbox, shared_session):
    record = _get(shared_session, shared_sandbox, "TimeEntry", **{"$top": 1, "$select": "Employee,TimeSpent"}).json()[0]
    assert set(record) == {"id", "rowNumber", "note", "Employee", "TimeSpent", "custom", "_links"}
    assert record["custom"] == {}


def test_expand_and_custom_only_when_asked(shared_sandbox, shared_session):
    plain = _get(shared_session, shared_sandbox, "Project", **{"$top": 1}).json()[0]
    assert "Tasks" not in plain and plain["custom"] == {}
    rich = _get(
        shared_session, shared_sandbox, "Project", **{"$top": 1, "$expand": "Tasks", "$custom": "Document.UsrRegion"}
    ).json()[0]
    assert rich["Tasks"] and all(task["ProjectID"] == rich["ProjectID"] for task in rich["Tasks"])
    assert rich["custom"]["Document"]["UsrRegion"]["type"] == "CustomStringField"
    assert _get(shared_session, shared_sandbox, "Project", **{"$expand": "Nope"}).status_code == 400


def test_nested_select_limits_the_fields_of_an_expanded_detail(shared_sandbox, shared_session):
    url = f"{shared_sandbox.url}{REST}/Project"
    projects = shared_session.get(
        url, params={"$select": "ProjectID,Tasks/ProjectTaskID", "$expand": "Tasks", "$top": "20"}
    ).json()
    assert any(project["Tasks"] for project in projects)
    assert all("Description" not in project and project["ProjectID"]["value"] for project in projects)
    assert {field for project in projects for task in project["Tasks"] for field in task} == {
        "id",
        "rowNumber",
        "note",
        "ProjectTaskID",
        "custom",
        "_links",
    }
    assert shared_session.get(url, params={"$select": "Tasks/ProjectTaskID"}).status_code == 400  # no $expand
    assert shared_session.get(url, params={"$select": "Tasks/Nope", "$expand": "Tasks"}).status_code == 400


def test_files_attach_through_the_advertised_link_and_list_with_expand(make_sandbox):
    sandbox = make_sandbox()
    session = sign_in(sandbox)
    project = session.get(f"{sandbox.url}{REST}/Project", params={"$top": "1"}).json()[0]
    link = project["_links"]["files:put"]
    assert session.put(f"{sandbox.url}{link.replace('{filename}', 'site plan.txt')}", data=b"v1").status_code == 204
    assert session.put(f"{sandbox.url}{link.replace('{filename}', 'site plan.txt')}", data=b"v2").status_code == 204
    assert (
        session.put(f"{sandbox.url}{REST}/Project/{project['id']}/files/photo.jpg", data=b"\xff\xd8").status_code == 204
    )
    listed = session.get(
        f"{sandbox.url}{project['_links']['self']}", params={"$expand": "files", "$select": "files"}
    ).json()
    assert sorted(f["filename"] for f in listed["files"]) == ["Project\\photo.jpg", "Project\\site plan.txt"]
    contents = {f["filename"]: session.get(f"{sandbox.url}{f['href']}").content for f in listed["files"]}
    assert contents == {"Project\\site plan.txt": b"v2", "Project\\photo.jpg": b"\xff\xd8"}
    assert "files" not in session.get(f"{sandbox.url}{project['_links']['self']}").json()
    missing = f"{sandbox.url}{REST}/Project/00000000-0000-4000-8000-000000000000/files/a.txt"
    assert session.put(missing, data=b"x").status_code == 404
    other_tenant = sign_in(sandbox, "Subsidiary").get(f"{sandbox.url}{listed['files'][0]['href']}")
    assert other_tenant.status_code == 404


def test_ad_hoc_schema_names_the_custom_fields(shared_sandbox, shared_session):
    schema = _get(shared_session, shared_sandbox, "Project/$adHocSchema").json()
    assert schema["custom"] == {"Document": {"UsrRegion": {"type": "CustomStringField", "value": None}}}
    assert schema["ProjectID"] == {} and "Tasks" not in schema


def test_paging_covers_the_table_in_key_order(shared_sandbox, shared_session):
    ids, skip = [], 0
    while True:
        page = _get(
            shared_session, shared_sandbox, "TimeEntry", **{"$top": 1000, "$skip": skip, "$select": "TimeEntryID"}
        ).json()
        ids += [r["TimeEntryID"]["value"] for r in page]
        assert [r["rowNumber"] for r in page] == list(range(1, len(page) + 1))
        skip += len(page)
        if len(page) < 1000:
            break
    assert len(ids) == 3000 and ids == sorted(ids)
    assert len(_get(shared_session, shared_sandbox, "TimeEntry", **{"$select": "Employee"}).json()) == 3000


def test_values_are_wrapped_and_time_spans_are_hh_mm(shared_sandbox, shared_session):
    record = _get(shared_session, shared_sandbox, "TimeEntry", **{"$top": 50}).json()
    assert all(set(r["TimeSpent"]) == {"value"} for r in record)
    assert all(len(r["TimeSpent"]["value"]) == 5 and r["TimeSpent"]["value"][2] == ":" for r in record)
    assert any(r["ExternalRefNbr"] == {} for r in record)
    assert record[0]["_links"]["self"].endswith(record[0]["id"])


def _entry(sandbox, **overrides):
    truth = sandbox.control.truth
    task = truth("Company", "ProjectTask")["records"][0]
    employee = next(e for e in truth("Company", "Employee")["records"] if e["Status"] == "Active")
    entry = {
        "Employee": employee["EmployeeID"],
        "Date": "2026-03-02T07:00:00",
        "ProjectID": task["ProjectID"],
        "ProjectTaskID": task["ProjectTaskID"],
        "CostCode": truth("Company", "CostCode")["records"][0]["CostCodeID"],
        "EarningType": "RG",
        "TimeSpent": "08:00",
        "Billable": True,
        "ExternalRefNbr": "MC-1",
    }
    entry.update(overrides)
    return {name: {"value": value} for name, value in entry.items()}


def test_put_upserts_and_honours_if_match_and_if_none_match(make_sandbox):
    sandbox = make_sandbox()
    session = sign_in(sandbox)
    url = f"{sandbox.url}{REST}/TimeEntry"
    created = session.put(url, json=_entry(sandbox), headers={"If-None-Match": "*"})
    assert created.status_code == 200 and created.json()["ApprovalStatus"]["value"] == "Open"
    key = {"TimeEntryID": created.json()["TimeEntryID"]}
    assert session.put(url, json={**_entry(sandbox), **key}, headers={"If-None-Match": "*"}).status_code == 412
    updated = session.put(url, json={**key, "Summary": {"value": "Rebar"}}, headers={"If-Match": "*"})
    assert updated.json()["id"] == created.json()["id"] and updated.json()["Summary"]["value"] == "Rebar"
    missing = {"TimeEntryID": {"value": "00000000-0000-4000-8000-000000000000"}}
    _error_shape(session.put(url, json={**_entry(sandbox), **missing}, headers={"If-Match": "*"}), 412)
    truth = [r for r in sandbox.control.truth("Company", "TimeEntry")["records"] if r["id"] == created.json()["id"]]
    assert truth[0]["Summary"] == "Rebar" and truth[0]["LastModifiedDateTime"].endswith("Z")


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"Employee": "EP99999"}, "Employee"),
        ({"ProjectID": "NOPE"}, "ProjectID"),
        ({"ProjectTaskID": "99"}, "ProjectTaskID"),
        ({"CostCode": "99-999"}, "CostCode"),
        ({"EarningType": "XX"}, "EarningType"),
        ({"TimeSpent": "00:00"}, "TimeSpent"),
        ({"BillableTime": "09:00"}, "BillableTime"),
    ],
)
def test_invalid_time_entry_answers_422_with_field_error(make_sandbox, overrides, field):
    sandbox = make_sandbox()
    response = sign_in(sandbox).put(f"{sandbox.url}{REST}/TimeEntry", json=_entry(sandbox, **overrides))
    assert response.status_code == 422
    body = response.json()
    assert body[field]["error"] and body["error"]
    assert [name for name, value in body.items() if isinstance(value, dict) and "error" in value] == [field]


def test_actions_complete_and_reopen_then_delete(make_sandbox):
    sandbox = make_sandbox()
    session = sign_in(sandbox)
    url = f"{sandbox.url}{REST}/TimeEntry"
    record = session.put(url, json=_entry(sandbox)).json()
    assert session.post(f"{url}/CompleteTimeEntry", json={"entity": {"id": record["id"]}}).status_code == 204
    assert session.get(f"{url}/{record['id']}").json()["ApprovalStatus"]["value"] == "Completed"
    assert session.put(url, json={"id": record["id"], "Summary": {"value": "x"}}).status_code == 422
    assert (
        session.post(f"{url}/OpenTimeEntry", json={"entity": {"TimeEntryID": record["TimeEntryID"]}}).status_code == 204
    )
    assert session.get(f"{url}/{record['id']}").json()["ApprovalStatus"]["value"] == "Open"
    assert session.delete(f"{url}/{record['id']}").status_code == 204
    _error_shape(session.get(f"{url}/{record['id']}"), 404)
    assert sandbox.control.truth("Company", "TimeEntry")["deleted"][-1]["id"] == record["id"]
    _error_shape(session.post(f"{url}/Explode", json={"entity": {}}), 404)


def test_errors_401_404_500_have_acumatica_shape(make_sandbox):
    import requests

    sandbox = make_sandbox()
    _error_shape(requests.get(f"{sandbox.url}{REST}/TimeEntry"), 401)
    session = sign_in(sandbox)
    _error_shape(session.get(f"{sandbox.url}{REST}/NoSuchEntity"), 404)
    _error_shape(session.get(f"{sandbox.url}/entity/Default/9.9/TimeEntry"), 404)
    sandbox.control.inject_fault("500")
    _error_shape(session.get(f"{sandbox.url}{REST}/TimeEntry"), 500)
