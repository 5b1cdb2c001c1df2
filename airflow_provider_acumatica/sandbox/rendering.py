"""Values on the wire: date-times in the profile time zone (with or without offset), "HH:MM" time spans,
and the parsing of written values back into stored ones (UTC date-times, minutes)."""

from __future__ import annotations

import re
import uuid
from datetime import date, datetime, time, timezone
from zoneinfo import ZoneInfo

from airflow_provider_acumatica.sandbox.store import to_millis

_DURATION_COLON = re.compile(r"^(\d{1,4}):([0-5]\d)$")
_DURATION_DIGITS = re.compile(r"^(\d{1,4})([0-5]\d)$")


def format_duration(minutes: int) -> str:
    """Minutes as Acumatica's "HH:MM" time span."""
    if 0 <= minutes < len(_DURATIONS):
        return _DURATIONS[minutes]
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


_DURATIONS = [f"{minutes // 60:02d}:{minutes % 60:02d}" for minutes in range(24 * 60 + 1)]


def parse_duration(raw) -> int:
    """Minutes from "HH:MM", "HHMM" or a number of minutes."""
    if isinstance(raw, bool):
        raise ValueError(f"expected a time span like '08:30', got {raw!r}")
    if isinstance(raw, int):
        return raw
    text = str(raw).strip()
    match = _DURATION_COLON.match(text) or _DURATION_DIGITS.match(text)
    if match:
        return int(match.group(1)) * 60 + int(match.group(2))
    if text.isdigit():
        return int(text)
    raise ValueError(f"expected a time span like '08:30', got {raw!r}")


class ValueCodec:
    """Renders stored values for the API user's profile and parses written ones."""

    def __init__(self, zone: ZoneInfo, naive: bool) -> None:
        self.zone = zone
        self.naive = naive

    def datetime_text(self, moment: datetime) -> str:
        """A UTC date-time as the profile shows it: local wall time, with its offset unless naive."""
        local = moment.astimezone(self.zone)
        if self.naive:
            return local.replace(tzinfo=None).isoformat(timespec="milliseconds")
        return local.isoformat(timespec="milliseconds")

    def local_datetime(self, moment: datetime) -> datetime:
        """A UTC date-time as a local one (naive wall time when naive), for encoders that format date-times."""
        local = moment.astimezone(self.zone)
        return local.replace(tzinfo=None) if self.naive else local

    def date_text(self, day: date) -> str:
        """A calendar date as Acumatica renders it: local midnight (with that midnight's offset unless naive)."""
        if self.naive:
            return f"{day.isoformat()}T00:00:00"
        return datetime.combine(day, time(), self.zone).isoformat(timespec="seconds")

    def local_midnight(self, day: date) -> datetime:
        """The aware instant a calendar date starts at in the profile zone (what date filters compare to)."""
        return datetime.combine(day, time(), self.zone)

    def wire(self, type_name: str, value):
        """A stored value as JSON-able wire value (None stays None)."""
        if value is None:
            return None
        if type_name == "dt":
            return self.datetime_text(value)
        if type_name == "date":
            return self.date_text(value)
        if type_name == "dur":
            return format_duration(value)
        return value

    def parse_datetime(self, raw) -> datetime:
        """An ISO date-time; one without offset is wall time in the profile zone. Returned in UTC, ms."""
        text = str(raw).strip()
        if text.endswith("Z"):
            text = text[:-1] + "+00:00"
        moment = datetime.fromisoformat(text)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=self.zone)
        return to_millis(moment.astimezone(timezone.utc))

    def parse(self, type_name: str, raw):
        """A written value as stored; raises ValueError with a message fit for a field `error`."""
        if raw is None:
            return None
        try:
            return _PARSERS[type_name](self, raw)
        except (TypeError, ValueError) as error:
            raise ValueError(f"'{raw}' is not a valid {_TYPE_WORDS[type_name]}: {error}") from error


def _parse_str(_codec, raw) -> str:
    if not isinstance(raw, (str, int, float)) or isinstance(raw, bool):
        raise TypeError(f"expected text, got {type(raw).__name__}")
    return str(raw)


def _parse_int(_codec, raw) -> int:
    if isinstance(raw, bool):
        raise TypeError("expected a whole number")
    return int(raw)


def _parse_dec(_codec, raw) -> float:
    if isinstance(raw, bool):
        raise TypeError("expected a number")
    return round(float(raw), 6)


def _parse_bool(_codec, raw) -> bool:
    if isinstance(raw, bool):
        return raw
    if str(raw).lower() in ("true", "false"):
        return str(raw).lower() == "true"
    raise ValueError("expected true or false")


def _parse_date(codec: ValueCodec, raw) -> date:
    text = str(raw).strip()
    if len(text) == 10:
        return date.fromisoformat(text)
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is not None:
        moment = moment.astimezone(codec.zone)
    return moment.date()


def _parse_guid(_codec, raw) -> str:
    return str(uuid.UUID(str(raw)))


_PARSERS = {
    "str": _parse_str,
    "int": _parse_int,
    "dec": _parse_dec,
    "bool": _parse_bool,
    "dt": ValueCodec.parse_datetime,
    "date": _parse_date,
    "dur": lambda _codec, raw: parse_duration(raw),
    "guid": _parse_guid,
}
_TYPE_WORDS = {
    "str": "text",
    "int": "whole number",
    "dec": "number",
    "bool": "boolean",
    "dt": "date-time",
    "date": "date",
    "dur": "time span (HH:MM)",
    "guid": "GUID",
}


def truth_value(type_name: str, value):
    """A stored value as the control API's ground truth shows it: UTC "...Z" with ms, dates as YYYY-MM-DD."""
    if value is None:
        return None
    if type_name == "dt":
        return value.astimezone(timezone.utc).replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"
    if type_name == "date":
        return value.isoformat()
    if type_name == "dur":
        return format_duration(value)
    return value
