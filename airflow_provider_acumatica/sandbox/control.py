"""The control API under /_sandbox/ (a path no Acumatica has, no auth): clock, records, faults, counters,
and the ground truth of a table."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import msgspec

from airflow_provider_acumatica.sandbox.catalog import ENTITIES
from airflow_provider_acumatica.sandbox.errors import ApiError, number_field
from airflow_provider_acumatica.sandbox.rendering import truth_value
from airflow_provider_acumatica.sandbox.responses import Response, error_response, json_response

if TYPE_CHECKING:
    from airflow_provider_acumatica.sandbox.app import SandboxApp

_RECORDS_PATH = re.compile(r"^/_sandbox/tenants/([^/]+)/entities/([^/]+)/(insert|update|delete|truth)$")


def handle_control(app: SandboxApp, method: str, path: str, body: bytes) -> Response:
    """Answer one control request; errors come back as 400/404 JSON naming the problem."""
    try:
        payload = msgspec.json.decode(body) if body else {}
        return _route(app, method, path.rstrip("/"), payload)
    except msgspec.DecodeError as error:
        return error_response(ApiError(400, f"control API: the body is not valid JSON: {error}"))
    except ApiError as error:
        return error_response(error)


def _route(app: SandboxApp, method: str, path: str, payload) -> Response:
    clock = app.store.clock
    if path == "/_sandbox/counters" and method == "GET":
        counters = app.counters.snapshot()
        counters["open_sessions"] = app.sessions.open_count(clock.now())
        return json_response(counters)
    if path == "/_sandbox/counters/reset" and method == "POST":
        app.counters.reset()
        return json_response(app.counters.snapshot())
    if path == "/_sandbox/clock" and method == "GET":
        return json_response({"now": _iso(clock.now())})
    if path == "/_sandbox/clock" and method == "POST":
        return json_response({"now": _iso(_move_clock(app, payload))})
    if path == "/_sandbox/faults" and method == "POST":
        if isinstance(payload, dict) and payload.get("kind") == "mutate" and isinstance(payload.get("mutation"), dict):
            mutation = payload["mutation"]  # checked now: a bad one would fail the client request it fires on
            _planned(app, str(mutation.get("tenant")), str(mutation.get("entity")), str(mutation.get("op")), mutation)
        return json_response({"id": app.faults.add(payload)})
    if path == "/_sandbox/faults/held" and method == "POST":
        count = number_field(payload, "count", 1, int, "control API")
        return json_response(
            {"held": app.faults.wait_held(count, number_field(payload, "timeout_seconds", 30, float, "control API"))}
        )
    if path == "/_sandbox/faults" and method == "DELETE":
        app.faults.clear()
        return json_response({"cleared": True})
    match = _RECORDS_PATH.match(path)
    if match:
        tenant, entity, op = match.groups()
        if op == "truth" and method == "GET":
            return json_response(truth(app, tenant, entity))
        if op != "truth" and method == "POST":
            return json_response({"ids": mutate(app, tenant, entity, op, payload)})
    raise ApiError(404, f"control API: no route {method} {path}")


def _move_clock(app: SandboxApp, payload: dict):
    clock = app.store.clock
    if "advance_seconds" in payload:
        return clock.advance(number_field(payload, "advance_seconds", 0, float, "control API"))
    if "set" in payload:
        text = str(payload["set"]).strip()
        if not (text.endswith("Z") or re.search(r"[+-]\d{2}:\d{2}$", text)):
            raise ApiError(400, f"clock: give an ISO date-time with an offset or Z, got {text!r}")
        try:
            return clock.set(app.codec.parse_datetime(text))
        except ValueError as error:
            raise ApiError(400, f"clock: {error}") from None
    raise ApiError(400, 'clock: send {"advance_seconds": N} or {"set": "2026-01-01T00:00:00Z"}')


def _tenant(app: SandboxApp, tenant: str) -> str:
    found = app.settings.tenant_named(tenant)
    if found is None:
        raise ApiError(404, f"control API: unknown tenant {tenant!r}; tenants are {list(app.settings.tenants)}")
    return found


def _table(app: SandboxApp, tenant: str, entity: str):
    if entity not in ENTITIES:
        raise ApiError(404, f"control API: unknown entity {entity!r}; entities are {sorted(ENTITIES)}")
    return app.store.table(_tenant(app, tenant), entity)


def mutate(app: SandboxApp, tenant: str, entity: str, op: str, payload: dict) -> list[str]:
    """insert/update/delete by explicit records or ids, or {"random": N} (optionally with one shared "timestamp")."""
    return _planned(app, tenant, entity, op, payload)()


def _planned(app: SandboxApp, tenant: str, entity: str, op: str, payload: dict):
    """The mutation as a function that carries it out, once its shape is checked (400 naming the field)."""
    table = _table(app, tenant, entity)
    if op not in ("insert", "update", "delete"):
        raise ApiError(400, f"control API: unknown operation {op!r}; use insert, update or delete")
    where = f"control API: {op} {entity}"
    if not isinstance(payload, dict):
        raise ApiError(400, f"{where}: the body must be a JSON object, got {type(payload).__name__}")
    writer = app.writer
    stamp = _timestamp(app, payload, where)
    if "random" in payload:
        count = payload["random"]
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ApiError(400, f"{where}: `random` must be a whole number >= 0, got {count!r}")
        write = {"insert": writer.random_insert, "update": writer.random_update}.get(op)
        return (lambda: write(table, count, stamp)) if write else (lambda: writer.random_delete(table, count))
    if op == "delete":
        ids = _list_of(payload, "ids", str, "record ids (strings)", where)
        return lambda: _delete(app, table, ids)
    records = _list_of(payload, "records", dict, "records (JSON objects)", where)
    return lambda: _write(app, table, op, records, stamp)


def _delete(app: SandboxApp, table, ids: list[str]) -> list[str]:
    missing = [row_id for row_id in ids if table.get(row_id) is None]
    if missing:
        raise ApiError(404, f"control API: {table.spec.name} in {table.tenant} has no record(s) {missing}")
    return [app.writer.delete(table, row_id)[0] for row_id in ids]


def _write(app: SandboxApp, table, op: str, records: list[dict], stamp) -> list[str]:
    writer, ids = app.writer, []
    for record in records:
        values = writer.parse_plain(table, record)
        if op == "insert":
            ids.append(writer.insert(table, values, stamp, record.get("id"))[0])
            continue
        existing = table.get(str(record.get("id", "")))
        if existing is None:
            raise ApiError(
                404, f"control API: {table.spec.name} in {table.tenant} has no record {record.get('id')!r} to update"
            )
        ids.append(writer.update(table, existing, values, stamp)[0])
    return ids


def _list_of(payload: dict, field: str, kind: type, what: str, where: str) -> list:
    """`payload[field]` as a list of `kind`; a 400 naming the field when absent or of another shape."""
    if field not in payload:
        raise ApiError(400, f"{where}: send `{field}` (a list of {what}) or `random` (a whole number)")
    value = payload[field]
    if not isinstance(value, list) or not all(isinstance(item, kind) for item in value):
        raise ApiError(400, f"{where}: `{field}` must be a list of {what}, got {value!r}")
    return value


def _timestamp(app: SandboxApp, payload: dict, where: str):
    """The shared modification time a mutation stamps, if it names one."""
    text = payload.get("timestamp")
    if not text:
        return None
    try:
        return app.codec.parse_datetime(str(text))
    except ValueError as error:
        raise ApiError(400, f"{where}: `timestamp` must be an ISO date-time, got {text!r}: {error}") from None


def truth(app: SandboxApp, tenant: str, entity: str) -> dict:
    """Every record as stored (plain values, UTC date-times) in key order, and the deletions log."""
    table = _table(app, tenant, entity)
    fields = [(table.position[name], name, type_name) for name, type_name in table.spec.fields]
    fields += [(table.position[c.name], c.name, c.value_type) for c in table.spec.custom]
    records = []
    for row in table.snapshot():
        record = {"id": row[0]}
        record.update({name: truth_value(type_name, row[index]) for index, name, type_name in fields})
        records.append(record)
    deleted = [{"id": row_id, "deleted_at": truth_value("dt", moment)} for row_id, moment in table.deletions]
    return {"records": records, "deleted": deleted}


def _iso(moment) -> str:
    return truth_value("dt", moment)
