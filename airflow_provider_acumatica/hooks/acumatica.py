"""AcumaticaHook: the `acumatica` Airflow connection turned into a ready, validated Acumatica client.

The hook reads the connection, validates its settings at creation (errors name the connection and the
field), registers every secret with Airflow's masker, and hands the work to
`airflow_provider_acumatica.client.api.AcumaticaClient`, which knows HTTP and nothing of Airflow.
Use it as a context manager, or call `close(parallel=True)` at the normal end of work and `close()` from
`on_kill`: cookie sessions are always signed out.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import weakref
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

from airflow.sdk.bases.hook import BaseHook

from airflow_provider_acumatica.client import auth
from airflow_provider_acumatica.client.api import AcumaticaClient, FilterArg, Names, default_token_store
from airflow_provider_acumatica.client.licence import Lease, LicenceLeases
from airflow_provider_acumatica.client.metadata import ODataEntitySet
from airflow_provider_acumatica.client.record_batch import RecordBatch
from airflow_provider_acumatica.client.settings import AcumaticaSettings, check_licence_share

# A standard-library logger (Airflow routes it into the task log) so that the client's own redaction applies
# to exactly what is written, whoever configured logging.
_LOGGER = logging.getLogger(f"airflow.task.hooks.{__name__}.AcumaticaHook")


class AcumaticaHook(BaseHook):
    """Reads and writes one Acumatica tenant through the `acumatica` connection `acumatica_conn_id`.

    Thread-safe: the operator may fetch pages from up to `max_concurrent_requests` threads at once.
    """

    conn_name_attr = "acumatica_conn_id"
    default_conn_name = "acumatica_default"
    conn_type = "acumatica"
    hook_name = "Acumatica"

    def __init__(
        self, acumatica_conn_id: str = default_conn_name, *, max_concurrent_requests: int | None = None, **kwargs: Any
    ) -> None:
        """`max_concurrent_requests` lowers the connection's for this hook (a task's share of the licence)."""
        super().__init__(**kwargs)
        self.acumatica_conn_id = acumatica_conn_id
        connection = self.get_connection(acumatica_conn_id)
        self._settings = AcumaticaSettings.from_connection(
            acumatica_conn_id, connection.host, connection.login, connection.password, connection.extra_dejson
        )
        if max_concurrent_requests is not None:
            self._settings = dataclasses.replace(self._settings, max_concurrent_requests=max_concurrent_requests)
            check_licence_share(self._settings)
        self._client: AcumaticaClient | None = None
        self._lease: Lease | None = None
        self._client_lock = threading.Lock()
        self._sign_out_at_exit: weakref.finalize | None = None

    # -- what the connection is -----------------------------------------------------------------------
    @property
    def settings(self) -> AcumaticaSettings:
        """The validated connection settings (read-only; secrets stay out of its repr)."""
        return self._settings

    @property
    def tenant(self) -> str:
        return self._settings.tenant

    @property
    def max_concurrent_requests(self) -> int:
        return self._settings.max_concurrent_requests

    @property
    def probe_page_size(self) -> int:
        """Timestamps per probe request (the connection's `probe_page_size`)."""
        return self._settings.probe_page_size

    def get_conn(self) -> AcumaticaClient:
        """The client behind this hook, created on first use; exactly one even when threads race to use it
        first (a second client would hold sessions that `close()` never signs out)."""
        with self._client_lock:
            if self._client is None:
                self._lease = self._lease_licence()
                self._client = AcumaticaClient(self._settings, logger=_LOGGER, cipher=_airflow_fernet())
                self._client.masker.add_listener(_mask_in_airflow)
                # A caller who forgets close() (or `with`) would leave its sessions holding licence seats for ten
                # minutes: they are signed out when the hook is collected or, at the latest, when the process ends
                # normally (weakref.finalize runs at exit); close() first makes this unnecessary.
                self._sign_out_at_exit = weakref.finalize(self, _end, self._client, self._lease)
            return self._client

    def _lease_licence(self) -> Lease | None:
        """With `licence_concurrent_requests` set, this hook's share of the instance's licence, leased in the token
        store's database before any request (waiting up to `licence_wait_seconds`): see client.licence."""
        settings = self._settings
        if settings.licence_concurrent_requests is None:
            return None
        leases = LicenceLeases(settings.token_store or default_token_store(), _LOGGER)
        return leases.acquire(
            settings.instance_url,
            settings.max_concurrent_requests,
            licence=settings.licence_concurrent_requests,
            wait_seconds=settings.licence_wait_seconds,
        )

    # -- reads ----------------------------------------------------------------------------------------
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
        """Stream the records of a REST entity as plain dicts (see client.records for the shape)."""
        return self.get_conn().iter_entity(
            entity, filter=filter, select=select, expand=expand, custom=custom, page_size=page_size
        )

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
        """One page (one request) of a REST entity."""
        return self.get_conn().get_entity_page(
            entity, filter=filter, select=select, expand=expand, custom=custom, top=top, skip=skip
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
        """`get_entity_page` as a `RecordBatch`: the records held by field, no dict per record (for loaders)."""
        return self.get_conn().get_entity_batch(
            entity, filter=filter, select=select, expand=expand, custom=custom, top=top, skip=skip
        )

    def get_entity_values(
        self, entity: str, field: str, *, filter: FilterArg = None, top: int, skip: int = 0
    ) -> list[Any]:
        """One request: the values of one field of at most `top` records of a REST entity, in server order."""
        return self.get_conn().get_entity_values(entity, field, filter=filter, top=top, skip=skip)

    def iter_odata(
        self,
        dac_or_gi: str,
        *,
        kind: str = "dac",
        filter: FilterArg = None,
        select: Names = None,
        orderby: Names = None,
        page_size: int | None = None,
    ) -> Iterator[dict]:
        """Stream the rows of a DAC (`kind="dac"`) or generic inquiry (`kind="gi"`) over OData v4."""
        return self.get_conn().iter_odata(
            dac_or_gi, kind=kind, filter=filter, select=select, orderby=orderby, page_size=page_size
        )

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
        """One page (one request) of a DAC or generic inquiry."""
        return self.get_conn().get_odata_page(
            name, kind=kind, filter=filter, select=select, orderby=orderby, top=top, skip=skip
        )

    def iter_deleted_records(self, dac: str, *, since: datetime | None = None) -> Iterator[dict]:
        """Deletions a tracked DAC reports through `px.GetDeletedRecords()`: `{"RefNoteID", "DeleteDate"}`."""
        return self.get_conn().iter_deleted_records(dac, since=since)

    def get_odata_metadata(self, kind: str = "dac") -> dict[str, ODataEntitySet]:
        """Entity sets of the DAC or GI interface with their keys and Edm column types."""
        return self.get_conn().get_odata_metadata(kind)

    # -- writes ---------------------------------------------------------------------------------------
    def put_entity(self, entity: str, record: Mapping[str, Any], *, mode: str = "upsert") -> dict:
        """Create or update one record; a 422 raises AcumaticaValidationError with `field_errors`."""
        return self.get_conn().put_entity(entity, record, mode=mode)

    def invoke_action(
        self, entity: str, action: str, record: Mapping[str, Any], parameters: Mapping[str, Any] | None = None
    ) -> None:
        """Run an action (e.g. TimeEntry CompleteTimeEntry) on a record and wait for it to finish."""
        self.get_conn().invoke_action(entity, action, record, parameters)

    def delete_entity(self, entity: str, id: str) -> None:
        self.get_conn().delete_entity(entity, id)

    # -- OAuth authorization code flow ----------------------------------------------------------------
    def authorization_url(self, redirect_uri: str, state: str | None = None) -> tuple[str, str, str]:
        """Start the authorization code flow: (URL for the user, state, PKCE code_verifier to keep)."""
        return auth.authorization_url(self._settings, redirect_uri, state)

    def exchange_code(self, redirect_uri: str, code: str, code_verifier: str | None = None) -> None:
        """Finish it: trade the code for tokens, which start the chain in the token store."""
        client = self.get_conn()
        if client.token_store is None:
            raise ValueError(f"connection {self.acumatica_conn_id!r} does not use OAuth (auth_type)")
        auth.exchange_code(self._settings, client.token_store, redirect_uri, code, code_verifier)

    # -- life cycle -----------------------------------------------------------------------------------
    def test_connection(self) -> tuple[bool, str]:
        """For the UI's Test button: sign in, read `/entity`, sign out."""
        return self.get_conn().test_connection()

    def close(self, *, parallel: bool = False) -> None:
        """Sign out every session and release connections (safe to call twice, and from on_kill).

        `parallel=True` signs the sessions out all at once (a round trip in all, not one per session) and is
        for the normal end of work only. on_kill runs in a signal handler, where waiting for helper threads
        could wait forever for a lock the interrupted thread holds: it calls plain `close()`, one sign-out
        after another on its own thread, all within SIGN_OUT_DEADLINE_SECONDS (Airflow kills the task 5 s after
        asking it to stop; sessions not signed out by then are named in a warning); called during or after a
        parallel close, it skips the sessions already signed out or being signed out, without waiting for them.
        """
        if self._sign_out_at_exit is not None:
            self._sign_out_at_exit.detach()
        _end(self._client, self._lease, parallel=parallel)

    def __enter__(self) -> AcumaticaHook:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close(parallel=True)  # the end of a with block, never a signal handler itself


def _end(client: AcumaticaClient | None, lease: Lease | None, *, parallel: bool = False) -> None:
    """Sign out, then give the licence share back."""
    try:
        if client is not None:
            client.close(parallel=parallel)
    finally:
        if lease is not None:
            lease.release()


def _airflow_fernet():
    """Airflow's Fernet when [core] fernet_key is set, else None (the client derives a key)."""
    try:
        from airflow.sdk.crypto import get_fernet

        fernet = get_fernet()
    except Exception:  # noqa: BLE001 - no usable Airflow key configuration: fall back
        return None
    return fernet if getattr(fernet, "is_encrypted", False) else None


def _mask_in_airflow(secret: str) -> None:
    try:
        from airflow.sdk.log import mask_secret
    except ImportError:  # pragma: no cover - older task SDK
        return
    mask_secret(secret)
