"""The answer a route produces, before the HTTP layer writes it (or drops/truncates it for a fault)."""

from __future__ import annotations

from dataclasses import dataclass, field

import msgspec

from airflow_provider_acumatica.sandbox.errors import ApiError

JSON = "application/json; charset=utf-8"
_encode = msgspec.json.Encoder().encode


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str = JSON
    headers: list[tuple[str, str]] = field(default_factory=list)
    drop: bool = False
    truncate: bool = False


def json_response(payload, status: int = 200, headers: list[tuple[str, str]] | None = None) -> Response:
    return Response(status, _encode(payload), JSON, headers or [])


def raw_json(body: bytes, status: int = 200) -> Response:
    return Response(status, body, JSON)


def error_response(error: ApiError) -> Response:
    return json_response(error.payload(), error.status, list(error.headers.items()))


def empty(status: int = 204, headers: list[tuple[str, str]] | None = None) -> Response:
    return Response(status, b"", JSON, headers or [])
