"""Acumatica answers to plain Python records: unwrapped values and date-times as aware UTC datetimes.

REST records arrive as ``{"id": ..., "Field": {"value": ...}, "custom": {View: {Field: {"type", "value"}}},
"_links": ...}``. A decoded record keeps ``id``, ``rowNumber`` and every field with its plain value (an
empty ``{}`` field becomes None), drops ``_links``, turns expanded detail collections into lists of
decoded records and flattens custom fields into ``record["custom"] = {"View.Field": value}`` (the names
``$custom`` takes, so they round-trip).

Date-times are recognised by shape in REST answers (an ISO 8601 date and time, with or without an
offset) and by their Edm type in OData answers, and read as `DateTimeReader` (``client.datetimes``) reads
them. Bodies are parsed by msgspec and unwrapped by one tight loop per record, so that streaming stays close
to the speed of bare JSON decoding (benchmarks/bench_hook.py).

Pages of one query share one shape, so `RecordDecoder.page_reader` learns the field names from the first page
and parses the next ones straight into a msgspec Struct of that shape (no wrapper dict per field). A page the
shape does not fit (a new field, a detail list) is decoded the general way and widens the shape. Both ways give the same records, with one refinement on typed pages: a field already seen carrying
text or numbers is a text or number field, so a later value of it that merely looks like a date-time stays as
it came (the general way, knowing nothing of the field, would turn it into a datetime).

A loader of many records takes a page as a `RecordBatch` (`RecordDecoder.batch_reader`): the same records held by
field, one list of values per field (``client.record_batch``), which a typed page is read into without building a
dict per record.
"""

from __future__ import annotations

import datetime
import operator
import threading
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, NamedTuple

import msgspec

from airflow_provider_acumatica.client.datetimes import DateTimeReader, read_or_keep
from airflow_provider_acumatica.client.record_batch import RecordBatch

DATETIME_EDM_TYPES = frozenset({"Edm.DateTimeOffset", "Edm.DateTime"})
_parse_json = msgspec.json.Decoder().decode  # a truncated body raises msgspec.DecodeError, a ValueError


class RecordDecoder:
    """Decodes REST JSON bodies (records or lists of records) into plain records in one pass."""

    def __init__(self, datetimes: DateTimeReader) -> None:
        self.datetimes = datetimes
        self._shapes: dict[Hashable, _PageShape | _FieldValues] = {}
        self._shapes_lock = threading.Lock()

    def loads(self, body: bytes | str) -> Any:
        """Decode a REST answer body; raises ValueError (msgspec.DecodeError) on a truncated body."""
        return self.decode(_parse_json(body))

    def field_reader(self, field: str) -> Callable[[bytes], list]:
        """Decodes a page (a `$select` of `field`) down to that field's values; the rest is skipped in C."""
        with self._shapes_lock:
            reader = self._shapes.setdefault(("field", field), _FieldValues(self, field))
        return reader.loads

    def page_reader(self, query: Hashable) -> Callable[[bytes], Any]:
        """`loads` for the pages of one query (entity, $select, $expand, $custom): learns their shape."""
        return self._shape(query).loads

    def batch_reader(self, query: Hashable) -> Callable[[bytes], RecordBatch]:
        """Like `page_reader`, but each page comes as a `RecordBatch` (a single record answered alone, as one)."""
        return self._shape(query).batch

    def _shape(self, query: Hashable) -> _PageShape:
        with self._shapes_lock:
            return self._shapes.setdefault(query, _PageShape(self))

    def decode(self, value: Any) -> Any:
        """Decode an already parsed REST answer: a record or a list of records."""
        if isinstance(value, list):
            record = self.record
            return [record(item) if type(item) is dict else item for item in value]
        return self.record(value) if isinstance(value, dict) else value

    def record(self, raw: dict) -> dict:
        """One record, decoded in place; the loop is written out inline because it runs for every field."""
        cache = self.datetimes.cache
        read = self.datetimes.read
        nested = None
        for name, value in raw.items():
            kind = value.__class__
            if kind is dict:
                try:
                    value = value["value"]
                except KeyError:
                    nested = nested or []
                    nested.append(name)
                    continue
                if value.__class__ is str and len(value) > 15 and value[10] == "T" and value[4] == "-":
                    value = cache.get(value) or read_or_keep(read, value)
                raw[name] = value
            elif kind is list:
                raw[name] = [self.record(item) if item.__class__ is dict else item for item in value]
        if nested:
            self._nested(raw, nested)
        return raw

    def _nested(self, raw: dict, names: list[str]) -> None:
        """Fields that are objects but not `{"value": ...}` wrappers: empty, custom, links, linked entity."""
        for name in names:
            value = raw[name]
            if name == "_links":
                del raw[name]
            elif name == "custom":
                raw[name] = self._custom(value)
            elif not value:
                raw[name] = None
            else:
                raw[name] = self.record(value)  # an expanded single linked entity

    def _custom(self, custom: dict) -> dict:
        """`{View: {Field: {"type", "value"}}}` to `{"View.Field": value}`."""
        flat: dict[str, Any] = {}
        for view, fields in custom.items():
            for field, wrapped in (fields or {}).items():
                value = wrapped.get("value") if isinstance(wrapped, dict) else wrapped
                if type(value) is str:
                    value = self.datetimes.read_if_datetime(value)
                flat[f"{view}.{field}"] = value
        return flat


