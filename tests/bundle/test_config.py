"""Config parsing: how tenants and tables resolve; one test per kind of mistake, with its exact message."""

from __future__ import annotations

import re
import textwrap

import pytest

from airflow_provider_acumatica.bundle.catalog import CATALOGS
from airflow_provider_acumatica.bundle.config import ConfigError, load_config
from airflow_provider_acumatica.client.limits import PAGE_SIZES, SOURCES
from airflow_provider_acumatica.extract.plan import MODES, TIME_OFFSETS
from airflow_provider_acumatica.operators.acumatica_to_sql import AcumaticaToSqlOperator

TENANT = "{name: company, acumatica_conn_id: acumatica_company, tables: construction}"


def write_config(tmp_path, text: str):
    path = tmp_path / "acumatica.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def config_error(tmp_path, text: str) -> str:
    path = write_config(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: "), message
    return message[len(f"{path}: ") :]


# ---- resolution -------------------------------------------------------------------------------


def test_catalog_tenant_gets_every_catalog_table_with_inherited_settings(tmp_path):
    config = load_config(
        write_config(
            tmp_path,
            f"""
            defaults: {{schedule: "*/30 * * * *", time_offset: 120, batch_size: 500, warehouse_conn_id: wh}}
            tenants: [{TENANT}]
            """,
        )
    )
    (tenant,) = config.tenants
    assert [table.name for table in tenant.tables] == [entry["name"] for entry in CATALOGS["construction"]]
    assert tenant.warehouse_conn_id == "wh" and tenant.pool == "acumatica_company" and tenant.pool_slots == 3
    project = tenant.tables[0]
    assert (project.schedule, project.time_offset, project.batch_size) == ("*/30 * * * *", 120, 500)
    assert project.expand == ("Tasks",) and project.key_fields is None
    assert project.timestamp_field == "LastModifiedDateTime"
    union_local = next(table for table in tenant.tables if table.name == "UnionLocal")
    assert union_local.mode == "full" and union_local.timestamp_field is None


def test_overrides_apply_in_order_catalog_then_top_level_then_tenant(tmp_path):
    config = load_config(
        write_config(
            tmp_path,
            """
            tenants:
              - name: company
                acumatica_conn_id: acumatica_company
                time_offset: 60
                tables:
                  - construction
                  - {name: TimeEntry, batch_size: 100}
                  - {name: PMTask, source: dac, mode: incremental, track_deletes: true}
              - {name: subsidiary, acumatica_conn_id: acumatica_subsidiary, tables: construction}
            tables:
              - {name: TimeEntry, batch_size: 900, schedule: "*/15 * * * *"}
              - {name: ProjectBudget, enabled: false}
            """,
        )
    )
    company, subsidiary = config.tenants
    company_tables = {table.name: table for table in company.tables}
    assert "ProjectBudget" not in company_tables and "ProjectBudget" not in {t.name for t in subsidiary.tables}
    time_entry = company_tables["TimeEntry"]
    assert (time_entry.batch_size, time_entry.schedule, time_entry.time_offset) == (100, "*/15 * * * *", 60)
    assert next(t for t in subsidiary.tables if t.name == "TimeEntry").batch_size == 900
    pm_task = company_tables["PMTask"]
    assert (pm_task.source, pm_task.mode, pm_task.track_deletes) == ("dac", "incremental", True)


def test_tenant_with_only_a_list_of_tables(tmp_path):
    config = load_config(
        write_config(
            tmp_path,
            """
            tenants:
              - name: east
                acumatica_conn_id: acumatica_east
                tables: [{name: Vendor, mode: full, key_fields: [VendorID]}]
            """,
        )
    )
    (vendor,) = config.tenants[0].tables
    assert (vendor.name, vendor.mode, vendor.key_fields) == ("Vendor", "full", ("VendorID",))


# ---- one test per kind of mistake ---------------------------------------------------------------


def test_unknown_top_level_key(tmp_path):
    message = config_error(tmp_path, f"tenant: []\ntenants: [{TENANT}]\n")
    assert message == "unknown top-level key 'tenant' (allowed: defaults, tenants, tables); did you mean 'tenants'?"


def test_unknown_tenant_key(tmp_path):
    message = config_error(
        tmp_path, "tenants: [{name: company, acumatica_conn_id: a, tables: construction, pool_size: 3}]\n"
    )
    assert message.startswith("tenant 'company': unknown key 'pool_size' (allowed: name, acumatica_conn_id, tables, ")
    assert message.endswith("; did you mean 'pool_slots'?")


def test_unknown_table_key(tmp_path):
    message = config_error(
        tmp_path,
        """
        tenants:
          - {name: company, acumatica_conn_id: a, tables: [construction, {name: Project, modee: full}]}
        """,
    )
    assert message.startswith("tenant 'company', table 'Project': unknown key 'modee' (allowed: name, mode, source, ")
    assert message.endswith("; did you mean 'mode'?")


def test_unknown_key_in_top_level_tables_names_the_section(tmp_path):
    message = config_error(tmp_path, f"tenants: [{TENANT}]\ntables: [{{name: Project, expnd: [Tasks]}}]\n")
    assert message.startswith("top-level tables, table 'Project': unknown key 'expnd' (allowed: ")


def test_unknown_mode(tmp_path):
    message = config_error(
        tmp_path, "tenants: [{name: company, acumatica_conn_id: a, tables: [{name: Vendor, mode: delta}]}]\n"
    )
    assert (
        message == "tenant 'company', table 'Vendor': key 'mode': 'delta' is not allowed (allowed: incremental, full)"
    )


def test_unknown_source(tmp_path):
    message = config_error(
        tmp_path,
        "tenants: [{name: company, acumatica_conn_id: a, tables: [{name: V, mode: full, source: soap}]}]\n",
    )
    assert message == "tenant 'company', table 'V': key 'source': 'soap' is not allowed (allowed: entity, dac, gi)"


@pytest.mark.parametrize("offset", [-1, 3601, "5m"])
def test_time_offset_out_of_range(tmp_path, offset):
    message = config_error(tmp_path, f"defaults: {{time_offset: {offset}}}\ntenants: [{TENANT}]\n")
    assert message == (
        f"defaults: key 'time_offset': {offset!r} is not allowed (allowed: an integer from 0 to 3600 seconds)"
    )


@pytest.mark.parametrize("batch_size", [0, 10001, 2.5, True])
def test_bad_batch_size(tmp_path, batch_size):
    yaml_value = "true" if batch_size is True else batch_size
    message = config_error(
        tmp_path,
        f"tenants: [{{name: company, acumatica_conn_id: a, tables: [{{name: TimeEntry, mode: incremental, "
        f"batch_size: {yaml_value}}}]}}]\n",
    )
    assert message == (
        f"tenant 'company', table 'TimeEntry': key 'batch_size': {batch_size!r} is not allowed "
        "(allowed: an integer from 1 to 10000 rows)"
    )


def test_duplicate_tenant(tmp_path):
    other = "{name: other, acumatica_conn_id: b, tables: construction}"
    message = config_error(tmp_path, f"tenants: [{TENANT}, {other}, {TENANT}]\n")
    assert message == "tenant 'company': defined twice (tenants #1 and #3); tenant names must be unique"


@pytest.mark.parametrize("name", ["my company", "company-east", "east__west", "1st", "_x"])
def test_tenant_name_not_usable_in_a_dag_id(tmp_path, name):
    message = config_error(tmp_path, f"tenants: [{{name: '{name}', acumatica_conn_id: a, tables: construction}}]\n")
    assert message.startswith(f"tenant '{name}': key 'name': '{name}' cannot be used in a DAG id (allowed: a letter")


def test_missing_acumatica_conn_id(tmp_path):
    message = config_error(tmp_path, "tenants: [{name: company, tables: construction}]\n")
    assert message == (
        "tenant 'company': missing key 'acumatica_conn_id' (the Airflow connection to this tenant's Acumatica instance)"
    )


def test_unknown_catalog(tmp_path):
    message = config_error(tmp_path, "tenants: [{name: company, acumatica_conn_id: a, tables: constructon}]\n")
    assert message == "tenant 'company': key 'tables': unknown catalog 'constructon' (allowed: construction)"


def test_override_of_a_table_that_exists_nowhere(tmp_path):
    message = config_error(tmp_path, f"tenants: [{TENANT}]\ntables: [{{name: Projet, batch_size: 10}}]\n")
    assert message.startswith(
        "top-level tables, tenant 'company', table 'Projet': overrides a table that is not in catalog "
        "construction (known: Project, ProjectTask,"
    )
    assert message.endswith("check the spelling, or give 'mode' to add it as a new table")


@pytest.mark.parametrize("schedule", ["61 * * * *", "every hour", "@once"])
def test_bad_cron(tmp_path, schedule):
    message = config_error(
        tmp_path,
        f"tenants: [{{name: company, acumatica_conn_id: a, tables: [construction, "
        f"{{name: TimeEntry, schedule: '{schedule}'}}]}}]\n",
    )
    assert message.startswith(f"tenant 'company', table 'TimeEntry': key 'schedule': '{schedule}' ")
    assert message.endswith('(allowed: a cron expression like "0 * * * *" or a preset like @hourly, @daily)')


def test_expand_on_an_odata_source(tmp_path):
    message = config_error(
        tmp_path,
        "tenants: [{name: c, acumatica_conn_id: a, tables: [{name: PMTask, mode: full, source: dac, expand: [X]}]}]\n",
    )
    assert message == "tenant 'c', table 'PMTask': key 'expand' works only with source entity (REST), not 'dac'"


def test_same_table_twice_in_one_list(tmp_path):
    message = config_error(tmp_path, f"tenants: [{TENANT}]\ntables: [{{name: Vendor}}, {{name: Vendor}}]\n")
    assert message == "top-level tables, table 'Vendor': appears twice in the same list; merge the two entries"


def test_no_enabled_table(tmp_path):
    message = config_error(
        tmp_path, "tenants: [{name: c, acumatica_conn_id: a, tables: [{name: V, mode: full, enabled: false}]}]\n"
    )
    assert message == "tenant 'c': has no enabled tables (allowed: tables: construction, or a list of table entries)"


def test_not_yaml(tmp_path):
    message = config_error(tmp_path, "tenants: [unclosed\n")
    assert re.match(r"not valid YAML: ", message)


@pytest.mark.parametrize(
    ("key", "allowed"),
    [("time_offset", TIME_OFFSETS), ("batch_size", PAGE_SIZES)],
)
def test_the_config_and_the_operator_allow_the_same_values(tmp_path, key, allowed):
    """The DAGs pass a table's settings to the operator: a value one of them refuses, the other refuses too."""

    def operator(value):
        return AcumaticaToSqlOperator(task_id="t", table="Project", sql_url="sqlite://", **{key: value})

    for value in (allowed.low, allowed.high):
        path = write_config(tmp_path, f"defaults: {{{key}: {value}}}\ntenants: [{TENANT}]\n")
        assert getattr(load_config(path).tenants[0].tables[0], key) == value
        assert getattr(operator(value), key) == value
    for value in (allowed.low - 1, allowed.high + 1):
        assert f"key '{key}': {value} is not allowed" in config_error(
            tmp_path, f"defaults: {{{key}: {value}}}\ntenants: [{TENANT}]\n"
        )
        with pytest.raises(ValueError, match=f"`{key}` is {value}"):
            operator(value)


@pytest.mark.parametrize(("mode", "source"), [(mode, source) for mode in MODES for source in SOURCES])
def test_every_mode_and_source_the_config_allows_the_operator_allows(tmp_path, mode, source):
    entry = f"{{name: T, mode: {mode}, source: {source}}}"
    path = write_config(tmp_path, f"tenants: [{{name: c, acumatica_conn_id: a, tables: [{entry}]}}]\n")
    (table,) = load_config(path).tenants[0].tables
    operator = AcumaticaToSqlOperator(
        task_id="t", table=table.name, sql_url="sqlite://", mode=table.mode, source=table.source
    )
    assert (operator.mode, operator.source) == (mode, source)
