"""OData v4: the DAC interface with filters, select, orderby, paging, $metadata, deleted records; the GI;
Basic authentication."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree

import pytest
import requests

from airflow_provider_acumatica.sandbox import SANDBOX_GI, SANDBOX_PASSWORD

AUTH = ("admin", SANDBOX_PASSWORD)


def _dac(sandbox, name, tenant="Company", auth=AUTH, **params):
    return requests.get(f"{sandbox.url}/t/{tenant}/api/odata/dac/{name}", params=params, auth=auth)


def test_dac_filter_select_orderby_top_skip(shared_sandbox):
    everything = _dac(shared_sandbox, "PMTask").json()["value"]
    assert [(t["ProjectID"], t["TaskID"]) for t in everything] == sorted(
        (t["ProjectID"], t["TaskID"]) for t in everything
    )
    cut = sorted(t["LastModifiedDateTime"] for t in everything)[len(everything) // 2]
    page = _dac(
        shared_sandbox,
        "PMTask",
        **{
            "$filter": "Status eq 'Active' and LastModifiedDateTime ge 2026-01-01T00:00:00Z",
            "$select": "TaskCD,NoteID",
            "$orderby": "TaskCD desc,NoteID",
            "$top": "5",
            "$skip": "2",
        },
    ).json()["value"]
    assert len(page) == 5 and set(page[0]) == {"TaskCD", "NoteID"}
    assert [t["TaskCD"] for t in page] == sorted((t["TaskCD"] for t in page), reverse=True)
    assert cut  # timestamps are rendered
    assert _dac(shared_sandbox, "PMTask", **{"$filter": "contains(TaskCD,'0')"}).status_code == 200
    assert _dac(shared_sandbox, "PMTask", **{"$filter": "Nope eq 1"}).status_code == 400
    assert _dac(shared_sandbox, "PMTask", **{"$orderby": "Nope"}).status_code == 400


def test_dac_shows_the_same_store_as_rest(make_sandbox):
    sandbox = make_sandbox()
    project = sandbox.control.truth("Company", "Project")["records"][0]
    sandbox.control.update("Company", "Project", [{"id": project["id"], "Description": "Renamed by test"}])
    rows = _dac(sandbox, "PMProject", **{"$filter": f"NoteID eq {project['id']}"}).json()["value"]
    assert rows[0]["Description"] == "Renamed by test" and rows[0]["ContractCD"] == project["ProjectID"]


def test_metadata_is_csdl_with_keys_and_edm_types(shared_sandbox):
    response = requests.get(f"{shared_sandbox.url}/t/Company/api/odata/dac/$metadata", auth=AUTH)
    namespace = {"edm": "http://docs.oasis-open.org/odata/ns/edm"}
    root = ElementTree.fromstring(response.content)
    task = root.find(".//edm:EntityType[@Name='PMTask']", namespace)
    assert [ref.get("Name") for ref in task.findall("edm:Key/edm:PropertyRef", namespace)] == ["ProjectID", "TaskID"]
    types = {p.get("Name"): p.get("Type") for p in task.findall("edm:Property", namespace)}
    assert types["LastModifiedDateTime"] == "Edm.DateTimeOffset" and types["NoteID"] == "Edm.Guid"
    assert {s.get("Name") for s in root.findall(".//edm:EntitySet", namespace)} == {
        "PMProject",
        "PMTask",
        "EPEmployee",
        "PMCostCode",
    }


def test_deleted_records_for_tracked_dac_only(make_sandbox):
    sandbox = make_sandbox()
    sandbox.control.set_clock("2026-03-01T12:00:00Z")
    early = sandbox.control.delete("Company", "ProjectTask", random=1)
    sandbox.control.advance_clock(3600)
    late = sandbox.control.delete("Company", "ProjectTask", random=2)
    response = _dac(sandbox, "PMTask/px.GetDeletedRecords()", **{"$filter": "DeleteDate ge 2026-03-01T12:30:00Z"})
    assert sorted(r["RefNoteID"] for r in response.json()["value"]) == sorted(late) and early[0] not in late
    pages = [
        _dac(sandbox, "PMTask/px.GetDeletedRecords()", **{"$top": "2", "$skip": str(skip)}).json()["value"]
        for skip in (0, 2)
    ]
    assert [len(page) for page in pages] == [2, 1]
    assert sorted(r["RefNoteID"] for page in pages for r in page) == sorted(early + late)
    assert _dac(sandbox, "PMProject/px.GetDeletedRecords()").status_code == 400


def test_generic_inquiry_has_last_modified_on_and_no_expand(shared_sandbox):
    url = f"{shared_sandbox.url}/t/Company/api/odata/gi/{SANDBOX_GI}"
    rows = requests.get(
        url, params={"$top": "3", "$filter": "LastModifiedOn ge 2025-01-01T00:00:00Z"}, auth=AUTH
    ).json()["value"]
    assert len(rows) == 3 and "LastModifiedOn" in rows[0]
    assert requests.get(url, params={"$expand": "x"}, auth=AUTH).status_code == 400
    assert requests.get(url, params={"$count": "true"}, auth=AUTH).status_code == 400


@pytest.mark.parametrize(
    ("auth", "status"),
    [
        (AUTH, 200),
        (("admin@Company", SANDBOX_PASSWORD), 200),
        (("admin@Subsidiary", SANDBOX_PASSWORD), 401),
        (("admin", "wrong"), 401),
        (None, 401),
    ],
)
def test_basic_auth_on_odata(shared_sandbox, auth, status):
    assert _dac(shared_sandbox, "EPEmployee", auth=auth).status_code == status
