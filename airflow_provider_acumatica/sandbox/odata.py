"""OData: the DAC interface (v4, /t/{Tenant}/api/odata/dac/) and the generic inquiry (/t/{Tenant}/api/odata/gi/,
the legacy v3 /OData/{Tenant}/ and /ODataV4/{Tenant}/), over the REST entities' tables. Each service answers its
service document, `$metadata`, entity sets with $filter/$select/$orderby/$top/$skip, and — DACs only — key reads,
$expand of navigation properties, $count and px.GetDeletedRecords() for tracked DACs. Errors are OData's."""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import unquote

from airflow_provider_acumatica.sandbox.catalog import DACS, GI_VIEW, DacView
from airflow_provider_acumatica.sandbox.errors import ApiError
from airflow_provider_acumatica.sandbox.odata_csdl import metadata, service_document
from airflow_provider_acumatica.sandbox.odata_filter import FilterError, compile_filter
from airflow_provider_acumatica.sandbox.odata_rows import Projection, key_filter, order_rows
from airflow_provider_acumatica.sandbox.queries import page_of
from airflow_provider_acumatica.sandbox.responses import Response, json_response
from airflow_provider_acumatica.sandbox.settings import SANDBOX_PASSWORD, SANDBOX_USER

if TYPE_CHECKING:
    from airflow_provider_acumatica.sandbox.app import SandboxApp

_SERVICES = (
    (re.compile(r"^(/t/([^/]+)/api/odata/(dac|gi))(/.*)?$"), None, 4),
    (re.compile(r"^(/odata/([^/]+))(/.*)?$", re.IGNORECASE), "gi", 3),
    (re.compile(r"^(/odatav4/([^/]+))(/.*)?$", re.IGNORECASE), "gi", 4),
)
_RESOURCE = re.compile(r"^(?P<set>[A-Za-z_]\w*)(?:\((?P<key>.*)\))?(?:/(?P<tail>\$count|px\.GetDeletedRecords\(\)))?$")
_UNSUPPORTED = ("$apply", "$search")
_NOT_ON_GI = ("$expand", "$count")
_ERROR_CODES = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    429: "TooManyRequests",
    500: "InternalServerError",
}


def is_odata(path: str) -> bool:
    return path.startswith("/t/") or path.lower().startswith(("/odata/", "/odatav4/"))


@dataclass(frozen=True)
class _Service:
    """One OData service a path is under: its root path, tenant as written, kind (dac|gi), protocol version, and
    the resource path after the root."""

    root: str
    tenant: str
    kind: str
    version: int
    resource: str

    @property
    def views(self) -> dict[str, DacView]:
        return DACS if self.kind == "dac" else {GI_VIEW.name: GI_VIEW}


def _service(path: str) -> _Service | None:
    for pattern, kind, version in _SERVICES:
        match = pattern.match(path)
        if match:
            groups = match.groups()
            resource = (groups[-1] or "").lstrip("/")
            return _Service(groups[0], groups[1], kind or groups[2], version, unquote(resource))
    return None


