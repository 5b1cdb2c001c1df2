"""The endpoint's OpenAPI document (`GET /entity/{Endpoint}/{Version}/swagger.json`), built from the catalog.

Shaped like the document Acumatica publishes (OpenAPI 3.0.1, which clients such as `easy-acumatica` read):
each entity is a schema under `components.schemas`, `allOf` the shared `Entity` base and an object of its
fields; every field is a reference to a value wrapper (`StringValue`, `DecimalValue`, `DateTimeValue`,
`BooleanValue`, `IntValue`, `GuidValue`...: `{"value": ...}`); a detail collection is an array of its entity;
custom fields are not listed (they travel in the `custom` block). Like Acumatica's, the document does not tell
a date from a date-time (both are `DateTimeValue`) nor a time span from text (`StringValue`, "HH:MM").
Paths: list, upsert, get and delete by id, the ad-hoc schema, files, and each action.
"""

from __future__ import annotations

from functools import lru_cache

from airflow_provider_acumatica.sandbox.catalog import ENTITIES, EntitySpec

ACTIONS: dict[str, tuple[str, ...]] = {"TimeEntry": ("CompleteTimeEntry", "OpenTimeEntry")}
"""Entity -> the actions the sandbox runs on it (see rest.py)."""

_WRAPPERS = {
    "str": "StringValue",
    "int": "IntValue",
    "dec": "DecimalValue",
    "bool": "BooleanValue",
    "dt": "DateTimeValue",
    "date": "DateTimeValue",
    "dur": "StringValue",
    "guid": "GuidValue",
}
"""Catalog field type -> the value wrapper Acumatica declares for it."""

_WRAPPER_VALUES = {
    "StringValue": {"type": "string"},
    "DecimalValue": {"type": "number", "format": "double"},
    "DoubleValue": {"type": "number", "format": "double"},
    "DateTimeValue": {"type": "string", "format": "date-time"},
    "BooleanValue": {"type": "boolean"},
    "IntValue": {"type": "integer", "format": "int32"},
    "ShortValue": {"type": "integer", "format": "int32"},
    "LongValue": {"type": "integer", "format": "int64"},
    "ByteValue": {"type": "integer", "format": "int32"},
    "GuidValue": {"type": "string", "format": "uuid"},
}

_QUERY_PARAMETERS = {
    "select": "The fields of the entity to return ($select).",
    "filter": "The conditions records must meet, in OData v3 syntax ($filter).",
    "expand": "The linked and detail entities to return ($expand).",
    "custom": "The custom fields to return, as View.Field ($custom).",
    "skip": "The number of records to skip ($skip).",
    "top": "The number of records to return ($top).",
}


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json_content(schema: dict) -> dict:
    return {"content": {"application/json": {"schema": schema}, "text/json": {"schema": schema}}}


@lru_cache(maxsize=8)
def swagger_document(endpoint: str, version: str) -> dict:
    """The OpenAPI document of one endpoint version, as Acumatica serves it (to a signed-in user). Not to be
    changed by callers: it is built once per version."""
    schemas: dict = {
        name: {"type": "object", "properties": {"value": value}} for name, value in _WRAPPER_VALUES.items()
    }
    schemas.update(_base_schemas())
    paths: dict = {}
    for spec in ENTITIES.values():
        schemas[spec.name] = _entity_schema(spec)
        paths.update(_entity_paths(spec))
        for action in ACTIONS.get(spec.name, ()):
            schemas[action] = {
                "required": ["entity"],
                "type": "object",
                "properties": {"entity": _ref(spec.name), "parameters": {"type": "object"}},
            }
    return {
        "openapi": "3.0.1",
        "info": {"title": f"{endpoint}/{version}", "version": version},
        "servers": [{"url": f"/entity/{endpoint}/{version}"}],
        "paths": paths,
        "components": {"schemas": schemas, "parameters": _parameters()},
        "tags": [{"name": spec.name, "description": f"{spec.name} entity"} for spec in ENTITIES.values()],
    }


