"""Integrity of dags/: every file imports through Airflow's DagBag, DAGs have owners, retries and tags,
a bad config becomes the file's import error, and parsing does no network or database I/O."""

from __future__ import annotations

import socket
import sqlite3
from pathlib import Path

import pytest
from airflow.dag_processing.dagbag import DagBag
from dags_paths import DAGS_FOLDER, PAYROLL_FILE, SYNC_FILE


def parse(folder: Path = DAGS_FOLDER) -> DagBag:
    return DagBag(dag_folder=folder, bundle_path=DAGS_FOLDER)


def test_every_dag_file_imports_and_every_dag_has_owner_retries_and_tags(monkeypatch):
    monkeypatch.delenv("ACUMATICA_DAGS_CONFIG", raising=False)
    bag = parse()
    assert bag.import_errors == {}
    assert sorted(bag.dag_ids) == [
        "acumatica_payroll__company",
        "acumatica_sync__company",
        "acumatica_sync__subsidiary",
    ]
    for dag in bag.dags.values():
        assert dag.owner not in ("", "airflow"), dag.dag_id
        assert dag.default_args["retries"] >= 1, dag.dag_id
        assert dag.tags and "acumatica" in dag.tags, dag.dag_id
        assert dag.doc_md, dag.dag_id


def test_bad_config_is_the_import_error_of_the_dag_file(monkeypatch, tmp_path):
    bad = tmp_path / "acumatica.yaml"
    bad.write_text(
        "tenants:\n  - {name: company, acumatica_conn_id: a, tables: [construction, {name: Project, modee: full}]}\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("ACUMATICA_DAGS_CONFIG", str(bad))
    bag = parse(SYNC_FILE)
    assert bag.dag_ids == []
    assert list(bag.import_errors) == ["acumatica_sync.py"]
    error = bag.import_errors["acumatica_sync.py"]
    assert f"ConfigError: {bad}: tenant 'company', table 'Project': unknown key 'modee' (allowed: name, mode," in error


class ForbiddenIO(AssertionError):
    """Raised by the stand-ins for socket and SQLite connections while the guard is on."""


@pytest.fixture
def io_guard(monkeypatch):
    """Refuse and record every socket or SQLite connection (a legitimate mock: we test that none happens).

    Recording as well as refusing means an attempt swallowed by a broad ``except`` somewhere still
    fails the test. PostgreSQL drivers connect through sockets, so they are covered too.
    """
    attempts: list[str] = []

    def refuse(what):
        def connect(*args, **kwargs):
            attempts.append(what)
            raise ForbiddenIO(f"{what} connection while parsing DAGs")

        return connect

    monkeypatch.setattr(socket.socket, "connect", refuse("socket"))
    monkeypatch.setattr(socket.socket, "connect_ex", refuse("socket"))
    monkeypatch.setattr(socket, "create_connection", refuse("socket"))
    monkeypatch.setattr(sqlite3, "connect", refuse("sqlite3"))
    monkeypatch.setattr(sqlite3.dbapi2, "connect", refuse("sqlite3"))
    return attempts


@pytest.mark.parametrize(("dag_file", "dags"), [(SYNC_FILE, 2), (PAYROLL_FILE, 1)])
def test_parsing_does_no_network_or_database_io(monkeypatch, io_guard, dag_file, dags):
    monkeypatch.delenv("ACUMATICA_DAGS_CONFIG", raising=False)
    bag = parse(dag_file)
    assert bag.import_errors == {}
    assert len(bag.dag_ids) == dags
    assert io_guard == []


def test_a_bad_payroll_block_is_the_import_error_of_the_payroll_dag_file(monkeypatch, tmp_path):
    bad = tmp_path / "acumatica.yaml"
    bad.write_text(
        "tenants:\n  - {name: company, acumatica_conn_id: a, tables: construction, payroll: {hold: maybe}}\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("ACUMATICA_DAGS_CONFIG", str(bad))
    bag = parse(PAYROLL_FILE)
    assert bag.dag_ids == [] and list(bag.import_errors) == ["acumatica_payroll.py"]
    assert (
        f"{bad}: payroll, tenant 'company': key 'hold': 'maybe' is not allowed (allowed: true, false)"
        in bag.import_errors["acumatica_payroll.py"]
    )


def test_the_io_guard_catches_socket_and_sqlite_connections(io_guard):
    import sqlalchemy

    with pytest.raises(ForbiddenIO), socket.socket() as sock:
        sock.connect(("127.0.0.1", 9))
    with pytest.raises(ForbiddenIO):
        sqlalchemy.create_engine("sqlite://").connect()
    assert io_guard == ["socket", "sqlite3"]
