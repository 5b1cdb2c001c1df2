"""A table the instance does not serve fails its task once, at once, saying which table and what to do, while
the tenant's other tables in the same DAG run load; the DAG runs through Airflow (dag.test) against the sandbox."""

from __future__ import annotations

import pytest
from test_sync_end_to_end import assert_like_truth, parsed_dag

pytestmark = pytest.mark.slow

CONFIG = """
defaults: {owner: tests, retries: 2, retry_delay: 0}
tenants:
  - name: company
    acumatica_conn_id: acumatica_company
    tables: [{name: Project, mode: incremental}, {name: UnionLocal, mode: full},
             {name: ProjectBudgets, mode: full}]
"""


def test_a_table_answered_404_fails_once_naming_it_while_the_other_tables_load(
    airflow_db, sandbox, sync_config, connections, tmp_path, capfd
):
    url = f"sqlite:///{tmp_path / 'warehouse.db'}"
    sync_config(CONFIG)
    connections(sandbox, url)

    run = parsed_dag("acumatica_sync__company").test()

    tries = {
        ti.rendered_map_index: (ti.state, ti.try_number)
        for ti in run.get_task_instances()
        if ti.task_id.endswith(".load")
    }
    # retries: 2 with no delay: a retried task would have reached try 3 before the run ended
    assert tries == {"Project": ("success", 1), "UnionLocal": ("success", 1), "ProjectBudgets": ("failed", 1)}
    assert run.state == "failed"
    assert_like_truth(sandbox, url, None, "company", tables=("Project", "UnionLocal"))
    # the task log (Airflow's structlog writes it to the output here) holds the failure as raised
    failures = [
        line
        for line in capfd.readouterr().out.splitlines()
        if line.startswith("airflow.sdk.exceptions.AirflowFailException")
    ]
    assert len(failures) == 1, failures
    assert "tenant 'company', table 'ProjectBudgets'" in failures[0] and "HTTP 404" in failures[0]
    assert "enabled: false" in failures[0]
