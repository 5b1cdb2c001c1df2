"""The Airflow Assets of the warehouse tables: one per tenant and table, emitted as each load succeeds.

Airflow 3.3 cannot map ``outlets`` (``expand_kwargs`` refuses it: "unmappable argument"), and the
outlets of a mapped task's ``partial`` would mark every table updated whenever any one loads. So
each load task carries one AssetAlias per tenant, and a ``post_execute`` hook adds the event of the
table it loaded, with the load's summary as the event's extra. Airflow creates the table's Asset on
its first event; a downstream DAG simply schedules on ``Asset("acumatica://<tenant>/<table>")``.
The ``acumatica`` URI scheme needs no registration: Airflow keeps URIs of unknown schemes as given.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from airflow.sdk import Asset, AssetAlias

EVENT_EXTRA_KEYS = ("tenant", "table", "mode", "rows", "watermark", "window_start", "window_end")


def table_asset_uri(tenant: str, table: str) -> str:
    """``acumatica://<tenant>/<table>``: the warehouse table of one tenant's Acumatica table."""
    return f"acumatica://{tenant}/{quote(table, safe='')}"


def table_asset(tenant: str, table: str) -> Asset:
    """The Asset downstream DAGs schedule on."""
    return Asset(uri=table_asset_uri(tenant, table))


def tenant_alias(tenant: str) -> AssetAlias:
    """The alias a tenant's load tasks emit their table's Asset through."""
    return AssetAlias(name=f"acumatica://{tenant}")


def emit_table_asset(context: Mapping[str, Any], result: Mapping[str, Any] | None) -> None:
    """post_execute hook of the load task: record an event for the table it has just loaded."""
    if not result:
        return
    extra = {key: result.get(key) for key in EVENT_EXTRA_KEYS}
    asset = table_asset(str(result["tenant"]), str(result["table"]))
    context["outlet_events"][tenant_alias(str(result["tenant"]))].add(asset, extra=extra)
