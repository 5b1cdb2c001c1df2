"""Record decoding: unwrapping, custom fields, details, and date-times to the right UTC instants."""

from __future__ import annotations

import datetime
import json
from zoneinfo import ZoneInfo

import pytest

from airflow_provider_acumatica.client.metadata import parse_metadata
from airflow_provider_acumatica.client.records import DateTimeReader, ODataDecoder, RecordDecoder

UTC = datetime.timezone.utc


def utc(*parts: int) -> datetime.datetime:
    return datetime.datetime(*parts, tzinfo=UTC)


@pytest.mark.parametrize(
    ("zone", "text", "expected"),
    [
        # west of UTC, autumn repeated hour 01:00-02:00 on 2024-11-03: the EARLIER instant (EDT, -4)
        ("America/New_York", "2024-11-03T01:30:00", utc(2024, 11, 3, 5, 30)),
        # the hour after the repeat is unambiguous EST (-5)
        ("America/New_York", "2024-11-03T02:30:00", utc(2024, 11, 3, 7, 30)),
        # spring gap 02:00-03:00 on 2024-03-10: 02:30 does not exist, shifted forward (= 03:30 EDT)
        ("America/New_York", "2024-03-10T02:30:00.123", utc(2024, 3, 10, 7, 30, 0, 123000)),
        ("America/New_York", "2024-07-15T10:31:28.402", utc(2024, 7, 15, 14, 31, 28, 402000)),
        # east of UTC: Berlin autumn repeat 02:00-03:00 on 2024-10-27: earlier instant is CEST (+2)
        ("Europe/Berlin", "2024-10-27T02:15:00", utc(2024, 10, 27, 0, 15)),
        ("Europe/Berlin", "2024-03-31T02:30:00", utc(2024, 3, 31, 1, 30)),
        ("Australia/Sydney", "2024-01-10T09:00:00.5", utc(2024, 1, 9, 22, 0, 0, 500000)),
        # values with an offset are that instant, whatever the profile zone
        ("America/New_York", "2024-11-03T01:30:00-05:00", utc(2024, 11, 3, 6, 30)),
        ("Europe/Berlin", "2024-07-15T10:31:28.402+03:00", utc(2024, 7, 15, 7, 31, 28, 402000)),
        ("Asia/Tokyo", "2024-07-15T00:00:00Z", utc(2024, 7, 15)),
    ],
)
def test_datetimes_become_utc_instants(zone, text, expected):
    value = DateTimeReader(ZoneInfo(zone)).read(text)
    assert value == expected
    assert value.utcoffset() == datetime.timedelta(0)
    assert value.microsecond == expected.microsecond


def test_without_convert_to_utc_the_instant_is_in_the_profile_zone():
    value = DateTimeReader(ZoneInfo("Europe/Berlin"), convert_to_utc=False).read("2024-07-15T10:00:00Z")
    assert value == utc(2024, 7, 15, 10) and value.utcoffset() == datetime.timedelta(hours=2)


def test_rest_record_is_unwrapped():
    body = {
        "id": "5f1c-guid", "rowNumber": 1, "note": {"value": "hello"},
        "ProjectID": {"value": "PRJ01"}, "Budget": {"value": 12.5}, "Empty": {},
        "LastModifiedDateTime": {"value": "2024-07-15T10:31:28.402+03:00"},
        "Code": {"value": "2024-07-15"},  # a date-only string stays a string
        "Tasks": [{"id": "t1", "rowNumber": 1, "TaskID": {"value": "01"}, "_links": {"self": "/x"}}],
        "custom": {"Document": {"UsrFlag": {"type": "CustomBooleanField", "value": True}},
                   "Attributes": {"COLOR": {"type": "CustomStringField", "value": "red"}}},
        "_links": {"self": "/entity/Default/24.200.001/Project/5f1c-guid"},
    }
    record = RecordDecoder(DateTimeReader(ZoneInfo("UTC"))).loads(json.dumps([body]))[0]
    assert record == {
        "id": "5f1c-guid", "rowNumber": 1, "note": "hello", "ProjectID": "PRJ01", "Budget": 12.5, "Empty": None,
        "LastModifiedDateTime": utc(2024, 7, 15, 7, 31, 28, 402000), "Code": "2024-07-15",
        "Tasks": [{"id": "t1", "rowNumber": 1, "TaskID": "01"}],
        "custom": {"Document.UsrFlag": True, "Attributes.COLOR": "red"},
    }


def test_decode_of_parsed_value_matches_loads():
    decoder = RecordDecoder(DateTimeReader(ZoneInfo("America/New_York")))
    raw = {"id": "a", "When": {"value": "2024-11-03T01:30:00"}, "Lines": [{"X": {"value": 1}}]}
    body = json.dumps(raw)
    assert decoder.decode(raw) == decoder.loads(body)


def test_truncated_body_raises_value_error():
    with pytest.raises(ValueError):
        RecordDecoder(DateTimeReader(ZoneInfo("UTC"))).loads(b'[{"id": "a", "X": {"val')


METADATA = b"""<?xml version="1.0" encoding="utf-8"?>
<edmx:Edmx Version="4.0" xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx">
 <edmx:DataServices><Schema Namespace="PX.Objects" xmlns="http://docs.oasis-open.org/odata/ns/edm">
  <EntityType Name="PMProject"><Key><PropertyRef Name="ContractCD"/></Key>
   <Property Name="ContractCD" Type="Edm.String"/><Property Name="StartDate" Type="Edm.DateTimeOffset"/>
   <Property Name="Note" Type="Edm.String"/><Property Name="LastModifiedDateTime" Type="Edm.DateTimeOffset"/>
  </EntityType>
  <EntityContainer Name="Default"><EntitySet Name="PMProject" EntityType="PX.Objects.PMProject"/></EntityContainer>
 </Schema></edmx:DataServices></edmx:Edmx>"""


def test_metadata_gives_keys_and_datetime_columns():
    entity_set = parse_metadata(METADATA)["PMProject"]
    assert entity_set.key == ("ContractCD",)
    assert entity_set.datetime_columns == ("StartDate", "LastModifiedDateTime")
    with pytest.raises(ValueError, match="unreadable"):
        parse_metadata(METADATA[:100])


def test_odata_rows_convert_only_typed_columns_or_by_shape():
    body = json.dumps({"@odata.context": "x", "value": [
        {"ContractCD": "2024-07-15T10:00:00", "LastModifiedDateTime": "2024-07-15T10:00:00Z", "StartDate": None}]})
    decoder = ODataDecoder(DateTimeReader(ZoneInfo("Europe/Berlin")))
    typed = decoder.rows(body, ("StartDate", "LastModifiedDateTime"))[0]
    assert typed == {"ContractCD": "2024-07-15T10:00:00", "LastModifiedDateTime": utc(2024, 7, 15, 10), "StartDate": None}
    by_shape = decoder.rows(body, None)[0]
    assert by_shape["ContractCD"] == utc(2024, 7, 15, 8)
