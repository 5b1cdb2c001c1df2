"""Checks of single config values: each returns the clean value or says what is allowed."""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable
from typing import Any

import pendulum
from pendulum.tz.exceptions import InvalidTimezone

from airflow_provider_acumatica.client.limits import WholeNumbers

Check = Callable[[Any], Any]

TENANT_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]*(_[A-Za-z0-9]+)*$")
TENANT_NAME_MAX = 64


class InvalidValue(ValueError):
    """A value the config may not hold; the message says what is allowed."""


def unchecked(value: Any) -> Any:
    """A value whose shape a later, more specific step checks."""
    return value


def text(value: Any) -> str:
    """A non-empty string."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidValue(f"{value!r} is not allowed (allowed: a non-empty string)")
    return value.strip()


def one_of(*choices: str) -> Check:
    """One of fixed strings."""

    def check(value: Any) -> str:
        if value not in choices:
            raise InvalidValue(f"{value!r} is not allowed (allowed: {', '.join(choices)})")
        return value

    return check


def integer(allowed: WholeNumbers, unit: str = "") -> Check:
    """An integer in `allowed`; booleans are not integers here."""
    suffix = f" {unit}" if unit else ""

    def check(value: Any) -> int:
        if value not in allowed:
            raise InvalidValue(f"{value!r} is not allowed (allowed: an integer {allowed}{suffix})")
        return value

    return check


def boolean(value: Any) -> bool:
    """true or false."""
    if not isinstance(value, bool):
        raise InvalidValue(f"{value!r} is not allowed (allowed: true, false)")
    return value


def boolean_or(*words: str) -> Check:
    """true, false, or one of fixed words."""

    def check(value: Any) -> bool | str:
        if not isinstance(value, bool) and value not in words:
            raise InvalidValue(f"{value!r} is not allowed (allowed: true, false, {', '.join(words)})")
        return value

    return check


def names(value: Any) -> list[str]:
    """A non-empty list of non-empty strings, e.g. field or collection names."""
    if not isinstance(value, list) or not value or not all(isinstance(i, str) and i.strip() for i in value):
        raise InvalidValue(f"{value!r} is not allowed (allowed: a list of names, like [Tasks])")
    return [item.strip() for item in value]


def cron(value: Any) -> str:
    """A cron expression or preset, checked the way Airflow's CronDataIntervalTimetable checks it."""
    from airflow.sdk import CronDataIntervalTimetable
    from airflow.sdk.exceptions import AirflowTimetableInvalid

    allowed = 'a cron expression like "0 * * * *" or a preset like @hourly, @daily'
    if not isinstance(value, str) or not value.strip() or value.strip() == "@once":
        raise InvalidValue(f"{value!r} is not allowed (allowed: {allowed})")
    try:
        CronDataIntervalTimetable(value.strip(), timezone="UTC").validate()
    except AirflowTimetableInvalid as error:
        raise InvalidValue(f"{value!r} is not a valid schedule: {error} (allowed: {allowed})") from None
    return value.strip()


def timezone(value: Any) -> str:
    """An IANA time zone name."""
    try:
        return pendulum.timezone(text(value)).name
    except (InvalidValue, InvalidTimezone):
        raise InvalidValue(
            f"{value!r} is not allowed (allowed: an IANA time zone like UTC, America/New_York)"
        ) from None


def date(value: Any) -> datetime.date:
    """A calendar date (YAML date or an ISO string)."""
    if isinstance(value, datetime.datetime):
        return value.date()
    if isinstance(value, datetime.date):
        return value
    try:
        return datetime.date.fromisoformat(text(value))
    except (InvalidValue, ValueError):
        raise InvalidValue(f"{value!r} is not allowed (allowed: a date like 2024-01-01)") from None


def tenant_name(value: Any) -> str:
    """A tenant label usable in DAG ids, pool names and asset URIs."""
    if not isinstance(value, str) or len(value) > TENANT_NAME_MAX or not TENANT_NAME.match(value):
        raise InvalidValue(
            f"{value!r} cannot be used in a DAG id (allowed: a letter, then letters, digits and single "
            f"underscores, at most {TENANT_NAME_MAX} characters, like company or east_coast)"
        )
    return value