def _base_schemas() -> dict:
    return {
        "Entity": {
            "type": "object",
            "properties": {
                "id": {"type": "string", "format": "uuid"},
                "rowNumber": {"type": "integer", "format": "int64"},
                "note": _ref("StringValue"),
                "custom": {"type": "object", "additionalProperties": {"type": "object"}},
                "error": {"type": "string"},
                "files": {"type": "array", "items": _ref("FileLink")},
                "_links": {"type": "object", "additionalProperties": {"type": "string"}},
            },
        },
        "FileLink": {
            "type": "object",
            "properties": {
                "id": {"type": "string", "format": "uuid"},
                "filename": {"type": "string"},
                "href": {"type": "string"},
                "comment": {"type": "string", "nullable": True},
            },
        },
    }


def _entity_schema(spec: EntitySpec) -> dict:
    properties: dict = {field: _ref(_WRAPPERS[kind]) for field, kind in spec.fields}
    for detail, (entity, _keys) in spec.details.items():
        properties[detail] = {"type": "array", "items": _ref(entity)}
    return {"allOf": [_ref("Entity"), {"type": "object", "properties": properties}]}


def _parameters() -> dict:
    parameters = {
        name: {
            "name": f"${name}",
            "in": "query",
            "description": text,
            "schema": {"type": "integer", "format": "int32"} if name in ("skip", "top") else {"type": "string"},
        }
        for name, text in _QUERY_PARAMETERS.items()
    }
    parameters["id"] = {
        "name": "id",
        "in": "path",
        "required": True,
        "description": "The record's id.",
        "schema": {"type": "string", "format": "uuid"},
    }
    parameters["ids"] = {
        "name": "ids",
        "in": "path",
        "required": True,
        "description": "The values of the entity's key fields, separated by slashes.",
        "schema": {"type": "string"},
    }
    parameters["filename"] = {"name": "filename", "in": "path", "required": True, "schema": {"type": "string"}}
    return parameters


def _operation(
    entity: str,
    operation: str,
    summary: str,
    parameters: tuple[str, ...] = (),
    *,
    body: dict | None = None,
    answer: dict | None = None,
) -> dict:
    responses = (
        {"200": {"description": "Success", **_json_content(answer)}} if answer else {"204": {"description": "Success"}}
    )
    if operation.startswith("InvokeAction"):
        responses["202"] = {"description": "Started as a long-running operation: poll the Location"}
    responses.update({status: {"description": text} for status, text in _ERRORS.items()})
    details = {
        "tags": [entity],
        "summary": summary,
        "operationId": f"{entity}_{operation}",
        "parameters": [{"$ref": f"#/components/parameters/{name}"} for name in parameters],
        "responses": responses,
    }
    if body is not None:
        details["requestBody"] = {"required": True, **_json_content(body)}
    return details


_ERRORS = {
    "400": "Bad request",
    "401": "Not signed in",
    "403": "Forbidden",
    "404": "Not found",
    "412": "Precondition failed",
    "422": "Invalid data",
    "429": "Too many requests",
    "500": "Server error",
}
_READ = ("select", "filter", "expand", "custom")


def _entity_paths(spec: EntitySpec) -> dict:
    entity, model = spec.name, _ref(spec.name)
    paths = {
        f"/{entity}": {
            "get": _operation(
                entity,
                "GetList",
                f"Retrieves records of {entity}",
                (*_READ, "skip", "top"),
                answer={"type": "array", "items": model},
            ),
            "put": _operation(
                entity,
                "PutEntity",
                f"Creates or updates a record of {entity}",
                ("select", "expand", "custom"),
                body=model,
                answer=model,
            ),
        },
        f"/{entity}/{{id}}": {
            "get": _operation(
                entity,
                "GetById",
                f"Retrieves a record of {entity} by its id",
                ("id", "select", "expand", "custom"),
                answer=model,
            ),
            "delete": _operation(entity, "DeleteById", f"Deletes a record of {entity} by its id", ("id",)),
        },
        f"/{entity}/$adHocSchema": {
            "get": _operation(
                entity, "GetAdHocSchema", f"Retrieves the schema of custom fields of {entity}", answer=model
            ),
        },
        f"/{entity}/{{ids}}/files/{{filename}}": {
            "put": _operation(entity, "PutFile", f"Attaches a file to a record of {entity}", ("ids", "filename")),
        },
    }
    for action in ACTIONS.get(entity, ()):
        paths[f"/{entity}/{action}"] = {
            "post": _operation(
                entity, f"InvokeAction_{action}", f"Runs the action {action} on a record of {entity}", body=_ref(action)
            ),
        }
    return paths
