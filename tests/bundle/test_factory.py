"""DAG factory: one DAG per tenant (plus one per extra schedule), task groups, mapping, pools, params, assets."""

from __future__ import annotations

import copy
import datetime
import textwrap

import pytest
from airflow.sdk import AssetAlias, CronDataIntervalTimetable

from airflow_provider_acumatica.bundle.assets import emit_table_asset
from airflow_provider_acumatica.bundle.config import load_config
from airflow_provider_acumatica.bundle.factory import build_dags, schedule_slug, table_kwargs

CONFIG = """
defaults: {owner: data-team, retries: 4, retry_delay: 60, warehouse_conn_id: wh, timezone: Europe/Paris}
tenants:
  - name: company
    acumatica_conn_id: acumatica_company
    pool_slots: 5
    target_schema: erp
    tables:
      - construction
      - {name: TimeEntry, schedule: "*/15 * * * *"}
      - {name: ProjectTransaction, schedule: "*/15 * * * *", key_fields: [TranID]}
      - {name: PMTask, source: dac, mode: incremental, track_deletes: true}
  - {name: subsidiary, acumatica_conn_id: acumatica_subsidiary, requests_per_task: 1,
     tables: [{name: Vendor, mode: full}]}
"""


@pytest.fixture(scope="module")
def dags(tmp_path_factory):
    path = tmp_path_factory.mktemp("config") / "acumatica.yaml"
    path.write_text(textwrap.dedent(CONFIG), encoding="utf-8")
    return build_dags(load_config(path))


def mapped_tables(dag, group):
    """Table names a group's plan task hands to its mapped load task (before the run's filter)."""
    return [kwargs["table"] for kwargs in dag.task_dict[f"{group}.plan"].op_args[0]]


def test_one_dag_per_tenant_and_one_per_extra_schedule(dags):
    assert sorted(dags) == [
        "acumatica_sync__company",
        "acumatica_sync__company__x-15_x_x_x_x",
        "acumatica_sync__subsidiary",
    ]
    frequent = dags["acumatica_sync__company__x-15_x_x_x_x"]
    assert mapped_tables(frequent, "incremental") == ["TimeEntry", "ProjectTransaction"]
    assert "full.load" not in frequent.task_dict
    assert "TimeEntry" not in mapped_tables(dags["acumatica_sync__company"], "incremental")


def test_dag_settings(dags):
    dag = dags["acumatica_sync__company"]
    assert isinstance(dag.timetable, CronDataIntervalTimetable)
    assert dag.timetable.expression == "0 * * * *" and str(dag.timetable.timezone) == "Europe/Paris"
    assert dag.catchup is False and dag.max_active_runs == 1
    assert dag.default_args == {"owner": "data-team", "retries": 4, "retry_delay": datetime.timedelta(seconds=60)}
    assert dag.tags == {"acumatica", "tenant:company"}
    assert (
        "pool `acumatica_company` (5 slots, 5 per load task)" in dag.doc_md
        and "acumatica://company/Project" in dag.doc_md
    )


def test_groups_each_hold_a_plan_and_one_mapped_load(dags):
    dag = dags["acumatica_sync__company"]
    assert sorted(dag.task_dict) == ["full.load", "full.plan", "incremental.load", "incremental.plan"]
    assert mapped_tables(dag, "full") == ["UnionLocal", "LaborCostRate"]
    assert mapped_tables(dag, "incremental")[0] == "Project" and "PMTask" in mapped_tables(dag, "incremental")
    for group in ("incremental", "full"):
        load = dag.task_dict[f"{group}.load"]
        assert load.upstream_task_ids == {f"{group}.plan"}
        assert type(load).__name__ == "MappedOperator" and load.operator_class.__name__ == "AcumaticaToSqlOperator"


def test_load_tasks_share_the_tenant_pool_a_slot_per_request_and_carry_the_connections(dags):
    load = dags["acumatica_sync__company__x-15_x_x_x_x"].task_dict["incremental.load"]
    partial = load.partial_kwargs
    assert (partial["pool"], partial["pool_slots"], partial["max_concurrent_requests"]) == ("acumatica_company", 5, 5)
    subsidiary = dags["acumatica_sync__subsidiary"].task_dict["full.load"].partial_kwargs
    assert (subsidiary["pool_slots"], subsidiary["max_concurrent_requests"]) == (1, 1)  # 3 tables at once, 1 each
    assert (partial["acumatica_conn_id"], partial["sql_conn_id"]) == ("acumatica_company", "wh")
    assert (partial["tenant"], partial["target_schema"]) == ("company", "erp")
    assert partial["map_index_template"] == "{{ task.table }}"
    assert partial["outlets"] == [AssetAlias(name="acumatica://company")]
    assert partial["post_execute"] is emit_table_asset


def test_table_kwargs_carry_only_what_the_config_sets(dags):
    frequent = dags["acumatica_sync__company__x-15_x_x_x_x"].task_dict["incremental.plan"].op_args[0]
    config_tables = {kwargs["table"]: kwargs for kwargs in frequent}
    assert config_tables["ProjectTransaction"] == {
        "table": "ProjectTransaction",
        "source": "entity",
        "mode": "incremental",
        "timestamp_field": "LastModifiedDateTime",
        "time_offset": 300,
        "batch_size": 2000,
        "key_fields": ["TranID"],
    }
    hourly = dags["acumatica_sync__company"].task_dict["incremental.plan"].op_args[0]
    pm_task = next(kwargs for kwargs in hourly if kwargs["table"] == "PMTask")
    assert pm_task["source"] == "dac" and pm_task["track_deletes"] is True


def test_trigger_form_offers_the_dags_tables(dags):
    params = dags["acumatica_sync__subsidiary"].params
    tables = params.get_param("tables")
    assert tables.schema["items"] == {"type": "string", "enum": ["Vendor"]}
    assert tables.schema["examples"] == ["Vendor"] and tables.value == []
    assert params["full_refresh"] is False
    for window in ("window_start", "window_end"):
        param = params.get_param(window)
        assert param.value is None
        assert (param.schema["type"], param.schema["format"]) == (["null", "string"], "date-time")


def test_trigger_form_refuses_a_table_of_another_dag(dags):
    from airflow.sdk.exceptions import ParamValidationError

    params = copy.deepcopy(dags["acumatica_sync__subsidiary"].params)
    params["tables"] = ["Vendor"]
    assert params.validate()["tables"] == ["Vendor"]
    with pytest.raises(ParamValidationError, match="'Project' is not one of \\['Vendor'\\]"):
        params["tables"] = ["Project"]


@pytest.mark.parametrize(
    ("schedule", "slug"),
    [
        ("*/15 * * * *", "x-15_x_x_x_x"),
        ("0 6 * * 1-5", "0_6_x_x_1-5"),
        ("@daily", "daily"),
        ("0 0,12 * * *", "0_0.12_x_x_x"),
    ],
)
def test_schedule_slug(schedule, slug):
    assert schedule_slug(schedule) == slug


def test_full_table_without_configured_timestamp_passes_none():
    from airflow_provider_acumatica.bundle.config import TableConfig

    kwargs = table_kwargs(TableConfig(name="UnionLocal", mode="full", schedule="@hourly", time_offset=0, batch_size=1))
    assert kwargs["timestamp_field"] is None and "key_fields" not in kwargs
