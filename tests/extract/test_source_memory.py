"""What syncs remember of an instance between runs (extract.memory), against the sandbox charging server work per
record, over real HTTP, into real warehouses. Each run starts as an Airflow task does, in a fresh process: the
endpoint schema the test process read before is forgotten (test_read_plan runs a quiet run in a process of its
own). Costs are what the sandbox counts, never durations."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy
from test_read_plan import SERVER_COST

from airflow_provider_acumatica.client.schema import SCHEMAS
from airflow_provider_acumatica.extract.memory import SCHEMA_TTL
from airflow_provider_acumatica.operators.acumatica_to_sql import AcumaticaToSqlOperator
from airflow_provider_acumatica.warehouse.notes import notes_table


@pytest.fixture(params=["sqlite", "postgres"])
def warehouse(request, tmp_path):
    """(SQLAlchemy URL, schema) of an empty warehouse of either kind."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'warehouse.db'}", None
    return request.getfixturevalue("postgres_schema")


def fresh_run(conn_id: str, warehouse, **arguments) -> dict:
    """One operator run of TimeEntry as in a process of its own: the endpoint schema read before is forgotten."""
    url, schema = warehouse
    SCHEMAS.clear()
    operator = AcumaticaToSqlOperator(
        task_id="sync", table="TimeEntry", acumatica_conn_id=conn_id, sql_url=url, target_schema=schema, **arguments
    )
    return operator.execute(context={})


def counted_run(sandbox, conn_id: str, warehouse, **arguments) -> tuple[dict, dict]:
    """A fresh run's summary, and what it cost the sandbox."""
    sandbox.control.reset_counters()
    summary = fresh_run(conn_id, warehouse, **arguments)
    return summary, sandbox.control.counters()


def cost(counters: dict) -> tuple[int, int, int]:
    return counters["logins"], counters["logouts"], counters["requests"]