def _looks_like_datetime(value: Any) -> bool:
    return value.__class__ is str and DateTimeReader.looks_like_datetime(value)


class _Wrapped(msgspec.Struct, frozen=True, gc=False, forbid_unknown_fields=True):
    """A REST field, `{"value": ...}`; `{}` is an empty one."""

    value: Any = None


_EMPTY = _Wrapped()


class _WrappedInstant(msgspec.Struct, frozen=True, gc=False, forbid_unknown_fields=True):
    """A REST date-time field, parsed by msgspec (RFC 3339: seconds required; beyond microseconds it rounds)."""

    value: datetime.datetime | None = None


_NO_INSTANT = _WrappedInstant()
_NO_LINKS = msgspec.Raw(b"null")
_PLAIN_FIELDS = ("id", "rowNumber")


class _PageShape:
    """The fields of one query's records, and a msgspec decoder that parses pages of exactly that shape.

    Fields are learned from pages decoded the general way. A record with a field outside the shape, or a
    field that is not a `{"value": ...}` wrapper where one was seen, fails the typed parse (msgspec checks
    the shape in C), and that page is decoded the general way, widening the shape for the next pages.
    A field missing from one record of a typed page reads as None; date-times are looked for only in the
    fields that have carried one, or no value yet.
    """

    def __init__(self, records: RecordDecoder) -> None:
        self._records = records
        self._typed: _TypedShape | None = None
        self._first_shape_lock = threading.Lock()

    def loads(self, body: bytes) -> Any:
        """The answer decoded: a page as a list of record dicts."""
        with self._first_shape_learned():
            batch = self._typed_batch(body)
            return batch.records() if batch is not None else self._general(body)

    def batch(self, body: bytes) -> RecordBatch:
        """The answer decoded as a `RecordBatch`."""
        with self._first_shape_learned():
            batch = self._typed_batch(body)
            if batch is not None:
                return batch
            records = self._general(body)
        return RecordBatch.of_records(records if isinstance(records, list) else [] if records is None else [records])

    @contextmanager
    def _first_shape_learned(self) -> Iterator[None]:
        """Until a shape is known, pages are decoded one at a time: the first page learns the shape, and the pages
        fetched beside it, which arrive together, wait to be parsed by it instead of each being decoded the general
        way, which costs several times a typed decode (benchmarks/RESULTS.md)."""
        if self._typed is not None:
            yield
            return
        with self._first_shape_lock:
            yield

    def _typed_batch(self, body: bytes) -> RecordBatch | None:
        """The page read by the learned shape; None before a shape is learned or when the page does not fit it."""
        typed = self._typed
        if typed is None:
            return None
        try:
            return self._read_typed(typed, body)
        except msgspec.ValidationError:
            return None  # not of the known shape: decoded the general way, which widens the shape

    def _general(self, body: bytes) -> Any:
        parsed = _parse_json(body)
        if isinstance(parsed, list) and all(type(item) is dict for item in parsed):
            self._learn(parsed)
        return self._records.decode(parsed)

    def _read_typed(self, typed: _TypedShape, body: bytes) -> RecordBatch:
        """Parse into the shape's Structs, then read field by field (a column at a time, no dict per record)."""
        structs = typed.decoder.decode(body)
        if not structs:
            return RecordBatch({}, 0)
        fields: dict[str, Sequence[Any]] = dict(zip(typed.names, zip(*map(typed.values_of, structs))))
        datetimes = self._records.datetimes
        for name in typed.instants:
            fields[name] = [None if value is None else datetimes.place(value) for value in fields[name]]
        for name in typed.sniffed:  # date-times by shape, as the general loop reads them
            fields[name] = datetimes.read_column(fields[name])
        for name in typed.others:  # custom fields, details, linked entities: the general loop itself
            fields[name] = [self._other(name, value) for value in fields[name]]
        return RecordBatch(fields, len(structs))

    def _other(self, name: str, value: Any) -> Any:
        if value and value.__class__ in (dict, list):
            return self._records.record({name: value})[name]
        if value == {} and name != "custom":
            return None  # an empty linked entity; an empty `custom` stays {}
        return value

    def _learn(self, records: list[dict]) -> None:
        """Widen the shape with the fields of records parsed generically (before they are unwrapped)."""
        known = self._typed
        wrapped = dict.fromkeys(known.wrapped if known else ())
        others = dict.fromkeys(known.others if known else ())
        text, dated = set(known.text if known else ()), set(known.dated if known else ())
        for record in records:
            for name, value in record.items():
                if name in _PLAIN_FIELDS or name == "_links" or name in others:
                    continue
                if type(value) is dict and name != "custom" and (not value or "value" in value):
                    wrapped[name] = None
                    if value.get("value") is not None:
                        (dated if _looks_like_datetime(value["value"]) else text).add(name)
                else:
                    wrapped.pop(name, None)
                    others[name] = None
        shape = (tuple(wrapped), tuple(others), tuple(sorted(text & set(wrapped))), tuple(sorted(dated)))
        if known is None or shape != (known.wrapped, known.others, known.text, known.dated):
            self._typed = _TypedShape.of(*shape)


