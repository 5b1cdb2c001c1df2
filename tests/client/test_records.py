"""Record decoding: unwrapping, custom fields, details, and date-times to the right UTC instants."""

from __future__ import annotations

import datetime
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from zoneinfo import ZoneInfo

import pytest

from airflow_provider_acumatica.client.metadata import parse_metadata
from airflow_provider_acumatica.client.records import DateTimeReader, ODataDecoder, RecordBatch, RecordDecoder

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
        "id": "5f1c-guid",
        "rowNumber": 1,
        "note": {"value": "hello"},
        "ProjectID": {"value": "PRJ01"},
        "Budget": {"value": 12.5},
        "Empty": {},
        "LastModifiedDateTime": {"value": "2024-07-15T10:31:28.402+03:00"},
        "Code": {"value": "2024-07-15"},  # a date-only string stays a string
        "Tasks": [{"id": "t1", "rowNumber": 1, "TaskID": {"value": "01"}, "_links": {"self": "/x"}}],
        "custom": {
            "Document": {"UsrFlag": {"type": "CustomBooleanField", "value": True}},
            "Attributes": {"COLOR": {"type": "CustomStringField", "value": "red"}},
        },
        "_links": {"self": "/entity/Default/24.200.001/Project/5f1c-guid"},
    }
    record = RecordDecoder(DateTimeReader(ZoneInfo("UTC"))).loads(json.dumps([body]))[0]
    assert record == {
        "id": "5f1c-guid",
        "rowNumber": 1,
        "note": "hello",
        "ProjectID": "PRJ01",
        "Budget": 12.5,
        "Empty": None,
        "LastModifiedDateTime": utc(2024, 7, 15, 7, 31, 28, 402000),
        "Code": "2024-07-15",
        "Tasks": [{"id": "t1", "rowNumber": 1, "TaskID": "01"}],
        "custom": {"Document.UsrFlag": True, "Attributes.COLOR": "red"},
    }


def test_decode_of_parsed_value_matches_loads():
    decoder = RecordDecoder(DateTimeReader(ZoneInfo("America/New_York")))
    raw = {"id": "a", "When": {"value": "2024-11-03T01:30:00"}, "Lines": [{"X": {"value": 1}}]}
    body = json.dumps(raw)
    assert decoder.decode(raw) == decoder.loads(body)


def _record(number: int, **fields) -> dict:
    return {
        "id": f"guid-{number}",
        "rowNumber": number,
        "note": {"value": ""},
        **fields,
        "custom": {},
        "_links": {"self": f"/entity/Default/24.200.001/TimeEntry/guid-{number}"},
    }


PAGES = [
    # the first page teaches the shape; the next ones fit it (typed parse), then one brings a new field, then a
    # detail list where a wrapper was seen, then custom fields, a record with a field missing, and naive
    # date-times in a repeated hour; every page must decode exactly as the general decoder decodes it
    [
        _record(1, Hours={"value": 7.5}, When={"value": "2024-07-15T10:31:28.402+03:00"}, Empty={}),
        _record(2, Hours={"value": 8}, When={"value": "2024-11-03T01:30:00"}, Empty={"value": None}),
    ],
    [
        _record(
            3, Hours={"value": 1}, When={"value": "2024-07-15T10:31:28.402"}, Empty={"value": "2024-01-01T00:00:00Z"}
        )
    ],
    [_record(4, Hours={}, When={"value": "not a date-time at all"}, Empty={}, Added={"value": "x"})],
    [_record(5, Hours={"value": 2}, When={}, Empty={}, Added=[{"id": "d1", "X": {"value": 1}, "_links": {}}])],
    [_record(6, Hours={"value": 3}, When={}, Empty={}, Added={"id": "linked", "Name": {"value": "n"}})],
    [
        {
            **_record(7, Hours={"value": 4}, When={}, Empty={}, Added={}),
            "custom": {"Document": {"UsrFlag": {"type": "CustomBooleanField", "value": True}}},
        }
    ],
    [_record(8, When={"value": "2024-11-03T01:59:59.999"}, Empty={}, Added=[])],
]


def test_page_reader_decodes_every_page_as_the_general_decoder_does():
    zone = ZoneInfo("America/New_York")
    reader = RecordDecoder(DateTimeReader(zone)).page_reader(("TimeEntry", None, None, None))
    general = RecordDecoder(DateTimeReader(zone))
    for page in PAGES:
        fields = _fields_of_shape(page)
        expected = [{name: record.get(name) for name in fields} for record in general.loads(json.dumps(page))]
        decoded = reader(json.dumps(page).encode())
        assert [{name: record.get(name) for name in fields} for record in decoded] == expected
        assert all(set(record) >= set(expected_record) for record, expected_record in zip(decoded, expected))


