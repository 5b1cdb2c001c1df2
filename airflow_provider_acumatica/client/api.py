"""AcumaticaClient: reads and writes of one connection over REST and OData, without any Airflow import."""

from __future__ import annotations

import datetime
import logging
import os
import threading
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from typing import Any
from urllib.parse import quote

from airflow_provider_acumatica.client import auth, sessions
from airflow_provider_acumatica.client.errors import AcumaticaApiError, AcumaticaError
from airflow_provider_acumatica.client.limits import ODATA_KINDS
from airflow_provider_acumatica.client.masking import SecretMasker
from airflow_provider_acumatica.client.metadata import ODataEntitySet, parse_metadata
from airflow_provider_acumatica.client.queries import ODataFilter, ge, join_names, query_params, render_filter
from airflow_provider_acumatica.client.records import DateTimeReader, ODataDecoder, RecordBatch, RecordDecoder
from airflow_provider_acumatica.client.settings import AcumaticaSettings
from airflow_provider_acumatica.client.tokens import Cipher, TokenStore, derived_cipher
from airflow_provider_acumatica.client.transport import Transport
from airflow_provider_acumatica.client.writes import (
    PUT_MODES,
    action_status_path,
    wait_for_action,
    wrap_record,
    write_retryable,
)

FilterArg = ODataFilter | str | None
Names = str | Iterable[str] | None


