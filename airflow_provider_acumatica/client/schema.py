"""The endpoint's field types, from its OpenAPI document (`/entity/{Endpoint}/{Version}/swagger.json`).

Every field of a contract-based entity is declared as a value wrapper (`StringValue`, `DecimalValue`,
`DateTimeValue`, `IntValue`, `BooleanValue`, `GuidValue`...), under `components.schemas` (OpenAPI 3, what
current instances serve) or `definitions` (OpenAPI 2, older ones); both are read. The document does not tell
a calendar date from a date-time (both `DateTimeValue`) nor a time span from text (`StringValue`), so two
naming rules of the Default endpoint refine them:

- a `DateTimeValue` field whose name ends in `Date` (`StartDate`, `EffectiveDate`, `Date`) is a date, except
  the known date-times named so (`TimeEntry.Date`, a start date and time);
- a `StringValue` field named like a time span (`TimeSpent`, `BillableTime`, `Overtime`...) is a duration.

Each field then has a *field type*: text, integer, decimal, float, boolean, datetime, date, duration, guid.
The document is read once per instance, endpoint and version in a process; when it cannot be read, `None` is
returned and the reason logged, so that callers fall back to inferring types from values. An entity's part of it
can be kept as JSON text between processes (`EndpointSchema.entity_json`, `EndpointSchema.from_json`): a sync keeps
it in the warehouse for a while (see extract.memory) rather than reading the whole document in every task.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from airflow_provider_acumatica.client.errors import AcumaticaError

log = logging.getLogger(__name__)

TEXT, INTEGER, DECIMAL, FLOAT, BOOLEAN = "text", "integer", "decimal", "float", "boolean"
DATETIME, DATE, DURATION, GUID = "datetime", "date", "duration", "guid"

_WRAPPER_TYPES = {
    "StringValue": TEXT,
    "GuidValue": GUID,
    "DecimalValue": DECIMAL,
    "DoubleValue": FLOAT,
    "IntValue": INTEGER,
    "ShortValue": INTEGER,
    "LongValue": INTEGER,
    "ByteValue": INTEGER,
    "BooleanValue": BOOLEAN,
    "DateTimeValue": DATETIME,
}
DURATION_FIELDS = frozenset(
    {
        "TimeSpent",
        "BillableTime",
        "Overtime",
        "BillableOvertime",
        "OvertimeSpent",
        "BillableOvertimeSpent",
        "TimeBillable",
        "OvertimeBillable",
    }
)
"""Time spans of the Default endpoint, sent as "HH:MM" text."""
DATETIMES_NAMED_AS_DATES = frozenset({("TimeEntry", "Date")})
"""(entity, field): date-times whose names end in `Date`."""

EDM_TYPES = {
    TEXT: "Edm.String",
    GUID: "Edm.Guid",
    DECIMAL: "Edm.Decimal",
    FLOAT: "Edm.Double",
    INTEGER: "Edm.Int64",
    BOOLEAN: "Edm.Boolean",
    DATETIME: "Edm.DateTimeOffset",
    DATE: "Edm.Date",
    DURATION: "Edm.String",
}
"""Field type -> the OData type the warehouse declares for it (a duration keeps its text)."""
FIELD_TYPES = frozenset(EDM_TYPES)


@dataclass(frozen=True)
class EndpointSchema:
    """The field types of each entity of one endpoint version: `{entity: {field: field type}}` (scalar fields;
    detail collections and linked entities are left out)."""

    endpoint: str
    version: str
    entities: Mapping[str, Mapping[str, str]]
    read_at: datetime | None = None
    """When the document was read from the instance (None when it came from elsewhere)."""

    def fields_of(self, entity: str) -> Mapping[str, str] | None:
        """The field types of `entity`, or None when the endpoint does not declare it."""
        return self.entities.get(entity)

    def entity_json(self, entity: str) -> str:
        """The schema of `entity` alone as JSON text, to keep between runs (`from_json` reads it back)."""
        kept = {"endpoint": self.endpoint, "version": self.version, "entities": {entity: dict(self.entities[entity])}}
        return json.dumps(kept, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, read_at: datetime) -> EndpointSchema:
        """A schema kept by `entity_json`, read at `read_at`; ValueError when `text` is not one (nor one whose types
        this version knows)."""
        try:
            kept = json.loads(text)
            entities = {
                str(entity): {str(field): str(kind) for field, kind in fields.items()}
                for entity, fields in kept["entities"].items()
            }
            endpoint, version = str(kept["endpoint"]), str(kept["version"])
        except (ValueError, TypeError, KeyError, AttributeError) as error:
            raise ValueError(f"not a kept endpoint schema: {error!r}") from None
        unknown = {kind for fields in entities.values() for kind in fields.values()} - FIELD_TYPES
        if unknown:
            raise ValueError(f"not a kept endpoint schema: unknown field types {sorted(unknown)}")
        return cls(endpoint, version, entities, read_at)


def parse_swagger(document: Mapping[str, Any], endpoint: str = "", version: str = "") -> EndpointSchema:
    """The `EndpointSchema` of an OpenAPI 3 or 2 document; raises ValueError when it declares no schemas."""
    schemas = (document.get("components") or {}).get("schemas") or document.get("definitions")
    if not isinstance(schemas, Mapping) or not schemas:
        raise ValueError("the OpenAPI document has neither components.schemas nor definitions")
    entities = {}
    for name, schema in schemas.items():
        if name in _WRAPPER_TYPES or not isinstance(schema, Mapping):
            continue
        fields = {}
        for field, declared in _properties(schema, schemas).items():
            wrapper = _ref_name(declared)
            if wrapper in _WRAPPER_TYPES:
                fields[field] = _refined(name, field, _WRAPPER_TYPES[wrapper])
        if fields:
            entities[name] = fields
    return EndpointSchema(endpoint, version, entities)


def _properties(schema: Mapping[str, Any], schemas: Mapping[str, Any], depth: int = 0) -> dict[str, Any]:
    """A schema's own properties and those of the schemas it is `allOf` (not the shared `Entity` base's)."""
    properties = dict(schema.get("properties") or {})
    for part in schema.get("allOf") or ():
        base = _ref_name(part)
        if base is None:
            properties.update(_properties(part, schemas, depth + 1))
        elif base != "Entity" and depth < 8 and isinstance(schemas.get(base), Mapping):
            properties.update(_properties(schemas[base], schemas, depth + 1))
    return properties


def _ref_name(declared: Any) -> str | None:
    if isinstance(declared, Mapping) and isinstance(declared.get("$ref"), str):
        return declared["$ref"].rsplit("/", 1)[-1]
    return None


def _refined(entity: str, field: str, field_type: str) -> str:
    """The naming rules of the module docstring."""
    if field_type == DATETIME and field.endswith("Date") and (entity, field) not in DATETIMES_NAMED_AS_DATES:
        return DATE
    if field_type == TEXT and field in DURATION_FIELDS:
        return DURATION
    return field_type


def parse_duration(value: Any) -> int | None:
    """Minutes of a time span: "HH:MM" (hours may exceed 24), "HHMM", or a number of minutes; None when empty.
    Raises ValueError for anything else."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a time span")
    if isinstance(value, (int, float)):
        if value != int(value):
            raise ValueError(f"{value!r} is not a whole number of minutes")
        return int(value)
    text = str(value).strip()
    sign = -1 if text.startswith("-") else 1
    body = text.lstrip("-")
    if ":" in body:
        hours, _, minutes = body.partition(":")
    elif len(body) == 4:
        hours, minutes = body[:2], body[2:]
    else:
        hours, minutes = "0", body
    clock = ":" in body or len(body) == 4
    if not (hours.isdigit() and minutes.isdigit()) or (clock and int(minutes) > 59):
        raise ValueError(f"{value!r} is not a time span (expected HH:MM)")
    return sign * (int(hours) * 60 + int(minutes))


