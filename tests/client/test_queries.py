"""Filter builder: OData v3 (REST) and v4 (DAC/GI) literals and expressions."""

from __future__ import annotations

import datetime
import decimal
import uuid

import pytest

from airflow_provider_acumatica.client.queries import (
    and_,
    endswith,
    eq,
    ge,
    join_names,
    literal,
    lt,
    ne,
    not_,
    or_,
    query_params,
    raw,
    render_filter,
    startswith,
    substringof,
)

PLUS3 = datetime.timezone(datetime.timedelta(hours=3))
INSTANT = datetime.datetime(2024, 7, 15, 10, 31, 28, 402000, tzinfo=PLUS3)


@pytest.mark.parametrize(
    ("value", "v3", "v4"),
    [
        ("O'Brien", "'O''Brien'", "'O''Brien'"),
        (True, "true", "true"),
        (None, "null", "null"),
        (42, "42", "42"),
        (decimal.Decimal("1.50"), "1.50", "1.50"),
        (2.5, "2.5", "2.5"),
        (INSTANT, "datetimeoffset'2024-07-15T10:31:28.402+03:00'", "2024-07-15T10:31:28.402+03:00"),
        (
            datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc),
            "datetimeoffset'2024-01-01T00:00:00.000+00:00'",
            "2024-01-01T00:00:00.000+00:00",
        ),
        (datetime.date(2025, 6, 17), "date'2025-06-17'", "2025-06-17"),
        (uuid.UUID(int=1), "guid'00000000-0000-0000-0000-000000000001'", "00000000-0000-0000-0000-000000000001"),
    ],
)
def test_literals_per_dialect(value, v3, v4):
    assert literal(value, 3) == v3
    assert literal(value, 4) == v4


def test_naive_datetime_is_refused_with_advice():
    with pytest.raises(ValueError, match="give it a time zone"):
        ge("LastModifiedDateTime", datetime.datetime(2024, 1, 1))


@pytest.mark.parametrize("bad", ["Name eq 'x' or 1", "x)", "", "a b", "Name'"])
def test_field_names_cannot_inject(bad):
    with pytest.raises(ValueError, match="not a valid Acumatica field name"):
        eq(bad, 1)


def test_unsupported_values_are_refused():
    with pytest.raises(TypeError, match="cannot be used in an OData filter"):
        eq("Name", object())
    with pytest.raises(ValueError):
        eq("Amount", float("nan"))


def test_expression_rendering_both_dialects():
    window = and_(
        ge("LastModifiedDateTime", INSTANT), lt("LastModifiedDateTime", INSTANT), None, eq("Status", "Active")
    )
    assert str(window) == (
        "LastModifiedDateTime ge datetimeoffset'2024-07-15T10:31:28.402+03:00' and "
        "LastModifiedDateTime lt datetimeoffset'2024-07-15T10:31:28.402+03:00' and Status eq 'Active'"
    )
    assert render_filter(window, 4).startswith("LastModifiedDateTime ge 2024-07-15T10:31:28.402+03:00 and")


def test_functions_and_operators():
    assert str(startswith("ProjectID", "X'")) == "startswith(ProjectID, 'X''')"
    assert str(endswith("Tasks/TaskID", "01")) == "endswith(Tasks/TaskID, '01')"
    assert str(substringof("abc", "Description")) == "substringof('abc', Description)"
    assert substringof("abc", "Description").render(4) == "contains(Description, 'abc')"
    assert str(eq("A", 1) | ne("B", 2)) == "A eq 1 or B ne 2"
    assert str(and_(eq("A", 1) | eq("A", 2), ~eq("B", 3))) == "(A eq 1 or A eq 2) and not (B eq 3)"
    assert str(~eq("A", 1)) == "not (A eq 1)" == str(not_(eq("A", 1)))
    assert str(or_(eq("A", 1))) == "A eq 1"
    assert str(and_(raw("A eq 1"), "B eq 2")) == "(A eq 1) and (B eq 2)"
    with pytest.raises(ValueError, match="at least one condition"):
        and_(None)


def test_strings_pass_through_and_params():
    assert render_filter("Status eq 'Active'", 4) == "Status eq 'Active'"
    assert render_filter(None, 3) is None
    assert join_names(["ProjectID", "Description"]) == "ProjectID,Description"
    assert join_names("Tasks") == "Tasks"
    assert query_params(filter=None, top=10, skip=0, select="") == {"$top": "10", "$skip": "0"}