class ODataApi:
    """Answers DAC and GI requests; authentication by Basic, bearer token or cookie session."""

    def __init__(self, app: SandboxApp) -> None:
        self.app = app

    def route(self, method: str, path: str, params: dict, headers, base_url: str) -> Response:
        service = _service(path)
        if service is None:
            return _error(ApiError(404, f"The OData resource {method} {path} is not found."), 4, base_url)
        try:
            if method != "GET":
                raise ApiError(405, f"{method} is not allowed on {path}: the sandbox's OData services are read-only.")
            return self._answer(service, params, headers, f"{base_url}{service.root}")
        except ApiError as error:
            return _error(error, service.version, base_url)

    def _answer(self, service: _Service, params: dict, headers, root: str) -> Response:
        tenant = self.app.settings.tenant_named(service.tenant)
        if tenant is None:
            raise ApiError(404, f"The tenant {service.tenant!r} is not found.")
        if self.app.tenant_of(headers, tenant, self._basic) != tenant:
            raise ApiError(401, f"The credentials are not valid for the tenant {tenant!r}.")
        views = list(service.views.values())
        if service.resource == "$metadata":
            if params.get("$format", "xml").lower() not in ("xml", "application/xml"):
                raise ApiError(400, "$metadata is served as XML (CSDL) only.")
            return Response(200, metadata(views, service.kind == "dac", service.version).encode(), "application/xml")
        _check_format(params)
        if service.resource == "":
            return json_response(service_document(views, root, service.version))
        match = _RESOURCE.match(service.resource)
        if match is None:
            raise ApiError(404, f"The OData resource {service.resource!r} is not found.")
        view = _view(service, match.group("set"))
        for option in _UNSUPPORTED + (_NOT_ON_GI if service.kind == "gi" else ()):
            if option in params or (option == "$count" and match.group("tail") == "$count"):
                raise ApiError(400, f"The query option {option} is not supported on {view.name}.")
        if match.group("tail") == "px.GetDeletedRecords()":
            return self._deleted(tenant, view, params, root)
        context = f"{root}/$metadata#{view.name}"
        projection = Projection(self.app, tenant, view, params)
        if match.group("key") is not None:
            if match.group("tail") or not view.keys:
                raise ApiError(400, f"{view.name}: a key read needs the key ({', '.join(view.keys) or 'none'}) alone.")
            rows = self._matching(tenant, view, key_filter(view, match.group("key")), "v4")
            if not rows:
                raise ApiError(404, f"No {view.name} has the key ({match.group('key')}).")
            return json_response({"@odata.context": f"{context}/$entity", **projection.render([rows[0]])[0]})
        rows = order_rows(
            self._matching(tenant, view, params.get("$filter", ""), _dialect(service)),
            view,
            params.get("$orderby", ""),
            projection.getters,
        )
        if match.group("tail") == "$count":
            return Response(200, str(len(rows)).encode(), "text/plain; charset=utf-8")
        page = page_of(rows, _count(params, "$skip") or 0, _count(params, "$top"), self.app.settings.max_page_size)
        answer = {"odata.metadata" if service.version == 3 else "@odata.context": context}
        if _flag(params, "$count"):
            answer["@odata.count"] = len(rows)
        answer["value"] = projection.render(page)
        return json_response(answer)

    def _basic(self, credentials: str, url_tenant: str | None) -> str | None:
        try:
            user, _, password = base64.b64decode(credentials).decode().partition(":")
        except ValueError:
            return None
        name, _, tenant = user.partition("@")
        if name != SANDBOX_USER or password != SANDBOX_PASSWORD:
            return None
        return self.app.settings.tenant_named(tenant) if tenant else url_tenant

    def _matching(self, tenant: str, view: DacView, text: str, dialect: str) -> list:
        table = self.app.store.table(tenant, view.entity)
        try:
            return self.app.queries.matching(table, dialect, text, view)
        except FilterError as error:
            raise ApiError(400, str(error)) from None

    def _deleted(self, tenant: str, view: DacView, params: dict, root: str) -> Response:
        if not view.tracked:
            raise ApiError(
                400, f"Deleted records are not tracked for {view.name}; an administrator must enable tracking."
            )
        table = self.app.store.table(tenant, view.entity)
        fields = {"RefNoteID": (lambda item: item[0], "guid"), "DeleteDate": (lambda item: item[1], "dt")}
        try:
            predicate = compile_filter(params.get("$filter", ""), "v4", fields.__getitem__, self.app.codec)
        except FilterError as error:
            raise ApiError(400, str(error)) from None
        codec = self.app.codec
        matching = [item for item in list(table.deletions) if predicate(item)]
        skip, top = _count(params, "$skip") or 0, _count(params, "$top")
        value = [
            {"RefNoteID": row_id, "DeleteDate": codec.datetime_text(moment)}
            for row_id, moment in page_of(matching, skip, top, self.app.settings.max_page_size)
        ]
        return json_response({"@odata.context": f"{root}/$metadata#DeletedRecords", "value": value})


def _view(service: _Service, name: str) -> DacView:
    """The entity set `name` (its short or fully qualified name, e.g. PX_Objects_PM_PMProject); 404 if absent."""
    for view in service.views.values():
        if name in (view.name, view.qualified_name):
            return view
    what = "DAC" if service.kind == "dac" else "generic inquiry"
    raise ApiError(404, f"The {what} {name!r} is not exposed; available: {', '.join(sorted(service.views))}")


def _dialect(service: _Service) -> str:
    return "v3" if service.version == 3 else "v4"


def _check_format(params: dict) -> None:
    text = params.get("$format")
    if text is not None and text.split(";")[0].strip().lower() not in ("json", "application/json"):
        raise ApiError(400, f"$format={text!r} is not supported; the service answers JSON ($format=json).")


def _flag(params: dict, name: str) -> bool:
    text = params.get(name)
    if text is None:
        return False
    if text not in ("true", "false"):
        raise ApiError(400, f"{name} must be true or false, got {text!r}")
    return text == "true"


def _count(params: dict, name: str) -> int | None:
    if name not in params:
        return None
    if not params[name].isdigit():
        raise ApiError(400, f"{name} must be a whole number >= 0, got {params[name]!r}")
    return int(params[name])


def _error(error: ApiError, version: int, base_url: str) -> Response:
    """An OData error body ({"error": {code, message}} in v4, {"odata.error": ...} in v3); a 401 names the
    schemes it accepts in WWW-Authenticate."""
    code = _ERROR_CODES.get(error.status, str(error.status))
    if version == 3:
        body = {"odata.error": {"code": code, "message": {"lang": "en-US", "value": error.detail}}}
    else:
        body = {"error": {"code": code, "message": error.detail}}
    headers = list(error.headers.items())
    if error.status == 401:
        realm = base_url.split("://", 1)[-1]
        headers += [("WWW-Authenticate", f'Bearer realm="{realm}"'), ("WWW-Authenticate", f'Basic realm="{realm}"')]
    return json_response(body, error.status, headers)