def local_dates(values: Iterable[Any], zone: ZoneInfo) -> tuple[list[date | None], Any]:
    """The calendar dates Acumatica shows for a date field's values (instants of local midnight in the profile
    zone, or ISO texts of them), each distinct value converted once; and the first value that was not a local
    midnight (None when all were). Such a value is taken as the date of the nearest local midnight: the date
    meant when the connection's profile time zone is not quite the Acumatica user's (a value arriving at 04:00
    of a UTC profile is midnight in New York). Raises ValueError for a value that is no date-time at all."""
    dates: dict[Any, date | None] = {None: None}
    odd = None
    result = []
    for value in values:
        if value not in dates:
            dates[value], exact = _local_date(value, zone)
            odd = value if odd is None and not exact else odd
        result.append(dates[value])
    return result, odd


def _local_date(value: Any, zone: ZoneInfo) -> tuple[date, bool]:
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if isinstance(moment, date) and not isinstance(moment, datetime):
        return moment, True
    if not isinstance(moment, datetime):
        raise ValueError(f"{value!r} is not a date")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    local = moment.astimezone(zone)
    day = local.date()
    if datetime.combine(day, time(), zone) == moment:  # compared as instants: a midnight in a DST gap is 01:00
        return day, True
    return (local + timedelta(hours=12)).date(), False


class SchemaCache:
    """Endpoint schemas by (instance, endpoint, version), read once each; None remembered for a failed read."""

    def __init__(self) -> None:
        self._schemas: dict[tuple[str, str, str], EndpointSchema | None] = {}
        self._lock = threading.Lock()

    def get(self, client: Any) -> EndpointSchema | None:
        """The schema of `client`'s endpoint (an `AcumaticaClient`); None, logged, when the document is unavailable."""
        settings = client.settings
        key = (settings.instance_url, settings.endpoint_name, settings.endpoint_version)
        with self._lock:
            if key not in self._schemas:
                self._schemas[key] = _read(client)
            return self._schemas[key]

    def clear(self) -> None:
        with self._lock:
            self._schemas.clear()


def _read(client: Any) -> EndpointSchema | None:
    settings = client.settings
    path = client.entity_path("swagger.json")
    try:
        read_at = datetime.now(timezone.utc)
        reply = client.transport.request("GET", path, authenticator=client.authenticator, max_retries=2)
        schema = parse_swagger(reply.data or {}, settings.endpoint_name, settings.endpoint_version)
        return replace(schema, read_at=read_at)
    except (AcumaticaError, ValueError, TypeError) as error:
        log.warning(
            "The field types of endpoint %s/%s are unavailable (%s): column types are inferred from values",
            settings.endpoint_name,
            settings.endpoint_version,
            error,
        )
        return None


SCHEMAS = SchemaCache()
"""The process's cache: one read of swagger.json per endpoint version and run."""
