"""OData as Acumatica serves it: service documents, $format, key reads, fully qualified names, $expand with
navigation properties in $metadata, $count, OData error bodies, 401 challenges, v4 refusing v3 literals, and
generic inquiries at their legacy /OData/ and /ODataV4/ paths."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree

import pytest
import requests

from airflow_provider_acumatica.sandbox import SANDBOX_GI, SANDBOX_PASSWORD

AUTH = ("admin", SANDBOX_PASSWORD)
EDM = {"edm": "http://docs.oasis-open.org/odata/ns/edm"}


def _get(sandbox, path, auth=AUTH, **params):
    return requests.get(f"{sandbox.url}{path}", params=params, auth=auth)


def _dac(sandbox, resource, **params):
    return _get(sandbox, f"/t/Company/api/odata/dac/{resource}", **params)


def test_service_document_lists_the_entity_sets(shared_sandbox):
    for path in ("/t/Company/api/odata/dac/", "/t/Company/api/odata/dac"):
        document = _get(shared_sandbox, path, **{"$format": "json"}).json()
        assert document["@odata.context"].endswith("/t/Company/api/odata/dac/$metadata")
        assert {(s["name"], s["url"], s["kind"]) for s in document["value"]} >= {
            ("PMProject", "PMProject", "EntitySet")
        }
    assert _dac(shared_sandbox, "PMProject", **{"$format": "json", "$top": "1"}).status_code == 200
    assert _dac(shared_sandbox, "PMProject", **{"$format": "atom"}).status_code == 400


def test_key_reads_by_one_key_or_named_keys(shared_sandbox):
    project = _dac(shared_sandbox, "PMProject", **{"$top": "1", "$skip": "3"}).json()["value"][0]
    by_key = _dac(shared_sandbox, f"PMProject({project['ContractID']})").json()
    assert by_key["@odata.context"].endswith("$metadata#PMProject/$entity")
    assert {k: v for k, v in by_key.items() if not k.startswith("@")} == project
    assert _dac(shared_sandbox, f"PMProject(ContractID={project['ContractID']})").json()["NoteID"] == project["NoteID"]
    task = _dac(shared_sandbox, "PMTask", **{"$top": "1"}).json()["value"][0]
    named = _dac(
        shared_sandbox, f"PMTask(ProjectID={task['ProjectID']},TaskID={task['TaskID']})", **{"$select": "TaskCD"}
    )
    assert named.json()["TaskCD"] == task["TaskCD"] and "NoteID" not in named.json()
    assert _dac(shared_sandbox, "PMProject(999999)").status_code == 404
    assert _dac(shared_sandbox, "PMProject('x')").status_code == 400
    assert _dac(shared_sandbox, f"PMTask({task['TaskID']})").status_code == 400


def test_fully_qualified_names_read_the_same_set(shared_sandbox):
    short = _dac(shared_sandbox, "PMProject", **{"$top": "2"}).json()["value"]
    assert _dac(shared_sandbox, "PX_Objects_PM_PMProject", **{"$top": "2"}).json()["value"] == short
    assert _dac(shared_sandbox, "PX_Objects_EP_EPEmployee", **{"$top": "1"}).status_code == 200
    assert _dac(shared_sandbox, "PX_Objects_XX_PMProject").status_code == 404


def test_expand_follows_the_navigation_properties_of_metadata(shared_sandbox):
    root = ElementTree.fromstring(_dac(shared_sandbox, "$metadata").content)
    navigation = root.find(".//edm:EntityType[@Name='PMProject']/edm:NavigationProperty", EDM)
    assert (navigation.get("Name"), navigation.get("Type")) == ("Tasks", "Collection(PX.Objects.PMTask)")
    binding = root.find(".//edm:EntitySet[@Name='PMProject']/edm:NavigationPropertyBinding", EDM)
    assert (binding.get("Path"), binding.get("Target")) == ("Tasks", "PMTask")
    projects = _dac(shared_sandbox, "PMProject", **{"$expand": "Tasks", "$top": "5"}).json()["value"]
    tasks = _dac(shared_sandbox, "PMTask").json()["value"]
    for project in projects:
        assert project["Tasks"] == [t for t in tasks if t["ProjectID"] == project["ContractID"]]
    assert any(project["Tasks"] for project in projects)
    task = _dac(shared_sandbox, "PMTask", **{"$expand": "Project", "$top": "1"}).json()["value"][0]
    assert task["Project"]["ContractID"] == task["ProjectID"]
    assert _dac(shared_sandbox, "PMProject", **{"$expand": "Nope"}).status_code == 400
    assert _dac(shared_sandbox, "PMProject", **{"$expand": "Tasks($select=TaskCD)"}).status_code == 400


def test_count_inline_and_as_a_path(shared_sandbox):
    active = "Status eq 'Active'"
    everything = _dac(shared_sandbox, "PMTask", **{"$filter": active}).json()["value"]
    page = _dac(shared_sandbox, "PMTask", **{"$filter": active, "$count": "true", "$top": "2"}).json()
    assert page["@odata.count"] == len(everything) > 2 and len(page["value"]) == 2
    counted = _dac(shared_sandbox, "PMTask/$count", **{"$filter": active})
    assert counted.headers["Content-Type"].startswith("text/plain") and int(counted.text) == len(everything)
    assert "@odata.count" not in _dac(shared_sandbox, "PMTask", **{"$count": "false", "$top": "1"}).json()
    assert _dac(shared_sandbox, "PMTask", **{"$count": "yes"}).status_code == 400


def test_errors_are_odata_shaped_and_401_challenges(shared_sandbox):
    missing = _dac(shared_sandbox, "Nope")
    assert missing.status_code == 404 and set(missing.json()) == {"error"}
    assert missing.json()["error"]["code"] and "PMProject" in missing.json()["error"]["message"]
    bad = _dac(shared_sandbox, "PMTask", **{"$filter": "Nope eq 1"})
    assert bad.status_code == 400 and "Nope" in bad.json()["error"]["message"]
    anonymous = _get(shared_sandbox, "/t/Company/api/odata/dac/PMProject", auth=None)
    assert anonymous.status_code == 401 and "error" in anonymous.json()
    challenges = anonymous.raw.headers.getlist("WWW-Authenticate")
    assert {challenge.split()[0] for challenge in challenges} == {"Basic", "Bearer"}


@pytest.mark.parametrize("literal", ["datetimeoffset'2025-01-01T00:00:00Z'", "datetime'2025-01-01T00:00:00'"])
def test_v4_refuses_v3_date_time_literals(shared_sandbox, literal):
    refused = _dac(shared_sandbox, "PMTask", **{"$filter": f"LastModifiedDateTime ge {literal}"})
    assert refused.status_code == 400 and "v3" in refused.json()["error"]["message"]
    assert (
        _dac(shared_sandbox, "PMTask", **{"$filter": "LastModifiedDateTime ge 2025-01-01T00:00:00Z"}).status_code == 200
    )


@pytest.mark.parametrize(
    ("root", "context", "literal"),
    [
        ("/t/Company/api/odata/gi", "@odata.context", "2025-01-01T00:00:00Z"),
        ("/ODataV4/Company", "@odata.context", "2025-01-01T00:00:00Z"),
        ("/odatav4/company", "@odata.context", "2025-01-01T00:00:00Z"),
        ("/OData/Company", "odata.metadata", "datetimeoffset'2025-01-01T00:00:00Z'"),
    ],
)
def test_generic_inquiry_at_each_of_its_paths(shared_sandbox, root, context, literal):
    rows = _get(
        shared_sandbox, f"{root}/{SANDBOX_GI}", **{"$top": "3", "$filter": f"LastModifiedOn ge {literal}"}
    ).json()
    reference = _get(shared_sandbox, f"/t/Company/api/odata/gi/{SANDBOX_GI}", **{"$top": "3"}).json()["value"]
    assert rows[context].endswith(f"/$metadata#{SANDBOX_GI}") and rows["value"] == reference
    document = _get(shared_sandbox, f"{root}/").json()
    assert [s["name"] for s in document["value"]] == [SANDBOX_GI]
    assert _get(shared_sandbox, f"{root}/$metadata").headers["Content-Type"].startswith("application/xml")
    assert _get(shared_sandbox, f"{root}/{SANDBOX_GI}", **{"$count": "true"}).status_code == 400


def test_legacy_v3_path_speaks_v3(shared_sandbox):
    bare = _get(shared_sandbox, f"/OData/Company/{SANDBOX_GI}", **{"$filter": "LastModifiedOn ge 2025-01-01T00:00:00Z"})
    assert bare.status_code == 400 and "odata.error" in bare.json()
    root = ElementTree.fromstring(_get(shared_sandbox, "/OData/Company/$metadata").content)
    assert root.get("Version") == "1.0"
