"""Contract-based REST record JSON: `id`, `rowNumber`, `note`, fields wrapped as {"value": ...} ({} when
empty), `custom`, `_links`; per-record fragments cached per (select, custom) until the row changes."""

from __future__ import annotations

import msgspec

from airflow_provider_acumatica.sandbox.catalog import ENTITIES, EntitySpec
from airflow_provider_acumatica.sandbox.rendering import ValueCodec
from airflow_provider_acumatica.sandbox.store import Row

_encode = msgspec.json.Encoder().encode
_CACHE_LIMIT = 400_000


class EntityRenderer:
    """Renders rows of one entity for one endpoint path; safe to share between threads."""

    def __init__(self, spec: EntitySpec, codec: ValueCodec, entity_path: str) -> None:
        self.spec = spec
        self.codec = codec
        self.entity_path = entity_path
        self._fields = sorted((name, index + 3, type_name) for index, (name, type_name) in enumerate(spec.fields))
        self._custom = {f"{c.view}.{c.name}": (c, spec.columns.index(c.name)) for c in spec.custom}
        self._cache: dict[tuple, dict[str, tuple[Row, bytes]]] = {}

    def validate(self, select: tuple[str, ...] | None, custom: tuple[str, ...]) -> None:
        """Raise KeyError naming the first unknown $select field or $custom View.Field."""
        known = {name for name, _, _ in self._fields}
        for name in select or ():
            if name not in known and name not in self.spec.details:
                raise KeyError(f"$select: {self.spec.name} has no field {name!r}")
        for name in custom:
            if name not in self._custom:
                raise KeyError(f"$custom: {self.spec.name} has no custom field {name!r} (known: {sorted(self._custom)})")

    def record(self, row: Row, row_number: int, select, custom, expansions: bytes = b"") -> bytes:
        """One record; `expansions` is `,"Detail":[...]` text spliced in before the closing brace."""
        variant = self._cache.get((select, custom))
        if variant is None:
            variant = self._cache.setdefault((select, custom), {})
        cached = variant.get(row[0])
        if cached is None or cached[0] is not row:
            if len(variant) >= _CACHE_LIMIT:
                variant.clear()
            cached = variant[row[0]] = (row, self._body(row, select, custom))
        return b'{"id":"%s","rowNumber":%d,%s%s}' % (row[0].encode(), row_number, cached[1], expansions)

    def _body(self, row: Row, select, custom) -> bytes:
        wire = self.codec.wire
        body: dict = {"note": {"value": row[2] or ""}}
        for name, index, type_name in self._fields:
            if select is None or name in select:
                value = row[index]
                body[name] = {} if value is None else {"value": wire(type_name, value)}
        custom_block: dict = {}
        for name in custom:
            field, index = self._custom[name]
            custom_block.setdefault(field.view, {})[field.name] = {"type": field.type_name, "value": row[index]}
        body["custom"] = custom_block
        body["_links"] = {
            "self": f"{self.entity_path}/{row[0]}",
            "files:put": f"{self.entity_path.rsplit('/', 1)[0]}/files/PX.Objects.PM.{self.spec.name}/{row[0]}/{{filename}}",
        }
        return _encode(body)[1:-1]


class RendererPool:
    """One EntityRenderer per (endpoint path, entity), created on first use."""

    def __init__(self, codec: ValueCodec) -> None:
        self.codec = codec
        self._renderers: dict[tuple[str, str], EntityRenderer] = {}

    def get(self, base_path: str, entity: str) -> EntityRenderer:
        renderer = self._renderers.get((base_path, entity))
        if renderer is None:
            renderer = self._renderers.setdefault(
                (base_path, entity), EntityRenderer(ENTITIES[entity], self.codec, f"{base_path}/{entity}")
            )
        return renderer