def notes(warehouse) -> dict[tuple[str, str], dict]:
    """The warehouse's notes, by (source, name)."""
    url, schema = warehouse
    engine = sqlalchemy.create_engine(url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(sqlalchemy.select(notes_table(sqlalchemy.MetaData(), schema))).mappings()
            return {(row["source"], row["name"]): dict(row) for row in rows}
    finally:
        engine.dispose()


def change_notes(warehouse, name_starts: str, *, noted_at: datetime | None = None, forget: bool = False) -> None:
    """Age the notes whose name starts so (as if written at `noted_at`), or forget them."""
    url, schema = warehouse
    table = notes_table(sqlalchemy.MetaData(), schema)
    mine = table.c.name.startswith(name_starts)
    engine = sqlalchemy.create_engine(url)
    try:
        with engine.begin() as connection:
            statement = table.delete() if forget else table.update().values(noted_at=noted_at)
            assert connection.execute(statement.where(mine)).rowcount == 1
    finally:
        engine.dispose()


def test_a_quiet_run_reading_again_100_records_or_more_is_not_checked_for_a_page_cap(
    new_sandbox, acumatica_connection, warehouse
):
    """A short answer of 100 records or more is checked for a page cap (one one-record request) unless the instance
    answered more at once before: in an earlier run too, as the warehouse remembers it."""
    sandbox = new_sandbox(rows=600, seed=13, **SERVER_COST)
    conn_id = acumatica_connection(sandbox)
    fresh_run(conn_id, warehouse)  # the initial load: its answers are the largest yet
    changed = sandbox.control.update("Company", "TimeEntry", random=150)
    changes, counters = counted_run(sandbox, conn_id, warehouse)
    assert changes["rows"] >= len(changed) >= 100 and cost(counters) == (1, 1, 3)
    for _ in range(2):  # nothing changed since: the time offset reads the 150 again, each time
        quiet, counters = counted_run(sandbox, conn_id, warehouse)
        assert quiet["rows"] >= 100 and quiet["inserted"] == 0 and cost(counters) == (1, 1, 3)
        assert counters["records_rendered"] == quiet["rows"]
    change_notes(warehouse, "largest answer", forget=True)  # as a warehouse of an earlier version: checked
    quiet, counters = counted_run(sandbox, conn_id, warehouse)
    assert quiet["rows"] >= 100 and cost(counters) == (1, 1, 4)


def test_the_field_types_are_read_again_once_their_note_is_a_day_old(new_sandbox, acumatica_connection, sqlite_url):
    warehouse = (sqlite_url, None)
    sandbox = new_sandbox(rows=600, seed=13, **SERVER_COST)
    conn_id = acumatica_connection(sandbox)
    fresh_run(conn_id, warehouse)
    now = datetime.now(timezone.utc)
    change_notes(warehouse, "swagger.json", noted_at=now - SCHEMA_TTL + timedelta(hours=1))
    _, counters = counted_run(sandbox, conn_id, warehouse)
    assert cost(counters) == (1, 1, 3)
    change_notes(warehouse, "swagger.json", noted_at=now - SCHEMA_TTL - timedelta(hours=1))
    _, counters = counted_run(sandbox, conn_id, warehouse)
    assert cost(counters) == (1, 1, 4)  # swagger.json read again, and noted anew
    (kept,) = [note for (_, name), note in notes(warehouse).items() if name.startswith("swagger.json")]
    assert kept["noted_at"] >= now and '"TimeSpent": "duration"' in kept["text"]
    _, counters = counted_run(sandbox, conn_id, warehouse)
    assert cost(counters) == (1, 1, 3)


def test_what_one_instance_answered_is_not_taken_for_another(new_sandbox, acumatica_connection, sqlite_url):
    """Two instances (their tenants named alike) loading into one warehouse: each has notes of its own."""
    warehouse = (sqlite_url, None)
    first, other = (new_sandbox(rows=600, seed=13, **SERVER_COST) for _ in range(2))
    first_conn, other_conn = acumatica_connection(first, "first"), acumatica_connection(other, "other")
    fresh_run(first_conn, warehouse)
    since = first.control.now() - timedelta(seconds=1)
    for sandbox in (first, other):
        sandbox.control.update("Company", "TimeEntry", random=150)
    window = {"window_start": since.isoformat()}
    reread, counters = counted_run(first, first_conn, warehouse, **window)
    assert reread["rows"] == 150 and cost(counters) == (1, 1, 3)
    elsewhere, counters = counted_run(other, other_conn, warehouse, target_table="time_entry_other", **window)
    # sign-in, the other instance's swagger.json, the page, a check that nothing follows its 150 records, sign-out
    assert elsewhere["rows"] == 150 and cost(counters) == (1, 1, 5)
    sources = {source for source, _ in notes(warehouse)}
    assert sources == {f"{first.url} Company", f"{other.url} Company"}


def test_a_remembered_answer_never_passes_a_capped_page_as_complete(new_sandbox, acumatica_connection, sqlite_url):
    """An instance answering at most 150 records whatever $top asks: what it answered is remembered, its cap found
    again by the next run, which loses nothing."""
    warehouse = (sqlite_url, None)
    sandbox = new_sandbox(rows=1200, seed=43, max_page_size=150, **SERVER_COST)
    conn_id = acumatica_connection(sandbox)
    assert fresh_run(conn_id, warehouse)["rows"] == 1200
    assert [note["text"] for (_, name), note in notes(warehouse).items() if name.startswith("largest answer")] == [
        "150"
    ]
    changed = set(sandbox.control.update("Company", "TimeEntry", random=400))
    assert fresh_run(conn_id, warehouse)["rows"] >= 400
    truth = {record["id"]: record for record in sandbox.control.truth("Company", "TimeEntry")["records"]}
    engine = sqlalchemy.create_engine(sqlite_url)
    with engine.connect() as connection:
        stored = dict(connection.execute(sqlalchemy.text("select _acumatica_id, _last_modified from time_entry")).all())
    engine.dispose()
    assert changed <= set(stored) and all(
        datetime.fromisoformat(str(stored[key])).replace(tzinfo=timezone.utc)
        == datetime.fromisoformat(truth[key]["LastModifiedDateTime"].replace("Z", "+00:00"))
        for key in changed
    )