def _fields_of_shape(page: list[dict]) -> set[str]:
    return {name for record in page for name in record if name != "_links"}


def test_batch_reader_holds_by_field_the_records_the_general_decoder_gives():
    zone = ZoneInfo("America/New_York")
    general = RecordDecoder(DateTimeReader(zone))
    batches = RecordDecoder(DateTimeReader(zone)).batch_reader(("TimeEntry", None, None, None))
    for page in PAGES:  # the first page general, then typed ones and ones that widen the shape
        expected = general.loads(json.dumps(page))
        batch = batches(json.dumps(page).encode())
        assert len(batch) == len(expected)
        for name in _fields_of_shape(page):
            assert list(batch.column(name)) == [record.get(name) for record in expected], name


def test_batch_reader_takes_a_single_record_answer_as_a_batch_of_one():
    batches = RecordDecoder(DateTimeReader(ZoneInfo("UTC"))).batch_reader(("TimeEntry", None, None, None))
    batch = batches(json.dumps(_record(1, Hours={"value": 7.5})).encode())
    assert len(batch) == 1 and batch.column("Hours") == [7.5]
    assert len(batches(b"[]")) == 0


def test_record_batch_columns_and_positions():
    batch = RecordBatch.of_records([{"id": "a", "X": 1}, {"id": "b"}, {"id": "c", "Y": True}])
    assert list(batch.fields) == ["id", "X", "Y"] and len(batch) == 3
    assert batch.column("X") == [1, None, None] and batch.column("Missing") == [None, None, None]
    assert batch.take([2, 0]).records() == [{"id": "c", "X": None, "Y": True}, {"id": "a", "X": 1, "Y": None}]
    assert RecordBatch({}, 2).records() == [{}, {}]


def test_page_reader_parses_pages_of_a_known_shape_typed():
    reader = RecordDecoder(DateTimeReader(ZoneInfo("UTC"))).page_reader(("TimeEntry", None, None, None))
    first = [_record(1, Hours={"value": 7.5})]
    reader(json.dumps(first).encode())
    shape = reader.__self__._typed
    assert shape is not None and shape.wrapped == ("note", "Hours") and shape.others == ("custom",)
    # a page of that shape is parsed typed (a field missing from a record reads as None, where the general
    # decoder leaves it out) and keeps the shape; a record with one more field widens it
    assert reader(json.dumps([_record(2)]).encode())[0]["Hours"] is None
    assert reader.__self__._typed is shape
    reader(json.dumps([_record(3, Hours={}, Extra={"value": 1})]).encode())
    assert reader.__self__._typed.wrapped == ("note", "Hours", "Extra")


def test_pages_decoded_together_before_a_shape_is_known_wait_for_the_first_to_learn_it(monkeypatch):
    """Pages fetched in parallel arrive together: one is decoded the general way and teaches the shape, and the
    others, held until it has, are parsed typed (each decoded the general way would cost more)."""
    shape = RecordDecoder(DateTimeReader(ZoneInfo("UTC")))._shape(("TimeEntry", None, None, None))
    others, arrived, general_calls = 3, threading.Condition(), []
    waiting = []

    class CountingLock:  # the shape's lock, counting the threads that came to it
        def __init__(self, lock):
            self.lock = lock

        def __enter__(self):
            with arrived:
                waiting.append(1)
                arrived.notify_all()
            return self.lock.__enter__()

        def __exit__(self, *exc):
            return self.lock.__exit__(*exc)

    general = shape._general

    def first_holds_on(body):  # the first general decode waits until every other page has come to the lock
        general_calls.append(body)
        if len(general_calls) == 1:
            with arrived:
                arrived.wait_for(lambda: len(waiting) == others + 1, timeout=30)
        return general(body)

    monkeypatch.setattr(shape, "_first_shape_lock", CountingLock(shape._first_shape_lock))
    monkeypatch.setattr(shape, "_general", first_holds_on)
    pages = [json.dumps([_record(number, Hours={"value": number})]).encode() for number in range(others + 1)]
    with ThreadPoolExecutor(others + 1) as pool:
        batches = list(pool.map(shape.batch, pages))
    assert len(general_calls) == 1
    assert [list(batch.column("Hours")) for batch in batches] == [[number] for number in range(others + 1)]


