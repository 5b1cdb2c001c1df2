"""The endpoint's OpenAPI document: its shape, its field types from the catalog, and a third-party client on it."""

from __future__ import annotations

import pytest
import requests
from conftest import REST

from airflow_provider_acumatica.sandbox import SANDBOX_PASSWORD, SANDBOX_USER
from airflow_provider_acumatica.sandbox.catalog import ENTITIES

WRAPPER = "#/components/schemas/{}"


@pytest.fixture(scope="module")
def document(shared_sandbox, shared_session):
    response = shared_session.get(f"{shared_sandbox.url}{REST}/swagger.json")
    assert response.status_code == 200, response.text
    return response.json()


def _fields(document, entity):
    base, own = document["components"]["schemas"][entity]["allOf"]
    assert base == {"$ref": WRAPPER.format("Entity")}
    return own["properties"]


def test_the_document_needs_a_signed_in_user_and_a_known_endpoint(shared_sandbox, shared_session):
    assert requests.get(f"{shared_sandbox.url}{REST}/swagger.json").status_code == 401
    assert shared_session.get(f"{shared_sandbox.url}/entity/Default/9.9/swagger.json").status_code == 404


def test_fields_reference_the_value_wrappers_of_their_types(document):
    assert document["openapi"].startswith("3.0") and document["info"]["version"] == "24.200.001"
    time_entry = _fields(document, "TimeEntry")
    expected = {
        "TimeEntryID": "GuidValue",
        "Employee": "StringValue",
        "Date": "DateTimeValue",
        "TimeSpent": "StringValue",
        "Billable": "BooleanValue",
        "CostRate": "DecimalValue",
        "LastModifiedDateTime": "DateTimeValue",
    }
    assert {name: time_entry[name]["$ref"] for name in expected} == {n: WRAPPER.format(w) for n, w in expected.items()}
    assert _fields(document, "LaborCostRate")["RecordID"] == {"$ref": WRAPPER.format("IntValue")}
    assert _fields(document, "Project")["StartDate"] == {"$ref": WRAPPER.format("DateTimeValue")}
    schemas = document["components"]["schemas"]
    assert schemas["DecimalValue"]["properties"]["value"]["type"] == "number"
    assert schemas["GuidValue"]["properties"]["value"] == {"type": "string", "format": "uuid"}


def test_every_catalog_field_is_declared_and_details_are_arrays_of_their_entity(document):
    for spec in ENTITIES.values():
        assert set(_fields(document, spec.name)) == {name for name, _ in spec.fields} | set(spec.details), spec.name
    assert _fields(document, "Project")["Tasks"] == {"type": "array", "items": {"$ref": WRAPPER.format("ProjectTask")}}


def test_paths_cover_list_get_put_delete_and_actions(document):
    paths = document["paths"]
    assert paths["/TimeEntry"]["get"]["operationId"] == "TimeEntry_GetList"
    assert paths["/TimeEntry"]["put"]["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": WRAPPER.format("TimeEntry")
    }
    assert set(paths["/TimeEntry/{id}"]) == {"get", "delete"}
    action = paths["/TimeEntry/CompleteTimeEntry"]["post"]
    assert action["operationId"] == "TimeEntry_InvokeAction_CompleteTimeEntry" and "202" in action["responses"]
    assert "/Project/CompleteTimeEntry" not in paths
    parameters = document["components"]["parameters"]
    assert {parameters[name]["name"] for name in ("select", "filter", "expand", "top", "skip")} == {
        "$select",
        "$filter",
        "$expand",
        "$top",
        "$skip",
    }


def test_easy_acumatica_builds_itself_from_the_document_and_reads_records(make_sandbox, tmp_path):
    # A client this team did not write: it builds its services and models from swagger.json alone.
    easy_acumatica = pytest.importorskip("easy_acumatica")
    sandbox = make_sandbox(rows=30)
    client = easy_acumatica.AcumaticaClient(
        base_url=sandbox.url,
        username=SANDBOX_USER,
        password=SANDBOX_PASSWORD,
        tenant="Company",
        endpoint_version="24.200.001",
        cache_dir=tmp_path,
        auto_load_env=False,
    )
    try:
        entries = client.time_entry.get_list()
        one = client.time_entry.get_by_id(entries[0]["id"])
        model_fields = set(client.models.TimeEntry.__dataclass_fields__)
    finally:
        client.logout()
    truth = sandbox.control.truth("Company", "TimeEntry")["records"]
    assert len(entries) == len(truth) and one["id"] == entries[0]["id"]
    assert {"TimeEntryID", "TimeSpent", "CostRate", "Date"} <= model_fields
