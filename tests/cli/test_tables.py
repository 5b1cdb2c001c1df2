"""`airflow-acumatica tables` against the sandbox's swagger.json over real HTTP."""

from __future__ import annotations

import io
import textwrap

from airflow_provider_acumatica.cli.main import main


def _tables(conn_id: str, *argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = main(["tables", "--conn-id", conn_id, *argv], stdin=io.StringIO(), stdout=out, stderr=err)
    return status, out.getvalue(), err.getvalue()


def _line(out: str, entity: str) -> str:
    return next(line for line in out.splitlines() if line.split()[:1] == [entity])


def test_entities_with_key_and_timestamp(new_sandbox, acumatica_connection):
    status, out, err = _tables(acumatica_connection(new_sandbox(rows=5)))
    assert (status, err) == (0, "")
    assert out.startswith("Endpoint Default 24.200.001:")
    assert "key id  timestamp LastModifiedDateTime" in _line(out, "Project")
    assert "timestamp (none: full reloads)" in _line(out, "UnionLocal")


def test_the_configs_tables_are_marked_served_or_missing(new_sandbox, acumatica_connection, tmp_path):
    conn_id = acumatica_connection(new_sandbox(rows=5))
    config = tmp_path / "acumatica.yaml"
    config.write_text(
        textwrap.dedent(f"""\
        tenants:
          - name: company
            acumatica_conn_id: {conn_id}
            tables:
              - construction
              - {{name: ProjectBudgetExt, mode: incremental}}
              - {{name: PMTask, source: dac, mode: incremental}}
        """)
    )
    status, out, _ = _tables(conn_id, "--config", str(config))
    assert status == 1
    assert "  Project: served" in out and "  UnionLocal: served" in out
    assert "  ProjectBudgetExt: MISSING: this endpoint has no entity ProjectBudgetExt" in out
    assert "  PMTask: dac over OData, not described by swagger.json" in out
    assert "1 table(s) of the config cannot be synced" in out


def test_swagger_json_unavailable_is_said_plainly(new_sandbox, acumatica_connection):
    status, _, err = _tables(acumatica_connection(new_sandbox(rows=5), endpoint_name="CompanyExt"))
    assert status == 1
    assert err.startswith("swagger.json unavailable: /entity/CompanyExt/24.200.001/swagger.json")
