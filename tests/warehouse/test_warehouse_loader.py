"""Loads on SQLite and PostgreSQL: merge counts, atomic replace, rollback, evolution, deletes, tenants, scale."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
import sqlalchemy

from airflow_provider_acumatica.warehouse.columns import DecimalText
from airflow_provider_acumatica.warehouse.errors import SchemaConflictError, ValueMisfitError
from airflow_provider_acumatica.warehouse.loader import Warehouse
from airflow_provider_acumatica.warehouse.state import SyncState

UTC = timezone.utc
KEY = ["TimeEntryID"]
STATE = SyncState("Company", "time_entry")


def load(warehouse: Warehouse, rows, *, tenant="Company", mode="merge", table="time_entry", key=KEY, batch=1000):
    with warehouse.load(table=table, tenant=tenant, key_fields=key, mode=mode) as run:
        for start in range(0, len(rows), batch):
            run.write(rows[start : start + batch])
        return run.commit(SyncState(tenant, table))


def live_keys(rows) -> list[str]:
    return [row["time_entry_id"] for row in rows if row["_deleted_at"] is None]


def test_merge_inserts_then_updates_with_right_counts(warehouse, rows_factory, fetch):
    first = load(warehouse, rows_factory(10))
    assert (first.rows, first.inserted, first.updated, first.marked_deleted) == (10, 10, 0, 0)

    second = load(warehouse, rows_factory(10, start=5, version=1), batch=3)
    assert (second.rows, second.inserted, second.updated, second.skipped_stale) == (10, 5, 5, 0)

    stored = fetch("time_entry")
    assert [row["time_entry_id"] for row in stored] == [f"TE{n:06d}" for n in range(15)]
    assert [row["time_spent"] for row in stored] == [n * 10 for n in range(5)] + [n * 10 + 1 for n in range(5, 15)]
    assert {row["_tenant"] for row in stored} == {"Company"}
    assert all(row["_deleted_at"] is None for row in stored)


def test_a_key_read_twice_in_a_run_keeps_its_last_copy(warehouse, rows_factory, fetch):
    old, new = rows_factory(1), rows_factory(1, version=2)
    with warehouse.load(table="time_entry", tenant="Company", key_fields=KEY) as run:
        run.write(old + rows_factory(2, start=1))
        run.write(new)
        result = run.commit(STATE)
    assert (result.rows, result.inserted) == (3, 3)
    assert fetch("time_entry")[0]["time_spent"] == 2


def test_an_older_copy_never_overwrites_a_newer_row(warehouse, rows_factory, fetch):
    load(warehouse, rows_factory(3, version=5))
    result = load(warehouse, rows_factory(3, version=0) + rows_factory(1, start=3))
    assert (result.inserted, result.updated, result.skipped_stale) == (1, 0, 3)
    assert [row["time_spent"] for row in fetch("time_entry")] == [5, 15, 25, 30]


def test_replace_swaps_atomically_and_marks_absent_rows_deleted(warehouse, rows_factory, fetch, reader):
    load(warehouse, rows_factory(10))
    load(warehouse, rows_factory(4), tenant="Other")
    seen_inside_commit = []

    def read_while_state_is_written(conn, cursor, statement, *args):
        if "acumatica_sync_state" in statement and statement.lstrip().upper().startswith(("INSERT", "UPDATE")):
            with reader.connect() as connection:
                seen_inside_commit.append(live_keys(fetch("time_entry", connection)))

    with warehouse.load(table="time_entry", tenant="Company", key_fields=KEY, mode="replace") as run:
        run.write(rows_factory(5, start=5, version=1))
        run.write(rows_factory(3, start=10, version=1))
        assert len(live_keys(fetch("time_entry"))) == 14, "a reader sees the old table while the run stages"
        sqlalchemy.event.listen(warehouse.engine, "before_cursor_execute", read_while_state_is_written)
        try:
            result = run.commit(STATE)
        finally:
            sqlalchemy.event.remove(warehouse.engine, "before_cursor_execute", read_while_state_is_written)

    old_live = [f"TE{n:06d}" for n in range(10)] + [f"TE{n:06d}" for n in range(4)]
    assert seen_inside_commit == [old_live], "inside the commit transaction a reader still sees the old rows"
    assert (result.rows, result.inserted, result.updated, result.marked_deleted) == (8, 3, 5, 5)
    stored = fetch("time_entry")
    company = [row for row in stored if row["_tenant"] == "Company"]
    assert live_keys(company) == [f"TE{n:06d}" for n in range(5, 13)]
    replaced_at = company[5]["_synced_at"]
    assert [row["_deleted_at"] for row in company] == [replaced_at] * 5 + [None] * 8
    assert live_keys([row for row in stored if row["_tenant"] == "Other"]) == [f"TE{n:06d}" for n in range(4)]


def test_replace_with_no_rows_marks_all_the_tenants_rows_but_no_others(warehouse, rows_factory, fetch):
    load(warehouse, rows_factory(3))
    load(warehouse, rows_factory(3), tenant="Other")
    result = load(warehouse, [], mode="replace")
    assert result.marked_deleted == 3
    stored = fetch("time_entry")
    assert live_keys(stored) == [f"TE{n:06d}" for n in range(3)] and stored[3]["_tenant"] == "Other"


def test_a_deleted_row_read_again_lives_again(warehouse, rows_factory, fetch):
    load(warehouse, rows_factory(2))
    load(warehouse, rows_factory(1), mode="replace")
    assert live_keys(fetch("time_entry")) == ["TE000000"]
    load(warehouse, rows_factory(2, version=1))
    assert live_keys(fetch("time_entry")) == ["TE000000", "TE000001"]


def test_abandoned_load_leaves_table_state_and_schema_exactly_as_before(warehouse, rows_factory, dump):
    load(warehouse, rows_factory(5))
    before = dump()
    with pytest.raises(RuntimeError, match="killed"):
        with warehouse.load(table="time_entry", tenant="Company", key_fields=KEY, mode="replace") as run:
            run.write([dict(row, NewField=1) for row in rows_factory(3, start=3, version=1)])
            run.mark_deleted(["TE000000"], datetime.now(UTC))
            raise RuntimeError("killed mid-run")
    assert dump() == before


def test_failure_inside_commit_rolls_back_data_columns_and_state(warehouse, rows_factory, dump):
    load(warehouse, rows_factory(5))
    before = dump()

    def fail_on_state_write(conn, cursor, statement, *args):
        if "acumatica_sync_state" in statement and statement.lstrip().upper().startswith("UPDATE"):
            raise RuntimeError("connection lost while writing the state")

    sqlalchemy.event.listen(warehouse.engine, "before_cursor_execute", fail_on_state_write)
    try:
        with pytest.raises(RuntimeError, match="connection lost"):
            with warehouse.load(table="time_entry", tenant="Company", key_fields=KEY, mode="replace") as run:
                run.write([dict(row, NewField=1) for row in rows_factory(4, start=3, version=1)])
                run.commit(SyncState("Company", "time_entry", watermark=datetime.now(UTC)))
    finally:
        sqlalchemy.event.remove(warehouse.engine, "before_cursor_execute", fail_on_state_write)
    assert dump() == before


def test_new_fields_become_nullable_columns(warehouse, rows_factory, fetch, caplog):
    caplog.set_level("INFO", logger="airflow_provider_acumatica.warehouse")
    with warehouse.load(table="time_entry", tenant="Company", key_fields=KEY) as run:
        run.write([dict(row, Note=None) for row in rows_factory(2)])
        run.write([dict(row, Note="late", UsrCrew=7) for row in rows_factory(1, start=2)])
        first = run.commit(STATE)
    assert "note" in first.added_columns and "usr_crew" in first.added_columns
    second = load(warehouse, [dict(row, WCCCode="5403") for row in rows_factory(1, start=3)])
    assert second.added_columns == ("wcc_code",)
    assert "adding column 'wcc_code'" in caplog.text
    stored = fetch("time_entry")
    assert [row["note"] for row in stored] == [None, None, "late", None]
    assert [row["usr_crew"] for row in stored] == [None, None, 7, None]
    assert [row["wcc_code"] for row in stored] == [None, None, None, "5403"]


def test_a_field_with_only_nulls_waits_for_a_value_before_getting_a_column(warehouse, rows_factory, fetch):
    load(warehouse, [dict(row, Empty=None) for row in rows_factory(1)])
    assert "empty" not in fetch("time_entry")[0]
    load(warehouse, [dict(row, Empty=12.5) for row in rows_factory(1, start=1)])
    assert [row["empty"] for row in fetch("time_entry")] == [None, 12.5]


def test_types_come_from_declared_edm_types_and_from_values(warehouse, reader, rows_factory, fetch):
    declared = {
        "Amount": "Edm.Decimal",
        "Quantity": "Edm.Int32",
        "Approved": "Edm.Boolean",
        "Started": "Edm.DateTimeOffset",
        "Day": "Edm.Date",
        "Description": "Edm.String",
    }
    started = datetime(2024, 11, 3, 1, 30, 0, 123000, tzinfo=timezone(timedelta(hours=-4)))
    row = dict(
        rows_factory(1)[0],
        Amount=5,
        Quantity="12",
        Approved="true",
        Started=started.isoformat(),
        Day="2024-11-03",
        Description=None,
        Ratio=0.5,
        Tasks=[{"TaskID": "01"}],
        Note="x",
    )
    with warehouse.load(table="time_entry", tenant="Company", key_fields=KEY, declared_types=declared) as run:
        run.write([row])
        run.commit(STATE)
    columns = {
        c["name"]: c["type"] for c in sqlalchemy.inspect(reader).get_columns("time_entry", schema=warehouse.schema)
    }
    decimal = DecimalText if warehouse.engine.dialect.name == "sqlite" else sqlalchemy.Numeric
    expected = {
        "amount": decimal,
        "quantity": sqlalchemy.Integer,
        "approved": sqlalchemy.Boolean,
        "started": sqlalchemy.DateTime,
        "day": sqlalchemy.Date,
        "description": sqlalchemy.String,
        "time_spent": sqlalchemy.Integer,
        "cost_rate": decimal,
        "billable": sqlalchemy.Boolean,
        "date": sqlalchemy.DateTime,
        "ratio": sqlalchemy.Float,
        "tasks": sqlalchemy.String,
        "custom": sqlalchemy.String,
        "_last_modified": sqlalchemy.DateTime,
    }
    assert {name: type(columns[name]) for name in expected} == {
        name: type(columns[name]) for name in expected if isinstance(columns[name], expected[name])
    }
    stored = fetch("time_entry")[0]
    assert stored["amount"] == Decimal(5) and stored["quantity"] == 12 and stored["approved"] is True
    assert stored["day"].isoformat() == "2024-11-03" and stored["description"] is None
    assert stored["cost_rate"] == Decimal("0.25") and stored["billable"] is True and stored["ratio"] == 0.5
    assert json.loads(stored["tasks"]) == [{"TaskID": "01"}]
    assert json.loads(stored["custom"]) == row["custom"]


def test_timestamps_are_stored_as_utc_with_milliseconds(warehouse, rows_factory):
    started = datetime(2024, 11, 3, 1, 30, 0, 123000, tzinfo=timezone(timedelta(hours=-4)))
    load(warehouse, [dict(rows_factory(1)[0], Date=started)])
    from airflow_provider_acumatica.warehouse.columns import UtcDateTime

    table = sqlalchemy.Table(
        "time_entry", sqlalchemy.MetaData(), sqlalchemy.Column("date", UtcDateTime()), schema=warehouse.schema
    )
    with warehouse.engine.connect() as connection:
        stored = connection.execute(sqlalchemy.select(table.c.date)).scalar_one()
    assert stored == datetime(2024, 11, 3, 5, 30, 0, 123000, tzinfo=UTC) and stored.tzinfo == UTC


@pytest.mark.parametrize("hostile", ['x"; DROP TABLE victim; --', "it's; DELETE FROM victim", "100% :bind"])
def test_hostile_names_and_values_are_quoted_never_executed(warehouse, reader, hostile):
    victim = sqlalchemy.Table(
        "victim", sqlalchemy.MetaData(), sqlalchemy.Column("id", sqlalchemy.Integer), schema=warehouse.schema
    )
    with reader.begin() as connection:
        victim.create(connection)
        connection.execute(victim.insert().values(id=1))
    fields = {hostile: 1, "_" + hostile: 2, "a b": 3, 'q"uote': 4}
    row = dict(fields, Key=hostile, _acumatica_id=hostile, _last_modified=None)
    with warehouse.load(table=hostile, tenant=hostile, key_fields=["Key"]) as run:
        run.write([row])
        run.commit(SyncState(hostile, hostile))
    table = sqlalchemy.Table(hostile, sqlalchemy.MetaData(), schema=warehouse.schema, autoload_with=reader)
    with reader.connect() as connection:
        stored = dict(connection.execute(sqlalchemy.select(table)).mappings().one())
        assert connection.execute(sqlalchemy.select(victim.c.id)).scalars().all() == [1]
    assert stored["_" + hostile] == 2 and stored["a_b"] == 3 and stored["q_uote"] == 4
    assert stored["key"] == hostile and stored["_tenant"] == hostile
    assert warehouse.read_state(hostile, hostile) is not None


def test_two_fields_with_one_column_name_are_refused(warehouse, rows_factory):
    with warehouse.load(table="time_entry", tenant="Company", key_fields=KEY) as run:
        with pytest.raises(SchemaConflictError, match=r"'time_entry'.*'ProjectID' and 'Project_ID'.*'project_id'"):
            run.write([dict(rows_factory(1)[0], Project_ID="P")])
        with pytest.raises(SchemaConflictError, match="'_synced_at', which the loader fills"):
            run.write([dict(rows_factory(1)[0], _synced_at=None)])


def test_a_value_that_does_not_fit_names_table_column_row_and_remedy(warehouse, rows_factory):
    with warehouse.load(table="time_entry", tenant="Company", key_fields=KEY) as run:
        run.write(rows_factory(1))
        bad = dict(rows_factory(1, start=1)[0], TimeSpent="two hours")
        with pytest.raises(ValueMisfitError) as raised:
            run.write([bad])
        naive = dict(rows_factory(1, start=2)[0], Date=datetime(2024, 1, 1))
        with pytest.raises(ValueMisfitError, match="without a UTC offset"):
            run.write([naive])
        with pytest.raises(ValueMisfitError, match="no value for key field 'TimeEntryID'"):
            run.write([dict(rows_factory(1)[0], TimeEntryID=None)])
    message = str(raised.value)
    for part in ("'time_entry'", "'time_spent'", "TimeEntryID='TE000001'", "'two hours'", "declared_types"):
        assert part in message


def test_an_existing_table_with_another_key_is_refused(warehouse, rows_factory):
    load(warehouse, rows_factory(1))
    with pytest.raises(SchemaConflictError, match=r"primary key \['_tenant', 'time_entry_id'\].*'project_id'"):
        with warehouse.load(table="time_entry", tenant="Company", key_fields=["ProjectID"]):
            pass


def test_without_key_fields_rows_are_keyed_by_acumatica_id(warehouse, rows_factory, fetch):
    rows = [{k: v for k, v in row.items() if k != "TimeEntryID"} for row in rows_factory(3)]
    load(warehouse, rows, key=[])
    result = load(warehouse, rows[:1], key=[])
    assert (result.inserted, result.updated) == (0, 1)
    assert [row["_acumatica_id"] for row in fetch("time_entry")] == [row["_acumatica_id"] for row in rows]


def test_a_large_run_leaves_exactly_its_rows(warehouse, rows_factory, reader):
    with warehouse.load(table="time_entry", tenant="Company", key_fields=KEY) as run:
        for start in range(0, 50_000, 2_000):
            run.write(rows_factory(2_000, start=start))
        result = run.commit(STATE)
    assert (result.rows, result.inserted) == (50_000, 50_000)
    table = sqlalchemy.Table("time_entry", sqlalchemy.MetaData(), schema=warehouse.schema, autoload_with=reader)
    with reader.connect() as connection:
        count, distinct, total = connection.execute(
            sqlalchemy.select(
                sqlalchemy.func.count(),
                sqlalchemy.func.count(table.c.time_entry_id.distinct()),
                sqlalchemy.func.sum(table.c.time_spent),
            )
        ).one()
    assert (count, distinct, total) == (50_000, 50_000, sum(n * 10 for n in range(50_000)))


def test_mark_deleted_by_key_and_by_id_keeps_rows_and_spares_newer_ones(warehouse, rows_factory, fetch):
    load(warehouse, rows_factory(5))
    deleted_at = datetime(2024, 7, 15, 10, 33, tzinfo=UTC)  # after rows 0-1 were modified, before rows 2-4
    with warehouse.load(table="time_entry", tenant="Company", key_fields=KEY) as run:
        assert run.mark_deleted([("TE000000",), "TE000003", "TE999999"], deleted_at) == 3
        assert run.mark_deleted(["00000000-0000-0000-0000-000000000001"], deleted_at, by_id=True) == 1
        result = run.commit(STATE)
    assert result.marked_deleted == 2
    stored = fetch("time_entry")
    assert [row["_deleted_at"] for row in stored] == [deleted_at, deleted_at, None, None, None]


def test_reconcile_keys_marks_unlisted_rows_synced_before_the_listing(warehouse, rows_factory, fetch):
    load(warehouse, rows_factory(5))
    load(warehouse, rows_factory(5), tenant="Other")
    listing_started = datetime.now(UTC)
    load(warehouse, rows_factory(1, start=5))  # created while the keys were listed: not in the listing
    listed = (f"TE{n:06d}" for n in (0, 2, 4))
    assert warehouse.reconcile_keys("time_entry", "Company", KEY, listed, started_at=listing_started) == 2
    stored = fetch("time_entry")
    assert live_keys([row for row in stored if row["_tenant"] == "Company"]) == [
        "TE000000",
        "TE000002",
        "TE000004",
        "TE000005",
    ]
    assert len(live_keys([row for row in stored if row["_tenant"] == "Other"])) == 5
    assert warehouse.reconcile_keys("missing_table", "Company", KEY, []) == 0


def test_the_same_key_in_two_tenants_is_two_rows(warehouse, rows_factory, fetch):
    load(warehouse, rows_factory(2))
    load(warehouse, rows_factory(2, version=3), tenant="Other")
    stored = fetch("time_entry")
    assert [(row["_tenant"], row["time_entry_id"], row["time_spent"]) for row in stored] == [
        ("Company", "TE000000", 0),
        ("Company", "TE000001", 10),
        ("Other", "TE000000", 3),
        ("Other", "TE000001", 13),
    ]


def test_a_refused_batch_changes_nothing_and_the_load_goes_on(warehouse, rows_factory, fetch):
    with warehouse.load(table="time_entry", tenant="Company", key_fields=KEY) as run:
        with pytest.raises(ValueMisfitError, match="column 'date'"):
            run.write([dict(rows_factory(1)[0], Date=datetime(2024, 1, 1), Extra=1)])
        run.write([dict(row, Extra=2) for row in rows_factory(2, start=1)])
        result = run.commit(STATE)
    assert (result.rows, result.inserted) == (2, 2)
    assert [(row["time_entry_id"], row["extra"]) for row in fetch("time_entry")] == [("TE000001", 2), ("TE000002", 2)]


def test_a_load_whose_database_step_failed_can_only_be_left(warehouse, rows_factory):
    with warehouse.load(table="time_entry", tenant="Company", key_fields=KEY) as run:
        with pytest.raises(ValueError, match="should have 1 value"):
            run.mark_deleted([("TE000001", "extra")], datetime.now(UTC))
        with pytest.raises(RuntimeError, match="failed: leave the 'with' block"):
            run.write(rows_factory(1))