class _FieldValues:
    """The values of one field of a page's records, read without building the records."""

    def __init__(self, records: RecordDecoder, field: str) -> None:
        self._records = records
        self._field = field
        struct = msgspec.defstruct("AcumaticaField", [("f0", _Wrapped, _EMPTY)], rename={"f0": field})
        self._decoder = msgspec.json.Decoder(list[struct])
        instant = msgspec.defstruct("AcumaticaInstant", [("f0", _WrappedInstant, _NO_INSTANT)], rename={"f0": field})
        self._instants_decoder = msgspec.json.Decoder(list[instant])

    def loads(self, body: bytes) -> list:
        # A timestamp field (a probe's): date-times parsed in C, as typed pages parse them
        place = self._records.datetimes.place
        try:
            return [
                None if (value := struct.f0.value) is None else place(value)
                for struct in self._instants_decoder.decode(body)
            ]
        except msgspec.ValidationError:  # values that are not all date-times
            pass
        try:
            values = [struct.f0.value for struct in self._decoder.decode(body)]
        except msgspec.ValidationError:  # not a `{"value": ...}` field: the general way
            return [record.get(self._field) for record in self._records.loads(body)]
        return self._records.datetimes.read_column(values, cached=False)


class _TypedShape(NamedTuple):
    """A msgspec decoder for records of known fields, and how to read a parsed record's values out."""

    wrapped: tuple[str, ...]
    others: tuple[str, ...]
    text: tuple[str, ...]
    """Wrapped fields seen with values other than date-times (text, numbers); kept as they are if never dated."""
    dated: tuple[str, ...]
    """Fields seen with a date-time."""
    instants: tuple[str, ...]
    """Fields seen with date-times only: msgspec parses their values (a page where one is not a date-time
    fails the typed parse, is decoded the general way, and the field joins `text`)."""
    sniffed: tuple[str, ...]
    """Fields whose values are date-times when they have the shape of one (never valued yet, or mixed)."""
    names: tuple[str, ...]
    decoder: msgspec.json.Decoder
    values_of: Callable[[Any], tuple]

    @classmethod
    def of(
        cls, wrapped: tuple[str, ...], others: tuple[str, ...], text: tuple[str, ...], dated: tuple[str, ...]
    ) -> _TypedShape:
        """A Struct with one attribute per field (named f0, f1...: any field name is safe), and its reader."""
        kinds = [(name, Any, None) for name in _PLAIN_FIELDS]
        instants = tuple(name for name in wrapped if name in dated and name not in text)
        kinds += [
            (name, _WrappedInstant, _NO_INSTANT) if name in instants else (name, _Wrapped, _EMPTY) for name in wrapped
        ]
        kinds += [(name, Any, None) for name in others]
        fields = [(f"f{i}", kind, default) for i, (_, kind, default) in enumerate(kinds)]
        rename = {f"f{i}": name for i, (name, _, _) in enumerate(kinds)} | {"links": "_links"}
        struct = msgspec.defstruct(
            "AcumaticaRecord",
            [*fields, ("links", msgspec.Raw, _NO_LINKS)],
            rename=rename,
            forbid_unknown_fields=True,
            gc=False,
        )
        paths = [f"f{i}" if kind is Any else f"f{i}.value" for i, (_, kind, _) in enumerate(kinds)]
        names = tuple(name for name, _, _ in kinds)
        sniffed = tuple(name for name in wrapped if name not in instants and (name in dated or name not in text))
        decoder = msgspec.json.Decoder(list[struct])
        return cls(wrapped, others, text, dated, instants, sniffed, names, decoder, operator.attrgetter(*paths))


class ODataDecoder:
    """Decodes OData answers: rows are plain already; date-time columns are found from `$metadata` types."""

    def __init__(self, datetimes: DateTimeReader) -> None:
        self.datetimes = datetimes

    def rows(self, body: bytes | str, datetime_columns: Iterable[str] | None) -> list[dict]:
        """The `value` rows of an OData answer. Without known columns, date-times are found by shape."""
        document = _parse_json(body)
        rows = document["value"] if isinstance(document, Mapping) else document
        if not isinstance(rows, list):
            raise ValueError("OData answer has no 'value' list")
        columns = tuple(datetime_columns) if datetime_columns is not None else None
        for row in rows:
            if columns is None:
                self._convert_by_shape(row)
            else:
                self._convert_columns(row, columns)
        return rows

    def _convert_columns(self, row: dict, columns: tuple[str, ...]) -> None:
        read = self.datetimes.read
        for column in columns:
            value = row.get(column)
            if isinstance(value, str) and value:
                row[column] = read(value)

    def _convert_by_shape(self, row: dict) -> None:
        read_if_datetime = self.datetimes.read_if_datetime
        for column, value in row.items():
            if type(value) is str:
                row[column] = read_if_datetime(value)
