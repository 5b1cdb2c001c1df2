"""Writes: records in Acumatica's `{"value": ...}` form, which failures are retried, long-running actions waited for."""

from __future__ import annotations

import datetime
import decimal
from collections.abc import Mapping
from typing import Any

import tenacity

from airflow_provider_acumatica.client.errors import AcumaticaApiError
from airflow_provider_acumatica.client.settings import AcumaticaSettings
from airflow_provider_acumatica.client.transport import Authenticator, Transport
from airflow_provider_acumatica.utils.retry import RetryPolicy

PUT_MODES = {"upsert": {}, "insert": {"If-None-Match": "*"}, "update": {"If-Match": "*"}}


def wrap_record(record: Mapping[str, Any]) -> dict[str, Any]:
    """Plain values to Acumatica's `{"value": ...}` form; details (lists of dicts) and `custom` included."""
    wrapped: dict[str, Any] = {}
    for name, value in record.items():
        if name in ("id", "rowNumber", "delete"):
            wrapped[name] = value
        elif name == "custom" and isinstance(value, Mapping):
            wrapped["custom"] = _wrap_custom(value)
        elif isinstance(value, list):
            wrapped[name] = [wrap_record(item) for item in value]
        elif isinstance(value, Mapping):
            wrapped[name] = dict(value)  # already in {"value": ...} form
        else:
            wrapped[name] = {"value": _json_value(value)}
    return wrapped


_CUSTOM_TYPES = (
    (bool, "CustomBooleanField"),
    (int, "CustomIntField"),
    (float, "CustomDecimalField"),
    (decimal.Decimal, "CustomDecimalField"),
    (datetime.datetime, "CustomDateTimeField"),
)


def _wrap_custom(custom: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    views: dict[str, dict[str, Any]] = {}
    for dotted, value in custom.items():
        view, _, field = dotted.partition(".")
        if not field:
            raise ValueError(f"custom field {dotted!r} must be named 'View.Field', as $custom names it")
        kind = next((name for type_, name in _CUSTOM_TYPES if isinstance(value, type_)), "CustomStringField")
        views.setdefault(view, {})[field] = {"type": kind, "value": _json_value(value)}
    return views


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime.datetime):
        return value.isoformat(timespec="milliseconds")
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    return value


def write_retryable(status: int | None, message: str) -> bool:
    """Writes are retried only where the server surely did nothing: a throttled request (429). A 503 may come
    from a gateway after the instance saved the record, so the caller resolves it (e.g. by a look-up)."""
    return status == 429


def _status_retryable(status: int | None, message: str) -> bool:
    """A status check is a read, retried when no answer came or the server was busy; but its 500 is the action's
    failure, which another look would only repeat."""
    return status is None or status in (429, 503)


def action_status_path(action_path: str, location: str | None) -> str:
    """Where to poll a long-running action, under the instance URL: its `Location` from `/entity/` on.

    Acumatica puts the site before `/entity/` (`/AcumaticaERP/entity/...` on an instance in a virtual directory,
    or a whole URL), which the instance URL already holds; and only a path under the instance is ever polled, so
    credentials never go to another host.
    """
    at = (location or "").lower().find("/entity/")
    if at < 0:
        raise AcumaticaApiError(
            "POST",
            action_path,
            202,
            f"long-running action answered without a status Location "
            f"under /entity/ ({location!r}): its outcome is unknown; check it in Acumatica",
        )
    return location[at:]


def wait_for_action(transport: Transport, authenticator: Authenticator, settings: AcumaticaSettings, path: str) -> None:
    """Poll a long-running action's status at `path` until it is no longer 202 (done: 204; failed: its error
    raised), backing off from `backoff_seconds` to 10 s between polls, for `retry_max_seconds` in all."""
    polls = RetryPolicy(None, settings.retry_max_seconds, max(settings.backoff_seconds, 0.05), 10.0, jitter=False)
    retrying = polls.retrying(tenacity.retry_if_result(lambda reply: reply.status == 202))
    try:
        retrying(transport.request, "GET", path, authenticator=authenticator, decode=None, retryable=_status_retryable)
    except tenacity.RetryError:
        raise AcumaticaApiError("GET", path, 202, "long-running action still running at the retry time limit") from None