class AcumaticaClient:
    """One connection's door to Acumatica; safe to use from several threads at once. Close it when done."""

    def __init__(
        self,
        settings: AcumaticaSettings,
        *,
        logger: logging.Logger | None = None,
        masker: SecretMasker | None = None,
        cipher: Cipher | None = None,
    ) -> None:
        self.settings = settings
        self.masker = masker or SecretMasker()
        self.masker.add(*settings.secrets())
        self.log = logger or logging.getLogger(__name__)
        self.transport = Transport(settings, self.masker, self.log)
        datetimes = DateTimeReader(settings.zone, settings.convert_to_utc)
        self.records = RecordDecoder(datetimes)
        self.odata = ODataDecoder(datetimes)
        self._metadata: dict[str, dict[str, ODataEntitySet]] = {}
        self._metadata_lock = threading.Lock()
        if settings.is_oauth:
            store = TokenStore(
                settings.token_store or default_token_store(),
                cipher or derived_cipher(settings.client_secret or "", settings.token_key),
            )
            self.token_store = store
            self.authenticator = auth.OAuthTokens(settings, store, self.transport, self.masker)
            self.odata_authenticator = self.authenticator
        else:
            self.token_store = None
            self.authenticator = sessions.CookieSessions(settings, self.transport, self.masker)
            self.odata_authenticator = sessions.BasicAuth(settings.login or "", settings.password or "")

    # -- paths ----------------------------------------------------------------------------------------
    def entity_path(self, entity: str, *parts: str) -> str:
        settings = self.settings
        segments = [settings.endpoint_name, settings.endpoint_version, entity, *parts]
        return "/entity/" + "/".join(quote(str(segment), safe="") for segment in segments)

    def odata_path(self, name: str, kind: str = "dac") -> str:
        if kind not in ODATA_KINDS:
            raise ValueError(f"OData kind {kind!r} is not one of {', '.join(ODATA_KINDS)}")
        return f"/t/{quote(self.settings.tenant, safe='')}/api/odata/{kind}/{quote(name, safe='()$.')}"

    # -- REST reads -----------------------------------------------------------------------------------
    def list_endpoints(self) -> Any:
        """`GET /entity`: the instance's endpoints and versions."""
        return self.transport.request("GET", "/entity", authenticator=self.authenticator).data

    def get_entity_page(
        self,
        entity: str,
        *,
        filter: FilterArg = None,
        select: Names = None,
        expand: Names = None,
        custom: Names = None,
        top: int,
        skip: int = 0,
    ) -> list[dict]:
        """One request: at most `top` records of `entity` after skipping `skip`, decoded."""
        return _as_list(
            self._read_entity(
                self.records.page_reader,
                entity,
                filter=filter,
                select=select,
                expand=expand,
                custom=custom,
                top=top,
                skip=skip,
            )
        )

    def get_entity_batch(
        self,
        entity: str,
        *,
        filter: FilterArg = None,
        select: Names = None,
        expand: Names = None,
        custom: Names = None,
        top: int,
        skip: int = 0,
    ) -> RecordBatch:
        """`get_entity_page` as a `RecordBatch` (the records held by field): for loading many records."""
        batch = self._read_entity(
            self.records.batch_reader,
            entity,
            filter=filter,
            select=select,
            expand=expand,
            custom=custom,
            top=top,
            skip=skip,
        )
        return RecordBatch({}, 0) if batch is None else batch

    def _read_entity(
        self,
        reader: Callable[[Hashable], Callable[[bytes], Any]],
        entity: str,
        *,
        filter: FilterArg,
        select: Names,
        expand: Names,
        custom: Names,
        top: int,
        skip: int,
    ) -> Any:
        """One page of `entity`, decoded by `reader`'s decoder for this query."""
        _check_page(top, skip)
        params = query_params(
            filter=render_filter(filter, 3),
            select=join_names(select),
            expand=join_names(expand),
            custom=join_names(custom),
            top=top,
            skip=skip,
        )
        decode = reader((entity, params.get("$select"), params.get("$expand"), params.get("$custom")))
        return self.transport.request(
            "GET", self.entity_path(entity), authenticator=self.authenticator, params=params, decode=decode
        ).data

    def get_entity_values(
        self,
        entity: str,
        field: str,
        *,
        filter: FilterArg = None,
        top: int,
        skip: int = 0,
    ) -> list[Any]:
        """One request: the values of one field of at most `top` records (a `$select` of it), e.g. to learn
        where a table's timestamps lie without transferring or building whole records."""
        _check_page(top, skip)
        params = query_params(filter=render_filter(filter, 3), select=field, top=top, skip=skip)
        reply = self.transport.request(
            "GET",
            self.entity_path(entity),
            authenticator=self.authenticator,
            params=params,
            decode=self.records.field_reader(field),
        )
        return reply.data or []

    def iter_entity(
        self,
        entity: str,
        *,
        filter: FilterArg = None,
        select: Names = None,
        expand: Names = None,
        custom: Names = None,
        page_size: int | None = None,
    ) -> Iterator[dict]:
        """Every record of `entity` matching `filter`, page by page (memory bounded by one page)."""
        size = page_size or self.settings.page_size
        yield from self._pages(
            entity,
            size,
            lambda skip, top: self.get_entity_page(
                entity, filter=filter, select=select, expand=expand, custom=custom, top=top, skip=skip
            ),
        )

    # -- OData reads ----------------------------------------------------------------------------------
    def get_odata_metadata(self, kind: str = "dac") -> dict[str, ODataEntitySet]:
        """The `$metadata` of the DAC or GI interface: entity sets with keys and Edm column types (cached)."""
        with self._metadata_lock:
            if kind not in self._metadata:
                reply = self.transport.request(
                    "GET",
                    self.odata_path("$metadata", kind),
                    authenticator=self.odata_authenticator,
                    decode=parse_metadata,
                )
                self._metadata[kind] = reply.data or {}
            return self._metadata[kind]

    def get_odata_page(
        self,
        name: str,
        *,
        kind: str = "dac",
        filter: FilterArg = None,
        select: Names = None,
        orderby: Names = None,
        top: int,
        skip: int = 0,
    ) -> list[dict]:
        """One request: at most `top` rows of a DAC or generic inquiry after skipping `skip`."""
        _check_page(top, skip)
        columns = self._datetime_columns(name, kind)
        params = query_params(
            filter=render_filter(filter, 4), select=join_names(select), orderby=join_names(orderby), top=top, skip=skip
        )
        reply = self.transport.request(
            "GET",
            self.odata_path(name, kind),
            authenticator=self.odata_authenticator,
            params=params,
            decode=lambda body: self.odata.rows(body, columns),
        )
        return reply.data or []

    def iter_deleted_records(self, dac: str, *, since: datetime.datetime | None = None) -> Iterator[dict]:
        """`{"RefNoteID", "DeleteDate"}` of the records of a tracked DAC deleted since `since` (all when None)."""
        path = f"{self.odata_path(dac)}/px.GetDeletedRecords()"
        window = render_filter(ge("DeleteDate", since), 4) if since else None
        size = self.settings.page_size

        def page(skip: int, top: int) -> list[dict]:
            reply = self.transport.request(
                "GET",
                path,
                authenticator=self.odata_authenticator,
                params=query_params(filter=window, top=top, skip=skip),
                decode=lambda body: self.odata.rows(body, ("DeleteDate",)),
            )
            return reply.data or []

        yield from self._pages(f"{dac} deletions", size, page)

    def iter_odata(
        self,
        name: str,
        *,
        kind: str = "dac",
        filter: FilterArg = None,
        select: Names = None,
        orderby: Names = None,
        page_size: int | None = None,
    ) -> Iterator[dict]:
        """Every row of a DAC (`kind="dac"`) or generic inquiry (`kind="gi"`), page by page."""
        size = page_size or self.settings.page_size
        yield from self._pages(
            name,
            size,
            lambda skip, top: self.get_odata_page(
                name, kind=kind, filter=filter, select=select, orderby=orderby, top=top, skip=skip
            ),
        )

    # -- writes ---------------------------------------------------------------------------------------
    def put_entity(self, entity: str, record: Mapping[str, Any], *, mode: str = "upsert") -> dict:
        """PUT one record (plain values); `mode` upsert, insert (If-None-Match: *) or update (If-Match: *)."""
        if mode not in PUT_MODES:
            raise ValueError(f"put_entity mode {mode!r} is not one of {', '.join(PUT_MODES)}")
        reply = self.transport.request(
            "PUT",
            self.entity_path(entity),
            authenticator=self.authenticator,
            json_body=wrap_record(record),
            headers=PUT_MODES[mode],
            decode=self.records.loads,
            retryable=write_retryable,
        )
        return reply.data

    def invoke_action(
        self, entity: str, action: str, record: Mapping[str, Any], parameters: Mapping[str, Any] | None = None
    ) -> None:
        """POST an action on a record; waits for long-running actions (202 + Location) to finish."""
        body: dict[str, Any] = {"entity": wrap_record(record)}
        if parameters:
            body["parameters"] = wrap_record(parameters)
        path = self.entity_path(entity, action)
        reply = self.transport.request(
            "POST", path, authenticator=self.authenticator, json_body=body, decode=None, retryable=write_retryable
        )
        if reply.status == 202:
            wait_for_action(
                self.transport,
                self.authenticator,
                self.settings,
                action_status_path(path, reply.headers.get("Location")),
            )

    def delete_entity(self, entity: str, id: str) -> None:
        """DELETE one record by its `id` (GUID)."""
        self.transport.request("DELETE", self.entity_path(entity, id), authenticator=self.authenticator, decode=None)

    # -- life cycle -----------------------------------------------------------------------------------
    def test_connection(self) -> tuple[bool, str]:
        """Sign in, read `/entity`, sign out: (True, message) or (False, what went wrong)."""
        try:
            endpoints = self.list_endpoints()
        except AcumaticaError as error:
            return False, self.masker.redact(str(error))
        finally:
            self.sign_out()
        count = len(endpoints.get("endpoints", [])) if isinstance(endpoints, Mapping) else 0
        return True, f"Signed in to tenant {self.settings.tenant!r}; {count} endpoints available."

    def sign_out(self) -> None:
        """Sign out the open cookie sessions (the client can sign in again later)."""
        if isinstance(self.authenticator, sessions.CookieSessions):
            self.authenticator.sign_out_all()

    def close(self, *, parallel: bool = False) -> None:
        """Sign out every session and release connections; the client refuses further work. Safe to call again.

        Sequential on the calling thread by default, as a signal handler (on_kill) needs; `parallel=True`
        signs out all sessions at once, for the normal end of work only (see CookieSessions.sign_out_all).
        """
        try:
            if isinstance(self.authenticator, (sessions.CookieSessions, auth.OAuthTokens)):
                self.authenticator.close(parallel=parallel)
        finally:
            self.transport.close()

    def __enter__(self) -> AcumaticaClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close(parallel=True)  # the end of a with block, never a signal handler itself

    # -- helpers --------------------------------------------------------------------------------------
    def _pages(self, name: str, size: int, fetch) -> Iterator[dict]:
        """Every record `fetch(skip, top)` pages through. A short page ends the read only when the next
        one is empty: an instance that caps its answers below $top is then read at its cap."""
        skip, capped, previous = 0, False, None
        while True:
            page = fetch(skip, size)
            if capped and page and page == previous:
                self.log.warning("Acumatica %s: the server ignores $skip (same page twice); stopping", name)
                return
            yield from page
            skip += len(page)
            if len(page) < size and (capped or not page):
                self.log.info("Acumatica %s: %d records read", name, skip)
                return
            if len(page) < size:
                capped, size = True, len(page)  # confirmed (or refuted) by the next, possibly empty, page
            previous = page

    def _datetime_columns(self, name: str, kind: str) -> tuple[str, ...] | None:
        try:
            entity_set = self.get_odata_metadata(kind).get(name.split("/")[0])
        except AcumaticaApiError as error:
            self.log.warning("OData $metadata unavailable (%s); finding date-times by shape", error)
            with self._metadata_lock:
                self._metadata.setdefault(kind, {})
            return None
        return entity_set.datetime_columns if entity_set else None


def default_token_store() -> str:
    """SQLite file under $AIRFLOW_HOME (one machine); set the `token_store` extra for several machines."""
    home = os.environ.get("AIRFLOW_HOME") or os.path.join(os.path.expanduser("~"), "airflow")
    return "sqlite:///" + os.path.join(home, "acumatica_tokens.db")


def _check_page(top: int, skip: int) -> None:
    if not isinstance(top, int) or top < 1:
        raise ValueError(f"top must be a positive whole number, got {top!r}")
    if not isinstance(skip, int) or skip < 0:
        raise ValueError(f"skip must be a whole number >= 0, got {skip!r}")


def _as_list(data: Any) -> list[dict]:
    if data is None:
        return []
    return data if isinstance(data, list) else [data]
