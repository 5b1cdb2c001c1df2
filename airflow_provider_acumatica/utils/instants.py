"""Instants the operators take from their arguments (templated ISO strings or datetimes): aware, UTC, whole ms."""

from __future__ import annotations

from datetime import datetime, timezone

import pendulum


def floor_ms(instant: datetime) -> datetime:
    """The instant without its microseconds below the millisecond (Acumatica keeps milliseconds)."""
    return instant.replace(microsecond=instant.microsecond // 1000 * 1000)


def parse_instant(value: str | datetime | None, argument: str, describe: str) -> datetime | None:
    """An aware UTC instant from an ISO string or datetime (naive means UTC); empty means not given.
    ValueError names `describe`, the argument and the form to give."""
    if value is None or (isinstance(value, str) and value.strip() in ("", "None", "null")):
        return None
    try:
        parsed = value if isinstance(value, datetime) else pendulum.parse(value.strip())
    except (ValueError, TypeError, pendulum.parsing.exceptions.ParserError) as error:
        raise ValueError(
            f"{describe}: `{argument}` is {value!r}, not a date-time; give ISO 8601 like 2026-01-31T00:00:00Z."
        ) from error
    if not isinstance(parsed, datetime):
        raise ValueError(f"{describe}: `{argument}` is {value!r}; give a date and a time, like 2026-01-31T00:00:00Z.")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return floor_ms(datetime.fromtimestamp(parsed.timestamp(), tz=timezone.utc))
