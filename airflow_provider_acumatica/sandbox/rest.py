"""The contract-based REST entity API: list and get with $filter/$select/$expand/$top/$skip/$custom in key
order, PUT upsert with If-Match/If-None-Match, DELETE, and the TimeEntry actions (at once, or as long operations
whose status is polled)."""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass
from typing import Any

import msgspec

from airflow_provider_acumatica.sandbox.catalog import ENTITIES
from airflow_provider_acumatica.sandbox.entity_json import RendererPool
from airflow_provider_acumatica.sandbox.errors import ApiError
from airflow_provider_acumatica.sandbox.files import FILES, Attachments
from airflow_provider_acumatica.sandbox.odata_filter import FilterError
from airflow_provider_acumatica.sandbox.queries import QueryEngine, page_of
from airflow_provider_acumatica.sandbox.store import Row, Store, Table
from airflow_provider_acumatica.sandbox.validation import time_entry_errors
from airflow_provider_acumatica.sandbox.writes import Writer

_encode = msgspec.json.Encoder().encode
_ACTIONS = {"CompleteTimeEntry": "Completed", "OpenTimeEntry": "Open"}
_AD_HOC_SCHEMA = "$adHocSchema"
_SPECIAL = {"id", "rowNumber", "note", "custom", "_links", "error", "files"}


def _split(params: dict, name: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in params.get(name, "").split(",") if part.strip())


def _int_param(params: dict, name: str) -> int | None:
    if name not in params:
        return None
    try:
        value = int(params[name])
    except ValueError:
        value = -1
    if value < 0:
        raise ApiError(400, f"{name} must be a whole number >= 0, got {params[name]!r}")
    return value


@dataclass
class _LongOperation:
    """An action answered 202: applied by the status check after `polls_left` more."""

    tenant: str
    entity: str
    action: str
    body: Any
    polls_left: int
    finished: bool = False
    failure: ApiError | None = None


