"""OData v4: the DAC interface (/t/{Tenant}/api/odata/dac/{DAC}, $metadata CSDL, px.GetDeletedRecords()
for tracked DACs) and one generic inquiry (/t/{Tenant}/api/odata/gi/{GI}), over the REST entities' tables."""

from __future__ import annotations

import base64
import re
from typing import TYPE_CHECKING
from xml.sax.saxutils import quoteattr

from airflow_provider_acumatica.sandbox.catalog import DACS, GI_VIEW, DacView
from airflow_provider_acumatica.sandbox.errors import ApiError
from airflow_provider_acumatica.sandbox.odata_filter import FilterError, compile_filter
from airflow_provider_acumatica.sandbox.queries import page_of
from airflow_provider_acumatica.sandbox.responses import Response, json_response
from airflow_provider_acumatica.sandbox.settings import SANDBOX_PASSWORD, SANDBOX_USER

if TYPE_CHECKING:
    from airflow_provider_acumatica.sandbox.app import SandboxApp

_PATH = re.compile(r"^/t/([^/]+)/api/odata/(dac|gi)/([^/]+)(?:/(px\.GetDeletedRecords\(\)))?$")
_NAMESPACE = "PX.Objects"
_UNSUPPORTED = ("$expand", "$count", "$apply", "$search")


def is_odata(path: str) -> bool:
    return path.startswith("/t/")


class ODataApi:
    """Answers DAC and GI requests; authentication by Basic, bearer token or cookie session."""

    def __init__(self, app: SandboxApp) -> None:
        self.app = app

    def route(self, method: str, path: str, params: dict, headers, base_url: str) -> Response:
        match = _PATH.match(path)
        if match is None or method != "GET":
            raise ApiError(404, f"The OData resource {method} {path} is not found.")
        tenant_in_url, kind, name, deleted = match.groups()
        tenant = self.app.settings.tenant_named(tenant_in_url)
        if tenant is None:
            raise ApiError(404, f"The tenant {tenant_in_url!r} is not found.")
        if self.app.tenant_of(headers, tenant, self._basic) != tenant:
            raise ApiError(401, f"The credentials are not valid for the tenant {tenant!r}.")
        views = DACS if kind == "dac" else {GI_VIEW.name: GI_VIEW}
        root = f"{base_url}/t/{tenant}/api/odata/{kind}"
        if name == "$metadata":
            return Response(200, metadata(views.values(), kind == "dac").encode(), "application/xml")
        view = views.get(name)
        if view is None:
            raise ApiError(404, f"The {'DAC' if kind == 'dac' else 'generic inquiry'} {name!r} is not exposed; "
                                f"available: {', '.join(sorted(views))}")
        for option in _UNSUPPORTED:
            if option in params:
                raise ApiError(400, f"The query option {option} is not supported here.")
        if deleted:
            return json_response({"@odata.context": f"{root}/$metadata#DeletedRecords",
                                  "value": self._deleted(tenant, view, params)})
        return json_response({"@odata.context": f"{root}/$metadata#{name}", "value": self._rows(tenant, view, params)})

    def _basic(self, credentials: str, url_tenant: str | None) -> str | None:
        try:
            user, _, password = base64.b64decode(credentials).decode().partition(":")
        except ValueError:
            return None
        name, _, tenant = user.partition("@")
        if name != SANDBOX_USER or password != SANDBOX_PASSWORD:
            return None
        return self.app.settings.tenant_named(tenant) if tenant else url_tenant

    def _rows(self, tenant: str, view: DacView, params: dict) -> list[dict]:
        table = self.app.store.table(tenant, view.entity)
        try:
            rows = self.app.queries.matching(table, "v4", params.get("$filter", ""), view)
        except FilterError as error:
            raise ApiError(400, str(error)) from None
        getters = {name: (self.app.queries.view_getter(table, source), table.spec.field_types.get(source, _kind(edm)))
                   for name, edm, source in view.fields}
        selected = [part.strip() for part in params.get("$select", "").split(",") if part.strip()] or list(getters)
        unknown = [name for name in selected if name not in getters]
        if unknown:
            raise ApiError(400, f"$select: {view.name} has no field(s) {unknown}")
        order = _order(params.get("$orderby", ""), view, getters)
        for name, descending in reversed(order):
            getter = getters[name][0]
            rows = sorted(rows, key=lambda row: _sort_key(getter(row)), reverse=descending)
        skip, top = _count(params, "$skip") or 0, _count(params, "$top")
        page = page_of(rows, skip, top, self.app.settings.max_page_size)
        wire = self.app.codec.wire
        return [{name: wire(getters[name][1], getters[name][0](row)) for name in selected} for row in page]

    def _deleted(self, tenant: str, view: DacView, params: dict) -> list[dict]:
        if not view.tracked:
            raise ApiError(400, f"Deleted records are not tracked for {view.name}; an administrator must enable tracking.")
        table = self.app.store.table(tenant, view.entity)
        fields = {"RefNoteID": (lambda item: item[0], "guid"), "DeleteDate": (lambda item: item[1], "dt")}
        try:
            predicate = compile_filter(params.get("$filter", ""), "v4", fields.__getitem__, self.app.codec)
        except FilterError as error:
            raise ApiError(400, str(error)) from None
        codec = self.app.codec
        matching = [item for item in list(table.deletions) if predicate(item)]
        skip, top = _count(params, "$skip") or 0, _count(params, "$top")
        return [{"RefNoteID": row_id, "DeleteDate": codec.datetime_text(moment)}
                for row_id, moment in page_of(matching, skip, top, self.app.settings.max_page_size)]


