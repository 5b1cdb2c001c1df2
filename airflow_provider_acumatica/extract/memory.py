"""What the syncs of one Acumatica instance and tenant remember between runs, in the warehouse's source notes.

Airflow runs each task in a process of its own, so whatever a run learns of the instance in memory is gone by the
next one. Two things are worth keeping, so that a quiet run costs sign-in, one page and sign-out:

- an entity's field types from the endpoint's swagger.json, used for SCHEMA_TTL after they were read. A field the
  endpoint gained meanwhile is typed from its values until then (and a date or a duration migrated once the
  document is read again): a type inferred, never a row lost;
- per table, the most records the instance answered at once (see extract.slicing: a shorter answer is no page
  cap). It is a fact about that instance, so it is kept under its URL and never used for another.

What a run learnt is written once its load is committed (`save`): a run that fails leaves the warehouse as it was.
Keeping them is an optimisation: a warehouse that cannot keep them (logged) costs a run a request or two more.
Design record: docs/adr/0010-source-memory-in-the-warehouse.md.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

from sqlalchemy.exc import SQLAlchemyError

from airflow_provider_acumatica.client.schema import SCHEMAS, EndpointSchema
from airflow_provider_acumatica.client.settings import AcumaticaSettings
from airflow_provider_acumatica.warehouse.loader import Warehouse
from airflow_provider_acumatica.warehouse.notes import Note, SourceNotes

log = logging.getLogger(__name__)

SCHEMA_TTL = timedelta(hours=24)
"""How long an entity's field types are used after swagger.json was read: an endpoint changes when a customization
is published, which is rare; a task of every run reading the whole document is not."""


class SourceMemory:
    """The notes of one instance and tenant (read at first use), and what they mean."""

    def __init__(self, warehouse: Warehouse, settings: AcumaticaSettings) -> None:
        self._notes = SourceNotes(warehouse, f"{_instance(settings.instance_url)} {settings.tenant}")
        self._endpoint = f"{settings.endpoint_name}/{settings.endpoint_version}"
        self._read: dict[str, Note] | None = None
        self._unsaved: dict[str, Note] = {}

    def endpoint_schema(self, client, entity: str) -> EndpointSchema | None:
        """The endpoint's schema as far as `entity` goes (an `AcumaticaClient`'s endpoint): as kept, while less than
        SCHEMA_TTL old; else read from the instance (once per process) and kept. None when it cannot be read."""
        name = f"swagger.json {self._endpoint} {entity}"
        note = self._recall(name)
        if note is not None and datetime.now(timezone.utc) - note.noted_at < SCHEMA_TTL:
            try:
                return EndpointSchema.from_json(note.text, note.noted_at)
            except ValueError as error:
                log.warning("The kept field types of %s are unreadable, reading swagger.json again: %s", entity, error)
        schema = SCHEMAS.get(client)
        if schema is not None and schema.read_at is not None and schema.fields_of(entity) is not None:
            self._keep(name, schema.entity_json(entity), schema.read_at)
        return schema

    def largest_answer(self, interface: str, table: str) -> int:
        """The most records the instance answered at once for `table` through `interface` (0: none known)."""
        note = self._recall(_answer_name(interface, table))
        return int(note.text) if note is not None and note.text.isdigit() else 0

    def remember_largest_answer(self, interface: str, table: str, answered: int) -> None:
        """Keep `answered` as the most records answered at once for `table`, when it is more than was kept."""
        if answered > self.largest_answer(interface, table):
            self._keep(_answer_name(interface, table), str(answered), datetime.now(timezone.utc))

    def save(self) -> None:
        """Write what was learnt since the last save into the warehouse (nothing when nothing was)."""
        unsaved, self._unsaved = self._unsaved, {}
        if not unsaved:
            return
        try:
            self._notes.write(unsaved)
        except SQLAlchemyError as error:
            log.warning("The warehouse cannot keep %s; the next run learns them again: %s", sorted(unsaved), error)

    def _recalled(self) -> dict[str, Note]:
        if self._read is None:
            try:
                self._read = self._notes.read()
            except SQLAlchemyError as error:
                log.warning("The warehouse's notes of this instance are unreadable, nothing is recalled: %s", error)
                self._read = {}
        return self._read

    def _recall(self, name: str) -> Note | None:
        return self._recalled().get(name)

    def _keep(self, name: str, text: str, noted_at: datetime) -> None:
        self._recalled()[name] = self._unsaved[name] = Note(text, noted_at)


def _answer_name(interface: str, table: str) -> str:
    return f"largest answer {interface} {table}"


def _instance(url: str) -> str:
    """The instance's URL without any user or password in it."""
    parts = urlsplit(url)
    address = parts.hostname or ""
    if parts.port is not None:
        address += f":{parts.port}"
    return f"{parts.scheme}://{address}{parts.path}"