class EntityApi:
    """Answers /entity/{Endpoint}/{Version}/{Entity}... for one signed-in tenant."""

    def __init__(
        self,
        store: Store,
        writer: Writer,
        queries: QueryEngine,
        renderers: RendererPool,
        max_page_size: int | None,
        attachments: Attachments,
    ) -> None:
        self.store, self.writer, self.queries, self.renderers = store, writer, queries, renderers
        self.max_page_size = max_page_size
        self.attachments = attachments
        self._operations: dict[str, _LongOperation] = {}
        self._operations_lock = threading.Lock()

    def table(self, tenant: str, entity: str) -> Table:
        if entity not in ENTITIES:
            raise ApiError(
                404,
                f"The entity '{entity}' is not found in the endpoint. Known entities: {', '.join(sorted(ENTITIES))}",
            )
        return self.store.table(tenant, entity)

    def list(self, tenant: str, base: str, entity: str, params: dict) -> bytes:
        table = self.table(tenant, entity)
        try:
            rows = self.queries.matching(table, "v3", params.get("$filter", ""))
        except FilterError as error:
            raise ApiError(400, str(error)) from None
        skip, top = _int_param(params, "$skip") or 0, _int_param(params, "$top")
        page = page_of(rows, skip, top, self.max_page_size)
        return self._render(tenant, base, table, page, params)

    def get(self, tenant: str, base: str, entity: str, locator: list[str], params: dict) -> bytes:
        table = self.table(tenant, entity)
        if locator == [_AD_HOC_SCHEMA]:
            return _encode(_ad_hoc_schema(table))
        return self._render(tenant, base, table, [self._locate(table, locator)], params)[1:-1]

    def delete(self, tenant: str, entity: str, locator: list[str]) -> None:
        table = self.table(tenant, entity)
        self.writer.delete(table, self._locate(table, locator)[0])

    def put(self, tenant: str, base: str, entity: str, body, headers, params: dict) -> bytes:
        table = self.table(tenant, entity)
        if not isinstance(body, dict):
            raise ApiError(400, f"PUT {entity}: the body must be a JSON object of wrapped fields")
        existing = self._find_for_write(table, body)
        if headers.get("If-None-Match", "").strip() == "*" and existing is not None:
            raise ApiError(412, f"{entity}: a record with these keys exists and If-None-Match: * allows inserts only")
        if headers.get("If-Match", "").strip() == "*" and existing is None:
            raise ApiError(412, f"{entity}: no record with these keys exists and If-Match: * allows updates only")
        values, errors = self._parse_wrapped(table, body)
        if entity == "TimeEntry":
            values, errors = self._time_entry_rules(tenant, table, existing, values, errors)
        if errors:
            raise ApiError(422, "Validation failed", body=_echo_with_errors(body, errors, existing))
        if existing is None:
            row = self.writer.insert(table, values)
        else:
            row = self.writer.update(table, existing, values)
        return self._render(tenant, base, table, [row], params)[1:-1]

    def action(self, tenant: str, entity: str, action: str, body) -> None:
        """Run an action at once (204)."""
        table, row, status = self._action_target(tenant, entity, action, body)
        self.writer.update(table, row, {"ApprovalStatus": status})

    def start_action(self, tenant: str, entity: str, action: str, body, polls: int) -> str:
        """Start an action as a long operation (202): checked now, applied by the status check after `polls` more
        (see faults); returns the operation's id."""
        self._action_target(tenant, entity, action, body)
        operation = str(uuid.uuid4())
        with self._operations_lock:
            self._operations[operation] = _LongOperation(tenant, entity, action, body, polls)
        return operation

    def action_done(self, tenant: str, entity: str, action: str, operation: str) -> bool:
        """A status check of a long operation: False while it runs (202); True once it has applied the action (204),
        checked again then: an action no longer allowed fails, and its error answers this check and every later
        one. An unknown operation is a 404."""
        with self._operations_lock:
            running = self._operations.get(operation)
            if running is None or (running.tenant, running.entity, running.action) != (tenant, entity, action):
                raise ApiError(404, f"No long-running operation {operation} of {entity}/{action}.")
            if running.polls_left:
                running.polls_left -= 1
                return False
            if not running.finished:
                running.finished = True
                try:
                    self.action(tenant, entity, action, running.body)
                except ApiError as error:
                    running.failure = error
            if running.failure is not None:
                raise running.failure
        return True

    def _action_target(self, tenant: str, entity: str, action: str, body) -> tuple[Table, Row, str]:
        """The table, the record and the status an action would set, or the ApiError Acumatica would answer."""
        table = self.table(tenant, entity)
        if entity != "TimeEntry" or action not in _ACTIONS:
            raise ApiError(404, f"The action '{action}' is not found on the entity '{entity}'.")
        entry = body.get("entity") if isinstance(body, dict) else None
        if not isinstance(entry, dict):
            raise ApiError(400, f'{action}: the body must be {{"entity": {{"id": ...}}}}')
        row = self._find_for_write(table, entry)
        if row is None:
            raise ApiError(500, "No entity satisfies the condition.", message="An error has occurred.")
        status = _ACTIONS[action]
        if row[table.position["ApprovalStatus"]] == status:
            raise ApiError(500, f"The action {action} is disabled for a time entry with the status {status}.")
        return table, row, status

    def _locate(self, table: Table, locator: list[str]) -> Row:
        row = table.get(locator[0]) if len(locator) == 1 else None
        if row is None and len(locator) == len(table.spec.keys):
            types = table.spec.field_types
            try:
                row = table.find(tuple(self.writer.codec.parse(types[k], v) for k, v in zip(table.spec.keys, locator)))
            except ValueError:
                row = None
        if row is None:
            raise ApiError(
                404, f"No entity satisfies the condition: {table.spec.name} {'/'.join(locator)} does not exist."
            )
        return row

    def _find_for_write(self, table: Table, body: dict) -> Row | None:
        if body.get("id"):
            row = table.get(str(body["id"]))
            if row is not None:
                return row
        key = []
        for name in table.spec.keys:
            wrapped = body.get(name)
            if not isinstance(wrapped, dict) or wrapped.get("value") in (None, ""):
                return None
            try:
                key.append(self.writer.codec.parse(table.spec.field_types[name], wrapped["value"]))
            except ValueError:
                return None
        return table.find(tuple(key))

    def _parse_wrapped(self, table: Table, body: dict) -> tuple[dict, dict[str, str]]:
        """Stored values of the wrapped fields Acumatica knows; unknown fields are ignored like Acumatica does."""
        types, values, errors = table.spec.field_types, {}, {}
        for name, wrapped in body.items():
            if name in _SPECIAL or name not in types:
                continue
            if not isinstance(wrapped, dict):
                errors[name] = f"'{name}' must be wrapped as {{\"value\": ...}}."
                continue
            if "value" not in wrapped:
                continue
            try:
                values[name] = self.writer.codec.parse(types[name], wrapped["value"])
            except ValueError as error:
                errors[name] = str(error)
        custom = body.get("custom") or {}
        for spec in table.spec.custom:
            field = (custom.get(spec.view) or {}).get(spec.name)
            if isinstance(field, dict) and "value" in field:
                values[spec.name] = field["value"]
        return self.writer.writable(table, values), errors

    def _time_entry_rules(self, tenant, table, existing, values, errors):
        if existing is not None and existing[table.position["ApprovalStatus"]] == "Completed":
            errors.setdefault(
                "ApprovalStatus", "The time entry is completed and cannot be modified; run OpenTimeEntry first."
            )
        values.pop("ApprovalStatus", None)
        if existing is not None:
            values.pop("TimeEntryID", None)
        merged = (
            dict(zip(table.spec.columns, existing))
            if existing is not None
            else {
                "Billable": False,
                "ApprovalStatus": "Open",
                "Overtime": 0,
                "BillableOvertime": 0,
                "CertifiedJob": False,
            }
        )
        merged.update(values)
        if merged.get("Billable") and merged.get("BillableTime") is None:
            merged["BillableTime"] = merged.get("TimeSpent")
        if not merged.get("Billable") and merged.get("BillableTime") is None:
            merged["BillableTime"] = 0
        errors.update({k: v for k, v in time_entry_errors(self.store, tenant, merged).items() if k not in errors})
        return {k: v for k, v in merged.items() if k in table.position and k not in ("id", "_rid")}, errors

    def _render(self, tenant: str, base: str, table: Table, rows: list[Row], params: dict) -> bytes:
        renderer = self.renderers.get(base, table.spec.name)
        custom = _split(params, "$custom")
        expand = _split(params, "$expand")
        for name in expand:
            if name not in table.spec.details and name != FILES:
                raise ApiError(
                    400,
                    f"$expand: {table.spec.name} has no detail {name!r} (details: {sorted(table.spec.details) or 'none'})",
                )
        select, nested = _nested_select(table, _split(params, "$select") or None, expand)
        try:
            renderer.validate(select, custom)
        except KeyError as error:
            raise ApiError(400, error.args[0]) from None
        fields = None if select is None else frozenset(select)
        parts = []
        for number, row in enumerate(rows, start=1):
            extra = b"".join(
                self._files(tenant, base, table, row)
                if name == FILES
                else self._detail(tenant, base, table, row, name, nested.get(name))
                for name in expand
            )
            parts.append(renderer.record(row, number, fields, custom, extra))
        return b"[" + b",".join(parts) + b"]"

    def _detail(self, tenant: str, base: str, table: Table, row: Row, name: str, fields: frozenset | None) -> bytes:
        child_entity, link = table.spec.details[name]
        child = self.store.table(tenant, child_entity)
        children = self.queries.children(child, link, tuple(row[table.position[field]] for field in link))
        renderer = self.renderers.get(base, child_entity)
        records = b",".join(renderer.record(r, n, fields, ()) for n, r in enumerate(children, start=1))
        return b',"%s":[%s]' % (name.encode(), records)

    def _files(self, tenant: str, base: str, table: Table, row: Row) -> bytes:
        listing = self.attachments.listing(tenant, base, table.spec.name, row[0])
        return b',"%s":%s' % (FILES.encode(), _encode(listing))


