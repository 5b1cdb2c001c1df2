"""Permanent Acumatica errors of a sync task, turned into a failure without retries that says what to change.

A 404 (an entity the endpoint does not serve), a 400 (a query the instance refuses), a 401 after a renewal, a 403
or a 422 would be answered the same way on every retry: Airflow's retries (minutes apart, by default twice) only
delay the failure and hold a pool slot. `AirflowFailException` fails the task at once; the tenant's other tables,
each its own task, go on.
"""

from __future__ import annotations

from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_acumatica.client.errors import (
    AcumaticaApiError,
    AcumaticaConfigError,
    AcumaticaError,
    AcumaticaUnknownTableError,
)


def permanent_failure(
    error: AcumaticaError, *, tenant: str, table: str, timestamp_field: str | None, endpoint: str
) -> AirflowFailException | None:
    """The failure to raise instead of `error` when retrying cannot help, naming tenant, table and the fix; else None.

    `endpoint` is the connection's ``name/version`` the table was read from.
    """
    where = f"Acumatica tenant {tenant!r}, table {table!r}"
    if isinstance(error, (AcumaticaConfigError, AcumaticaUnknownTableError)):
        return AirflowFailException(f"{where}: {error}")
    if not isinstance(error, AcumaticaApiError) or not error.permanent:
        return None
    fix = _fix(error, table=table, timestamp_field=timestamp_field, endpoint=endpoint)
    return AirflowFailException(f"{where}: {error} -- not retried, the same request would be refused again. {fix}")


def _fix(error: AcumaticaApiError, *, table: str, timestamp_field: str | None, endpoint: str) -> str:
    status = error.status
    if status == 404:
        return (
            f"Fix: check the table name {table!r} (entities are case-sensitive) and the connection's "
            f"endpoint_name/endpoint_version ({endpoint}): a customer's extended endpoint may serve it; otherwise "
            "this instance does not have it (a feature not enabled, another version): disable the table in the "
            "bundle config (`enabled: false`)."
        )
    if status == 400 and timestamp_field and timestamp_field in error.message:
        return (
            f"Fix: if {table!r} has no field {timestamp_field!r}, set timestamp_field to the table's modification "
            "timestamp, or to None with mode full (the table is then reloaded whole on each run)."
        )
    if status == 400:
        return (
            f"Fix: check the fields named for {table!r} (timestamp_field, key_fields, expand): Acumatica refused "
            "the query."
        )
    if status in (401, 403) or error.path.startswith(("/entity/auth", "/identity")):
        return (
            "Fix: check the connection's credentials and the API user's rights to this table (for OAuth, "
            "re-authorize with `python -m airflow_provider_acumatica.hooks.connect`)."
        )
    return "Fix: correct what Acumatica names above, then clear the task."
