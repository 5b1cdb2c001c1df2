"""SandboxApp: the Acumatica side of the sandbox — request pipeline (count, throttle, faults, latency,
authentication) and routing of /entity, /identity and /t/{Tenant}/api/odata."""

from __future__ import annotations

import re
import time
from http.cookies import CookieError, SimpleCookie

import msgspec

from airflow_provider_acumatica.sandbox.control import mutate
from airflow_provider_acumatica.sandbox.counters import Counters
from airflow_provider_acumatica.sandbox.data import SandboxData
from airflow_provider_acumatica.sandbox.entity_json import RendererPool
from airflow_provider_acumatica.sandbox.errors import ApiError
from airflow_provider_acumatica.sandbox.faults import FaultBook
from airflow_provider_acumatica.sandbox.files import Attachments
from airflow_provider_acumatica.sandbox.identity import IdentityServer
from airflow_provider_acumatica.sandbox.odata import ODataApi, is_odata
from airflow_provider_acumatica.sandbox.queries import QueryEngine
from airflow_provider_acumatica.sandbox.rendering import ValueCodec
from airflow_provider_acumatica.sandbox.responses import Response, empty, error_response, json_response, raw_json
from airflow_provider_acumatica.sandbox.rest import EntityApi
from airflow_provider_acumatica.sandbox.sessions import SESSION_COOKIE, SessionManager
from airflow_provider_acumatica.sandbox.settings import ENDPOINT_NAME, ENDPOINT_VERSIONS, SandboxSettings
from airflow_provider_acumatica.sandbox.store import Store
from airflow_provider_acumatica.sandbox.swagger import swagger_document
from airflow_provider_acumatica.sandbox.throttle import Throttle
from airflow_provider_acumatica.sandbox.writes import Writer

_ENTITY_PATH = re.compile(r"^/entity/([^/]+)/([^/]+)/([^/]+)(?:/(.*))?$")
_LOGIN_PATHS = ("/entity/auth/login", "/identity/connect/token")