def _ad_hoc_schema(table: Table) -> dict:
    """`{Entity}/$adHocSchema`: a record template whose `custom` block names every user-defined field with its type."""
    custom: dict[str, dict] = {}
    for field in table.spec.custom:
        custom.setdefault(field.view, {})[field.name] = {"type": field.type_name, "value": None}
    return {"id": None, "rowNumber": 1, "note": {}, **{name: {} for name, _ in table.spec.fields}, "custom": custom}


def _nested_select(table: Table, select: tuple[str, ...] | None, expand: tuple[str, ...]):
    """$select split into the record's own fields and, per expanded detail, its fields (`Tasks/ProjectTaskID`)."""
    if select is None:
        return None, {}
    own, nested = [], {}
    for name in select:
        detail, slash, field = name.partition("/")
        if not slash:
            own.append(name)
            continue
        if detail not in table.spec.details:
            raise ApiError(400, f"$select: {table.spec.name} has no detail {detail!r} (in {name!r})")
        if detail not in expand:
            raise ApiError(400, f"$select: {name!r} names a field of the detail {detail!r}; add $expand={detail}")
        if field not in ENTITIES[table.spec.details[detail][0]].field_types:
            raise ApiError(400, f"$select: the detail {detail!r} of {table.spec.name} has no field {field!r}")
        nested.setdefault(detail, set()).add(field)
    return tuple(own), {detail: frozenset(fields) for detail, fields in nested.items()}


def _echo_with_errors(body: dict, errors: dict[str, str], existing: Row | None) -> dict:
    """The entity as sent, each bad field carrying its `error`, as Acumatica's 422 answer does."""
    echo = {name: (dict(value) if isinstance(value, dict) else value) for name, value in body.items()}
    if existing is not None:
        echo["id"] = existing[0]
    for field, message in errors.items():
        echo[field] = {**(echo.get(field) if isinstance(echo.get(field), dict) else {}), "error": message}
    echo["error"] = "Saving the record raised at least one error. Please review the errors."
    return echo
