"""Naming of tables and columns, and a table's layout as fields arrive: keys, collisions, declared types."""

from __future__ import annotations

import pytest

from airflow_provider_acumatica.warehouse.columns import Kind
from airflow_provider_acumatica.warehouse.errors import SchemaConflictError
from airflow_provider_acumatica.warehouse.schema import TableLayout, column_name, table_name


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("TimeEntry", "time_entry"),
        ("PMTask", "pm_task"),
        ("EPEmployee", "ep_employee"),
        ("Project", "project"),
        ("time_entry", "time_entry"),
        ("PMProject", "pm_project"),
    ],
)
def test_table_names_are_snake_case(source, expected):
    assert table_name(source) == expected
    assert table_name(expected) == expected  # naming twice changes nothing


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        ("ProjectID", "project_id"),
        ("LastModifiedDateTime", "last_modified_date_time"),
        ("WCCCode", "wcc_code"),
        ("UsrCustomField", "usr_custom_field"),
        ("Address2Line", "address2_line"),
        ("custom", "custom"),
        ("_acumatica_id", "_acumatica_id"),
        ('_we"ird', '_we"ird'),
        ("Cost Code", "cost_code"),
        ('x"; DROP TABLE t; --', "x_drop_table_t_"),
        ("Prénom", "prénom"),
    ],
)
def test_column_names_are_snake_case_and_system_names_pass_through(field, expected):
    assert column_name(field) == expected


def test_names_too_long_for_postgresql_are_shortened_uniquely():
    first, second = "Usr" + "VeryLong" * 10 + "A", "Usr" + "VeryLong" * 10 + "B"
    assert len(column_name(first).encode()) <= 63 and column_name(first) != column_name(second)
    assert column_name(first) == column_name(first)


@pytest.mark.parametrize("bad", ["", None, 3])
def test_empty_or_non_text_names_are_refused(bad):
    with pytest.raises(ValueError, match="non-empty string"):
        table_name(bad)


def test_declared_types_make_columns_before_any_value():
    layout = TableLayout("time_entry", ["TimeEntryID"], {"TimeEntryID": "Edm.Guid", "Amount": "Edm.Decimal"})
    kinds = {column.name: column.kind for column in layout.staged_columns()}
    assert kinds == {
        "_acumatica_id": Kind.TEXT,
        "_last_modified": Kind.TIMESTAMP,
        "time_entry_id": Kind.TEXT,
        "amount": Kind.DECIMAL,
    }
    assert [column.name for column in layout.staged_columns() if column.key] == ["time_entry_id"]


def test_unknown_edm_types_are_text_and_other_types_are_refused(caplog):
    layout = TableLayout("t", [], {"Photo": "Edm.Stream"})
    assert layout.columns["photo"].kind is Kind.TEXT and "Edm.Stream" in caplog.text
    with pytest.raises(ValueError, match=r"declared_types\['Amount'\] is 'decimal'"):
        TableLayout("t", [], {"Amount": "decimal"})


def test_fields_are_discovered_batch_by_batch_and_collisions_named():
    layout = TableLayout("project", ["ProjectID"], None)
    added = layout.discover({"ProjectID": ["P1", "P2"], "Budget": [None, None], "Status": [None, "Active"]})
    assert [column.name for column in added] == ["project_id", "status"]
    assert [column.name for column in layout.discover({"Budget": [1.5]})] == ["budget"]
    with pytest.raises(SchemaConflictError, match=r"'project': fields 'ProjectID' and 'Project ID'"):
        layout.discover({"Project ID": ["P3"]})


def test_an_existing_table_gives_its_types_and_must_share_the_key():
    import sqlalchemy

    layout = TableLayout("project", ["ProjectID"], None)
    reflected = [
        {"name": "_tenant", "type": sqlalchemy.String()},
        {"name": "project_id", "type": sqlalchemy.TEXT()},
        {"name": "budget", "type": sqlalchemy.NUMERIC()},
        {"name": "note", "type": sqlalchemy.JSON()},
    ]
    layout.adopt_existing(reflected, ["_tenant", "project_id"])
    added = layout.discover({"ProjectID": ["P1"], "Budget": ["not inferred from this string"], "Note": ["x"]})
    assert {column.name: column.kind for column in added} == {"budget": Kind.DECIMAL, "note": Kind.TEXT}
    with pytest.raises(SchemaConflictError, match=r"primary key \['_tenant'\]"):
        TableLayout("project", ["ProjectID"], None).adopt_existing(reflected, ["_tenant"])
