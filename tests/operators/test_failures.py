"""Which Acumatica errors fail a sync task without retries, and what their messages tell the user to do."""

from __future__ import annotations

import pytest
from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_acumatica.client.errors import AcumaticaApiError, AcumaticaAuthError, AcumaticaConfigError
from airflow_provider_acumatica.operators.failures import permanent_failure

WHERE = {
    "tenant": "company",
    "table": "UnionLocal",
    "timestamp_field": "LastModifiedDateTime",
    "endpoint": "Default/24.200.001",
}


def test_a_filter_on_a_missing_timestamp_says_to_set_timestamp_field_to_none():
    error = AcumaticaApiError(
        "GET",
        "/entity/Default/24.200.001/UnionLocal",
        400,
        "Invalid $filter: the field LastModifiedDateTime is not found",
    )
    failure = permanent_failure(error, **WHERE)
    assert isinstance(failure, AirflowFailException)
    assert "tenant 'company', table 'UnionLocal'" in str(failure)
    assert "None with mode full" in str(failure)


def test_refused_credentials_after_a_renewal_and_bad_settings_fail_at_once():
    refused = AcumaticaAuthError(
        "GET", "/entity/Default/24.200.001/Project", 401, "still not authorized after renewing"
    )
    assert "credentials" in str(permanent_failure(refused, **WHERE))
    config = AcumaticaConfigError("acumatica_company", "tenant", "missing", "Set it.")
    assert isinstance(permanent_failure(config, **WHERE), AirflowFailException)


def test_transient_answers_are_left_to_airflow_retries():
    for status in (None, 429, 500, 503):
        assert permanent_failure(AcumaticaApiError("GET", "/entity", status, "busy"), **WHERE) is None
    sign_in_500 = AcumaticaAuthError("POST", "/entity/auth/login", 500, "An error has occurred.", permanent=False)
    assert permanent_failure(sign_in_500, **WHERE) is None


def test_a_dac_missing_from_metadata_fails_at_once_naming_tenant_and_table(new_sandbox, acumatica_connection, tmp_path):
    """Against the sandbox: the DAC interface's $metadata has no such DAC, which no retry would change."""
    from airflow_provider_acumatica.operators.acumatica_to_sql import AcumaticaToSqlOperator

    conn_id = acumatica_connection(new_sandbox(rows=20))
    operator = AcumaticaToSqlOperator(
        task_id="sync", table="PMTaskk", source="dac", acumatica_conn_id=conn_id, sql_url=f"sqlite:///{tmp_path}/w.db"
    )
    with pytest.raises(AirflowFailException) as failure:
        operator.execute(context={})
    message = str(failure.value)
    assert message.startswith("Acumatica tenant 'Company', table 'PMTaskk': the DAC OData interface has no 'PMTaskk'")
