"""Field types from the endpoint's OpenAPI document: both document versions, the naming rules, durations, dates,
and the cached read with its logged fallback."""

from __future__ import annotations

import logging
from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from airflow_provider_acumatica.client.api import AcumaticaClient
from airflow_provider_acumatica.client.schema import (
    EndpointSchema,
    SchemaCache,
    local_dates,
    parse_duration,
    parse_swagger,
)
from airflow_provider_acumatica.client.settings import AcumaticaSettings
from airflow_provider_acumatica.sandbox import SANDBOX_PASSWORD, SANDBOX_USER


def _wrapped(prefix: str, **fields: str) -> dict:
    return {name: {"$ref": f"{prefix}{wrapper}"} for name, wrapper in fields.items()}


@pytest.mark.parametrize("version", [3, 2])
def test_both_document_versions_give_field_types_refined_by_the_naming_rules(version):
    prefix = "#/components/schemas/" if version == 3 else "#/definitions/"
    time_entry = {
        "allOf": [
            {"$ref": f"{prefix}Entity"},
            {
                "type": "object",
                "properties": {
                    **_wrapped(
                        prefix,
                        Date="DateTimeValue",
                        TimeSpent="StringValue",
                        CostRate="DecimalValue",
                        TimeEntryID="GuidValue",
                        Billable="BooleanValue",
                        LastModifiedDateTime="DateTimeValue",
                    ),
                    "Tasks": {"type": "array", "items": {"$ref": f"{prefix}ProjectTask"}},
                },
            },
        ]
    }
    rate = {
        "type": "object",
        "properties": _wrapped(
            prefix, EffectiveDate="DateTimeValue", RecordID="IntValue", Rate="DecimalValue", Shift="ShortValue"
        ),
    }
    schemas = {
        "TimeEntry": time_entry,
        "LaborCostRate": rate,
        "StringValue": {"type": "object"},
        "Entity": {"type": "object", "properties": {"note": {"$ref": f"{prefix}StringValue"}}},
    }
    document = (
        {"openapi": "3.0.1", "components": {"schemas": schemas}}
        if version == 3
        else {"swagger": "2.0", "definitions": schemas}
    )
    parsed = parse_swagger(document, "Default", "24.200.001")
    assert parsed.fields_of("TimeEntry") == {
        "Date": "datetime",
        "TimeSpent": "duration",
        "CostRate": "decimal",
        "TimeEntryID": "guid",
        "Billable": "boolean",
        "LastModifiedDateTime": "datetime",
    }
    assert parsed.fields_of("LaborCostRate") == {
        "EffectiveDate": "date",
        "RecordID": "integer",
        "Rate": "decimal",
        "Shift": "integer",
    }
    assert parsed.fields_of("Nothing") is None


def test_an_entity_kept_as_json_reads_back_as_its_schema_and_anything_else_is_refused():
    schema = EndpointSchema(
        "Default", "24.200.001", {"TimeEntry": {"TimeSpent": "duration", "Date": "datetime"}, "Project": {"X": "text"}}
    )
    read_at = datetime(2026, 12, 6, tzinfo=timezone.utc)
    kept = EndpointSchema.from_json(schema.entity_json("TimeEntry"), read_at)
    assert kept == EndpointSchema("Default", "24.200.001", {"TimeEntry": schema.fields_of("TimeEntry")}, read_at)
    unknown_type = schema.entity_json("TimeEntry").replace('"duration"', '"interval"')
    for text in ("", "[]", '{"endpoint": "Default"}', unknown_type):
        with pytest.raises(ValueError, match="not a kept endpoint schema"):
            EndpointSchema.from_json(text, read_at)


def test_a_document_without_schemas_is_refused():
    with pytest.raises(ValueError, match="neither components.schemas nor definitions"):
        parse_swagger({"openapi": "3.0.1", "paths": {}})


@pytest.mark.parametrize(
    ("text", "minutes"),
    [("02:30", 150), ("0230", 150), ("90", 90), (45, 45), ("100:05", 6005), ("-01:15", -75), (None, None), ("", None)],
)
def test_durations_in_minutes(text, minutes):
    assert parse_duration(text) == minutes


@pytest.mark.parametrize("text", ["ab", "02:75", "1:2:3", True, 1.5])
def test_a_value_that_is_no_duration_is_refused(text):
    with pytest.raises(ValueError):
        parse_duration(text)


def test_dates_are_the_local_calendar_dates_of_local_midnights():
    tokyo, angeles = ZoneInfo("Asia/Tokyo"), ZoneInfo("America/Los_Angeles")
    tokyo_midnight = datetime(2026, 3, 1, tzinfo=tokyo).astimezone(timezone.utc)  # 2026-02-28T15:00Z
    angeles_midnight = datetime(2026, 3, 8, tzinfo=angeles).astimezone(timezone.utc)  # the day DST starts
    assert local_dates([tokyo_midnight, None, "2026-03-01T00:00:00+09:00"], tokyo) == (
        [date(2026, 3, 1), None, date(2026, 3, 1)],
        None,
    )
    assert local_dates([angeles_midnight, "2026-03-08T00:00:00"], angeles) == ([date(2026, 3, 8)] * 2, None)
    # a profile zone that is not the user's: the nearest midnight's date, and the first odd value reported
    assert local_dates([angeles_midnight], ZoneInfo("UTC")) == ([date(2026, 3, 8)], angeles_midnight)


def test_the_document_is_read_once_per_endpoint_and_its_absence_logged(new_sandbox, caplog):
    sandbox = new_sandbox(rows=10, tenants=("Company",))
    settings = AcumaticaSettings.from_connection(
        "c",
        sandbox.url,
        SANDBOX_USER,
        SANDBOX_PASSWORD,
        {"tenant": "Company", "backoff_seconds": 0.01, "max_retries": 0},
    )
    cache = SchemaCache()
    with AcumaticaClient(settings) as client:
        first = cache.get(client)
        assert first is cache.get(client) and first.fields_of("Project")["StartDate"] == "date"
        assert sandbox.control.counters()["requests"] == 2  # the sign-in and one read of the document
        sandbox.control.inject_fault("500", count=5, path_contains="swagger.json")
        cache.clear()
        with caplog.at_level(logging.WARNING):
            assert cache.get(client) is None and cache.get(client) is None
    assert caplog.text.count("column types are inferred from values") == 1