def test_page_reader_keeps_text_fields_text_on_typed_pages():
    reader = RecordDecoder(DateTimeReader(ZoneInfo("UTC"))).page_reader(("TimeEntry", None, None, None))
    reader(json.dumps([_record(1, Ref={"value": "INV-001"}, When={"value": "2024-07-15T10:31:28Z"})]).encode())
    page = [_record(2, Ref={"value": "2024-07-15T10:31:28Z"}, When={"value": "2024-07-16T00:00:00Z"})]
    later = reader(json.dumps(page).encode())
    assert later[0]["Ref"] == "2024-07-15T10:31:28Z"  # a reference number that looks like a date-time
    assert later[0]["When"] == utc(2024, 7, 16)


def test_page_reader_parses_date_time_fields_in_c_and_reads_other_forms_the_general_way():
    reader = RecordDecoder(DateTimeReader(ZoneInfo("America/New_York"))).page_reader(("TimeEntry", None, None, None))
    reader(json.dumps([_record(1, When={"value": "2024-07-15T10:31:28Z"})]).encode())
    assert reader.__self__._typed.instants == ("When",)
    # wall time in the repeated hour (the earlier instant), and a form without seconds that msgspec refuses
    page = [_record(2, When={"value": "2024-11-03T01:30:00"}), _record(3, When={"value": "2024-07-16T00:00"})]
    assert [record["When"] for record in reader(json.dumps(page).encode())] == [
        utc(2024, 11, 3, 5, 30),
        utc(2024, 7, 16, 4),
    ]


def test_page_reader_raises_value_error_on_a_truncated_page():
    reader = RecordDecoder(DateTimeReader(ZoneInfo("UTC"))).page_reader(("TimeEntry", None, None, None))
    reader(json.dumps([_record(1, Hours={"value": 7.5})]).encode())
    with pytest.raises(ValueError):
        reader(json.dumps([_record(2, Hours={"value": 7.5})]).encode()[:-20])


def test_field_reader_gives_one_fields_values_as_the_general_decoder_reads_them():
    decoder = RecordDecoder(DateTimeReader(ZoneInfo("America/New_York")))
    page = [
        _record(1, When={"value": "2024-11-03T01:30:00"}),
        _record(2, When={}),
        _record(3),
        _record(4, When={"value": "2024-07-15T10:31:28.402+03:00"}),
    ]
    expected = [record.get("When") for record in decoder.loads(json.dumps(page))]
    assert decoder.field_reader("When")(json.dumps(page).encode()) == expected
    assert expected[0] == utc(2024, 11, 3, 5, 30) and expected[1:3] == [None, None]
    # a field that is not a `{"value": ...}` wrapper is read the general way rather than failing the page
    details = [_record(5, When=[{"X": {"value": 1}}])]
    assert decoder.field_reader("When")(json.dumps(details).encode()) == [[{"X": 1}]]
    # date-times parsed in C where every value is one; a page with other values (text, a number, a date-time
    # without seconds, which the C parser refuses) is read value by value, exactly as the general decoder reads it
    mixed = [
        _record(6, When={"value": "2024-07-15T10:31"}),
        _record(7, When={"value": "not a date-time"}),
        _record(8, When={"value": 7}),
        _record(9, When={"value": "2024-07-15T10:31:28.402Z"}),
    ]
    general = [record.get("When") for record in decoder.loads(json.dumps(mixed))]
    assert decoder.field_reader("When")(json.dumps(mixed).encode()) == general
    assert general == [utc(2024, 7, 15, 14, 31), "not a date-time", 7, utc(2024, 7, 15, 10, 31, 28, 402000)]


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
    body = json.dumps(
        {
            "@odata.context": "x",
            "value": [
                {"ContractCD": "2024-07-15T10:00:00", "LastModifiedDateTime": "2024-07-15T10:00:00Z", "StartDate": None}
            ],
        }
    )
    decoder = ODataDecoder(DateTimeReader(ZoneInfo("Europe/Berlin")))
    typed = decoder.rows(body, ("StartDate", "LastModifiedDateTime"))[0]
    assert typed == {
        "ContractCD": "2024-07-15T10:00:00",
        "LastModifiedDateTime": utc(2024, 7, 15, 10),
        "StartDate": None,
    }
    by_shape = decoder.rows(body, None)[0]
    assert by_shape["ContractCD"] == utc(2024, 7, 15, 8)
