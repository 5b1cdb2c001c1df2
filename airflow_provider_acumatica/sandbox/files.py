"""File attachments of records: a PUT to a record's `files:put` link (`{base}/files/PX.Objects.PM.{Entity}/{id}/
{filename}`) or to `{base}/{Entity}/{id}/files/{filename}` attaches a file (the same name again replaces it); a
record lists its files with `$expand=files`; `GET {base}/files/{file id}` answers the content."""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass
from urllib.parse import unquote

from airflow_provider_acumatica.sandbox.errors import ApiError
from airflow_provider_acumatica.sandbox.responses import Response, empty

FILES = "files"
_SCREEN_PREFIX = "PX.Objects.PM."


@dataclass(frozen=True)
class _File:
    id: str
    filename: str
    content: bytes
    comment: str


class Attachments:
    """The files attached to records, per tenant; `lookup(tenant, entity, record id)` finds the record or None."""

    def __init__(self, lookup) -> None:
        self._lookup = lookup
        self._by_record: dict[tuple[str, str, str], dict[str, _File]] = {}
        self._by_id: dict[tuple[str, str], _File] = {}
        self._lock = threading.Lock()

    @staticmethod
    def put_link(base: str, entity: str) -> str:
        """The `files:put` link of an entity's records, up to the record id."""
        return f"{base}/{FILES}/{_SCREEN_PREFIX}{entity}/"

    def route(
        self, method: str, tenant: str, base: str, entity: str, locator: list[str], headers, body: bytes
    ) -> Response | None:
        """Answer a file request, or None when the request is not about files."""
        if entity == FILES and method == "GET" and len(locator) == 1:
            return Response(200, self._content(tenant, locator[0]), "application/octet-stream")
        if entity == FILES and method == "PUT" and len(locator) == 3 and locator[0].startswith(_SCREEN_PREFIX):
            return self._attach(tenant, locator[0][len(_SCREEN_PREFIX) :], locator[1], locator[2], headers, body)
        if entity != FILES and method == "PUT" and len(locator) == 3 and locator[1] == FILES:
            return self._attach(tenant, entity, locator[0], locator[2], headers, body)
        return None

    def listing(self, tenant: str, base: str, entity: str, record_id: str) -> list[dict]:
        """The `files` of a record as Acumatica lists them: id, filename, href."""
        with self._lock:
            attached = list(self._by_record.get((tenant, entity, record_id), {}).values())
        return [{"id": f.id, "filename": f"{entity}\\{f.filename}", "href": f"{base}/{FILES}/{f.id}"} for f in attached]

    def _attach(self, tenant: str, entity: str, record_id: str, filename: str, headers, body: bytes) -> Response:
        filename = unquote(filename)
        if self._lookup(tenant, entity, record_id) is None:
            raise ApiError(404, f"No entity satisfies the condition: {entity} {record_id} does not exist.")
        if not filename.strip() or "/" in filename or "\\" in filename:
            raise ApiError(400, f"The file name {filename!r} is not valid.")
        with self._lock:
            files = self._by_record.setdefault((tenant, entity, record_id), {})
            old = files.get(filename)
            attached = _File(old.id if old else str(uuid.uuid4()), filename, body, headers.get("PX-CbFileComment", ""))
            files[filename] = self._by_id[(tenant, attached.id)] = attached
        return empty(204)

    def _content(self, tenant: str, file_id: str) -> bytes:
        with self._lock:
            attached = self._by_id.get((tenant, file_id.lower()))
        if attached is None:
            raise ApiError(404, f"The file {file_id} is not found.")
        return attached.content
