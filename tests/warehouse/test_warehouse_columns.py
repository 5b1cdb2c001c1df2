"""Column kinds: inference from values and fitting values to kinds, or refusing them with a reason."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from airflow_provider_acumatica.warehouse.columns import CONVERTERS, Kind, kind_of_value

EAST = timezone(timedelta(hours=3))


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        (True, Kind.BOOLEAN),
        (3, Kind.INTEGER),
        (2.5, Kind.FLOAT),
        (Decimal("1.10"), Kind.DECIMAL),
        ("x", Kind.TEXT),
        (datetime(2024, 1, 1, tzinfo=EAST), Kind.TIMESTAMP),
        (date(2024, 1, 1), Kind.DATE),
        ({"a": 1}, Kind.TEXT),
        ([1], Kind.TEXT),
        (None, None),
    ],
)
def test_kinds_are_inferred_from_values(value, kind):
    assert kind_of_value(value) is kind


@pytest.mark.parametrize(
    ("kind", "value", "fitted"),
    [
        (Kind.TEXT, {"b": [1, Decimal("2.5")], "when": date(2024, 1, 2)}, '{"b":[1,"2.5"],"when":"2024-01-02"}'),
        (Kind.TEXT, False, "false"),
        (Kind.TEXT, 12, "12"),
        (Kind.INTEGER, "42", 42),
        (Kind.INTEGER, Decimal("7.0"), 7),
        (Kind.DECIMAL, 0.1, Decimal("0.1")),
        (Kind.DECIMAL, " 12.50 ", Decimal("12.50")),
        (Kind.FLOAT, Decimal("0.5"), 0.5),
        (Kind.BOOLEAN, "TRUE", True),
        (
            Kind.TIMESTAMP,
            datetime(2024, 1, 1, 3, 0, 0, 1000, tzinfo=EAST),
            datetime(2024, 1, 1, 0, 0, 0, 1000, tzinfo=timezone.utc),
        ),
        (Kind.TIMESTAMP, "2024-07-15T10:31:28.402Z", datetime(2024, 7, 15, 10, 31, 28, 402000, tzinfo=timezone.utc)),
        (Kind.DATE, "2024-03-10", date(2024, 3, 10)),
    ],
)
def test_values_are_fitted_to_their_kind(kind, value, fitted):
    assert CONVERTERS[kind](value) == fitted


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        (Kind.INTEGER, True),
        (Kind.INTEGER, 1.5),
        (Kind.INTEGER, "one"),
        (Kind.DECIMAL, "NaN"),
        (Kind.DECIMAL, True),
        (Kind.FLOAT, "fast"),
        (Kind.BOOLEAN, 1),
        (Kind.TIMESTAMP, datetime(2024, 1, 1)),
        (Kind.TIMESTAMP, date(2024, 1, 1)),
        (Kind.DATE, datetime(2024, 1, 1, tzinfo=EAST)),
        (Kind.TEXT, object()),
    ],
)
def test_values_that_do_not_fit_are_refused(kind, value):
    with pytest.raises((ValueError, TypeError, ArithmeticError)):
        CONVERTERS[kind](value)


def test_json_text_keeps_unicode_and_round_trips():
    value = {"Description": "Chantier à Montréal", "Tasks": [{"TaskID": "01", "Budget": 1.5}]}
    assert json.loads(CONVERTERS[Kind.TEXT](value)) == value and "é" in CONVERTERS[Kind.TEXT](value)
