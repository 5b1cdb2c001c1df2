"""An answer is read whole once, into bytes kept beside the response: the error it makes and the log lines it gives
come from those bytes (here a gateway's HTML 503, which is no JSON), against the sandbox over real HTTP."""

from __future__ import annotations

import logging

import pytest

from airflow_provider_acumatica.client.errors import AcumaticaApiError
from airflow_provider_acumatica.hooks.acumatica import AcumaticaHook


def test_an_html_error_answer_is_quoted_in_the_error_and_logged_at_verbosity_3(
    new_sandbox, acumatica_connection, caplog
):
    sandbox = new_sandbox(rows=5, tenants=("Company",))
    sandbox.control.inject_fault("503", count=1, path_contains="TimeEntry")
    caplog.set_level(logging.INFO)
    with AcumaticaHook(acumatica_connection(sandbox, max_retries=0, verbosity=3)) as hook:
        with pytest.raises(AcumaticaApiError) as failure:
            hook.get_entity_page("TimeEntry", top=5)
        assert len(hook.get_entity_page("TimeEntry", top=5)) == 5  # the next answer, read the same way
    assert failure.value.status == 503
    assert "<h1>Service Unavailable</h1>" in failure.value.message
    assert "response body: <html><body><h1>Service Unavailable</h1>" in caplog.text


def test_an_odata_error_body_gives_the_error_its_code_and_message(new_sandbox, acumatica_connection):
    """OData answers errors as {"error": {"code", "message"}} (v4), not as the REST API's flat message."""
    sandbox = new_sandbox(rows=5, tenants=("Company",))
    with AcumaticaHook(acumatica_connection(sandbox, max_retries=0)) as hook:
        with pytest.raises(AcumaticaApiError) as failure:
            hook.get_odata_page("PMTask", filter="NoSuchField eq 1", top=5)
    assert failure.value.status == 400
    assert failure.value.message == "BadRequest - $filter: unknown field 'NoSuchField'"  # not just "Bad Request"