class SandboxApp:
    """Everything an Acumatica client can reach, plus the state the control API manipulates."""

    def __init__(self, settings: SandboxSettings) -> None:
        self.settings = settings
        self.counters = Counters()
        self.data = SandboxData(settings)
        self.store = Store(settings.tenants, self.data.build)
        self.codec = ValueCodec(settings.zone, settings.naive_datetimes)
        self.writer = Writer(self.store, self.codec, settings.seed)
        self.queries = QueryEngine(self.store, self.codec)
        self.attachments = Attachments(
            lambda tenant, entity, record_id: self.entities.table(tenant, entity).get(record_id)
        )
        self.entities = EntityApi(
            self.store, self.writer, self.queries, RendererPool(self.codec), settings.max_page_size, self.attachments
        )
        self.sessions = SessionManager(settings, self.counters)
        self.throttle = Throttle(
            settings.requests_per_minute, settings.max_concurrent, self.counters, settings.ms_per_record
        )
        self.faults = FaultBook(settings.seed)
        self.identity = IdentityServer(settings, self.counters)
        self.odata = ODataApi(self)

    def handle(self, method: str, path: str, params: dict, headers, body: bytes, target: str = "") -> Response:
        """Answer one Acumatica request, faults and throttling included; faults match `target` (the decoded
        path and query) when given, else the path."""
        self.counters.add("requests")
        fired = self.faults.take(method, target or path, path in _LOGIN_PATHS)
        if any(fault.kind == "ignore_skip" for fault in fired):
            params = {name: value for name, value in params.items() if name != "$skip"}
        try:
            self.throttle.enter(self.store.clock.now())
        except ApiError as error:
            return error_response(error)
        try:
            polls = max((fault.polls for fault in fired if fault.kind == "long_running"), default=None)
            return self._faulted(fired, lambda: self._route(method, path, params, headers, body, polls))
        finally:
            self.throttle.charge()
            self.sessions.end_request()
            self.throttle.leave()

    def _faulted(self, fired, answer) -> Response:
        if self.settings.latency_ms:
            time.sleep(self.settings.latency_ms / 1000)
        for fault in fired:
            if fault.kind == "mutate":
                self.apply_mutation(fault.mutation)
            elif fault.kind == "slow":
                self.faults.hold(fault.delay_ms)
        kinds = {fault.kind for fault in fired if fault.phase == "before"}
        failed = _failure(kinds)
        if failed is not None:
            return failed
        if "login_limit" in kinds:
            self.counters.add("login_limit_refusals")
            return error_response(ApiError(429, "API Login Limit"))
        response = answer()
        response.truncate = "truncate" in kinds
        return _failure({fault.kind for fault in fired if fault.phase == "after"}) or response

    def apply_mutation(self, mutation: dict) -> list[str]:
        """A control-API style mutation {tenant, entity, op, random: N | records | ids}."""
        return mutate(self, mutation["tenant"], mutation["entity"], mutation["op"], mutation)

    def _route(self, method: str, path: str, params: dict, headers, body: bytes, polls: int | None) -> Response:
        """`polls`: a `long_running` fault fired, so an action is started as a long operation (see faults)."""
        try:
            if path.rstrip("/") == "/entity" and method == "GET":
                return json_response(self.endpoints())
            if path == "/entity/auth/login" and method == "POST":
                return self._login(body)
            if path == "/entity/auth/logout" and method == "POST":
                self.sessions.logout(self._session_key(headers), self.store.clock.now())
                return empty(204, [("Set-Cookie", f"{SESSION_COOKIE}=; expires=Thu, 01 Jan 1970 00:00:00 GMT; path=/")])
            if path.startswith("/identity/"):
                return self.identity.route(
                    method, path, params, headers, body, self.store.clock.now(), _base_url(headers)
                )
            if is_odata(path):
                return self.odata.route(method, path, params, headers, _base_url(headers))
            match = _ENTITY_PATH.match(path)
            if match:
                return self._entity(method, match, params, headers, body, polls)
            raise ApiError(
                404,
                f"The path {path} is not found.",
                message="No HTTP resource was found that matches the request URI.",
            )
        except ApiError as error:
            return error_response(error)

    def endpoints(self) -> dict:
        return {
            "version": {"acumaticaBuildVersion": "24.200.0123", "databaseVersion": "24.200.0123"},
            "endpoints": [
                {"name": ENDPOINT_NAME, "version": version, "href": f"/entity/{ENDPOINT_NAME}/{version}/"}
                for version in ENDPOINT_VERSIONS
            ],
        }

    def _login(self, body: bytes) -> Response:
        token, tenant = self.sessions.login(_json(body), self.store.clock.now())
        return empty(
            204,
            [
                ("Set-Cookie", f"{SESSION_COOKIE}={token}; path=/; HttpOnly"),
                ("Set-Cookie", f"ASP.NET_SessionId={token[:24]}; path=/; HttpOnly"),
                ("Set-Cookie", "UserBranch=1; path=/"),
                ("Set-Cookie", f"CompanyID={tenant}; path=/"),
            ],
        )

    def _session_key(self, headers) -> str | None:
        """The licence session a sign-out closes: the bearer token's, else the cookie's."""
        token = _bearer(headers)
        if token is not None:
            seat = self.identity.seat_of(token, self.store.clock.now())
            return None if seat is None else seat.key
        return _cookie(headers, SESSION_COOKIE)

    def tenant_of(self, headers, url_tenant: str | None = None, basic=None) -> str:
        """The signed-in tenant of a request (cookie, bearer, or — for OData — Basic); ApiError(401) if none."""
        now = self.store.clock.now()
        authorization, token = headers.get("Authorization", ""), _bearer(headers)
        if token is not None:
            seat = self.identity.seat_of(token, now)
            tenant = None if seat is None else self.sessions.use_bearer(seat, now)
        elif authorization.lower().startswith("basic ") and basic is not None:
            tenant = basic(authorization[6:].strip(), url_tenant)
        else:
            tenant = self.sessions.tenant_of(_cookie(headers, SESSION_COOKIE), now)
        if tenant is None:
            raise ApiError(401, "You are not logged in.")
        return tenant

    def _entity(self, method: str, match, params: dict, headers, body: bytes, polls: int | None) -> Response:
        endpoint, version, entity, rest = match.groups()
        if endpoint != ENDPOINT_NAME or version not in ENDPOINT_VERSIONS:
            raise ApiError(
                404,
                f"The endpoint {endpoint}/{version} is not found; endpoints: "
                f"{ENDPOINT_NAME} {', '.join(ENDPOINT_VERSIONS)}",
            )
        tenant = self.tenant_of(headers)
        if entity == "swagger.json" and rest is None and method == "GET":
            return json_response(swagger_document(endpoint, version))
        base = f"/entity/{endpoint}/{version}"
        locator = [part for part in (rest or "").split("/") if part]
        api = self.entities
        if method == "GET" and len(locator) == 3 and locator[1] == "status":  # a long-running action's status
            done = api.action_done(tenant, entity, locator[0], locator[2])
            return empty(204) if done else empty(202, [("Location", match.group(0))])
        attached = self.attachments.route(method, tenant, base, entity, locator, headers, body)
        if attached is not None:
            return attached
        if method == "GET":
            return raw_json(
                api.get(tenant, base, entity, locator, params) if locator else api.list(tenant, base, entity, params)
            )
        if method == "PUT" and not locator:
            return raw_json(api.put(tenant, base, entity, _json(body), headers, params))
        if method == "DELETE" and locator:
            api.delete(tenant, entity, locator)
            return empty(204)
        if method == "POST" and len(locator) == 1 and polls is not None:
            operation = api.start_action(tenant, entity, locator[0], _json(body), polls)
            return empty(202, [("Location", f"{base}/{entity}/{locator[0]}/status/{operation}")])
        if method == "POST" and len(locator) == 1:
            api.action(tenant, entity, locator[0], _json(body))
            return empty(204)
        raise ApiError(
            405,
            f"{method} is not allowed on {match.group(0)}",
            message="The requested resource does not support this method.",
        )


def _failure(kinds: set[str]) -> Response | None:
    """The answer of a fault that fails the request (a dropped connection, a 503 or a 500), if one fired."""
    if "drop" in kinds:
        return Response(0, drop=True)
    if "503" in kinds:
        return Response(503, b"<html><body><h1>Service Unavailable</h1></body></html>", "text/html")
    if "500" in kinds:
        return error_response(ApiError(500, "Object reference not set to an instance of an object."))
    return None


def _base_url(headers) -> str:
    return f"http://{headers.get('Host', 'localhost')}"


def _json(body: bytes):
    if not body:
        return None
    try:
        return msgspec.json.decode(body)
    except msgspec.DecodeError as error:
        raise ApiError(400, f"The request body is not valid JSON: {error}") from None


def _bearer(headers) -> str | None:
    """The access token of an `Authorization: Bearer` header, if any."""
    authorization = headers.get("Authorization", "")
    return authorization[7:].strip() if authorization.lower().startswith("bearer ") else None


def _cookie(headers, name: str) -> str | None:
    raw = headers.get("Cookie")
    if not raw:
        return None
    try:
        jar = SimpleCookie(raw)
    except CookieError:
        return None
    return jar[name].value if name in jar else None