def _kind(edm: str) -> str:
    return {"Edm.Int32": "int", "Edm.Boolean": "bool", "Edm.Guid": "guid", "Edm.DateTimeOffset": "dt"}.get(edm, "str")


def _sort_key(value):
    return (value is not None, value.casefold() if isinstance(value, str) else value)


def _order(text: str, view: DacView, getters: dict) -> list[tuple[str, bool]]:
    """$orderby terms (field, descending); the default is the DAC's key order."""
    if not text.strip():
        return [(key, False) for key in view.keys]
    order = []
    for term in text.split(","):
        parts = term.split()
        if not parts or parts[0] not in getters or len(parts) > 2 or (len(parts) == 2 and parts[1] not in ("asc", "desc")):
            raise ApiError(400, f"$orderby: cannot order {view.name} by {term.strip()!r}")
        order.append((parts[0], len(parts) == 2 and parts[1] == "desc"))
    return order


def _count(params: dict, name: str) -> int | None:
    if name not in params:
        return None
    if not params[name].isdigit():
        raise ApiError(400, f"{name} must be a whole number >= 0, got {params[name]!r}")
    return int(params[name])


def metadata(views, with_deleted_function: bool) -> str:
    """A CSDL document: one EntityType (keys, Edm types) and EntitySet per view."""
    types, sets = [], []
    for view in views:
        keys = "".join(f"<PropertyRef Name={quoteattr(key)}/>" for key in view.keys)
        properties = "".join(
            f"<Property Name={quoteattr(name)} Type={quoteattr(edm)} Nullable={quoteattr(str(name not in view.keys).lower())}/>"
            for name, edm, _ in view.fields
        )
        types.append(f"<EntityType Name={quoteattr(view.name)}>{f'<Key>{keys}</Key>' if keys else ''}{properties}</EntityType>")
        sets.append(f"<EntitySet Name={quoteattr(view.name)} EntityType={quoteattr(f'{_NAMESPACE}.{view.name}')}/>")
        if with_deleted_function and view.tracked:
            types.append(
                f'<Function Name="GetDeletedRecords" IsBound="true"><Parameter Name="bindingParameter" '
                f'Type="Collection({_NAMESPACE}.{view.name})"/><ReturnType Type="Collection({_NAMESPACE}.DeletedRecord)"/></Function>'
            )
    if with_deleted_function:
        types.append('<EntityType Name="DeletedRecord"><Property Name="RefNoteID" Type="Edm.Guid" Nullable="false"/>'
                     '<Property Name="DeleteDate" Type="Edm.DateTimeOffset" Nullable="false"/></EntityType>')
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<edmx:Edmx Version="4.0" xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx"><edmx:DataServices>'
        f'<Schema Namespace="{_NAMESPACE}" xmlns="http://docs.oasis-open.org/odata/ns/edm">'
        f'{"".join(types)}<EntityContainer Name="Default">{"".join(sets)}</EntityContainer>'
        "</Schema></edmx:DataServices></edmx:Edmx>"
    )
