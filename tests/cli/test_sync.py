"""`airflow-acumatica sync`: one table into a SQLite warehouse outside Airflow, over real HTTP, with progress."""

from __future__ import annotations

import io

import sqlalchemy as sa

from airflow_provider_acumatica.cli.main import main


def _sync(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = main(["sync", *argv], stdin=io.StringIO(), stdout=out, stderr=err)
    return status, out.getvalue(), err.getvalue()


def test_a_first_load_shows_progress_and_lands_with_its_state(new_sandbox, acumatica_connection, sqlite_url):
    sandbox = new_sandbox(rows=1000)
    conn_id = acumatica_connection(sandbox, profile_timezone="America/New_York")
    status, out, err = _sync(
        "--conn-id", conn_id, "--table", "TimeEntry", "--warehouse", sqlite_url, "--batch-size", "100"
    )
    assert status == 0, err
    engine = sa.create_engine(sqlite_url)
    with engine.connect() as connection:
        rows = connection.execute(sa.text("select count(*) from time_entry")).scalar_one()
        state = connection.execute(sa.text("select rows, watermark from acumatica_sync_state")).one()
    assert rows > 0 and state.rows == rows and state.watermark is not None
    assert f"Synced TimeEntry of tenant Company (incremental): {rows} rows read, {rows} inserted" in out
    progress = err.splitlines()  # not a terminal: one line per batch
    assert progress[-1].startswith(f"TimeEntry [{'#' * 30}] {rows:,}/{rows:,} rows") and "ETA 0 s" in progress[-1]
    assert len(progress) >= 3 and "rows/s" in progress[0]

    status, out, _ = _sync("--conn-id", conn_id, "--table", "TimeEntry", "--warehouse", sqlite_url)
    assert status == 0 and "0 inserted" in out  # the next run reads after the watermark


def test_a_table_the_endpoint_lacks_fails_and_commits_nothing(new_sandbox, acumatica_connection, sqlite_url):
    conn_id = acumatica_connection(new_sandbox(rows=5))
    status, _, err = _sync("--conn-id", conn_id, "--table", "Projectt", "--warehouse", sqlite_url)
    assert status == 1 and err.startswith("Not synced:") and "Projectt" in err and "Nothing was committed" in err
    assert not sa.inspect(sa.create_engine(sqlite_url)).has_table("acumatica_sync_state")
