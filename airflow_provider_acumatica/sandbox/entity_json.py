"""Contract-based REST record JSON: `id`, `rowNumber`, `note`, fields wrapped as {"value": ...} ({} when
empty), `custom`, `_links` (`self`, `files:put`); per-record fragments cached per (select, custom) until the row
changes."""

from __future__ import annotations

import re

import msgspec

from airflow_provider_acumatica.sandbox.catalog import ENTITIES, EntitySpec
from airflow_provider_acumatica.sandbox.files import FILES, Attachments
from airflow_provider_acumatica.sandbox.rendering import ValueCodec, format_duration
from airflow_provider_acumatica.sandbox.store import Row

_encode = msgspec.json.Encoder().encode
_CACHE_LIMIT = 1_200_000
"""Rendered records kept per $select/$custom variant: enough for a 1M-row table, so that a benchmark at that size
measures its client rather than the sandbox re-rendering every record (about 1 KB each)."""
_MICROSECONDS = re.compile(rb'(T\d\d:\d\d:\d\d\.\d{3})000(?=[+\-Z"])')


def _trim_microseconds(body: bytes) -> bytes:
    """msgspec writes date-times with 6 fractional digits; Acumatica's stored values have milliseconds."""
    return _MICROSECONDS.sub(rb"\1", body)


class EntityRenderer:
    """Renders rows of one entity for one endpoint path; safe to share between threads."""

    def __init__(self, spec: EntitySpec, codec: ValueCodec, entity_path: str) -> None:
        self.spec = spec
        self.codec = codec
        self.entity_path = entity_path
        self._fields = sorted((name, index + 3, type_name) for index, (name, type_name) in enumerate(spec.fields))
        self._custom = {f"{c.view}.{c.name}": (c, spec.columns.index(c.name)) for c in spec.custom}
        self._cache: dict[tuple, dict[str, tuple[Row, bytes]]] = {}
        self._compiled: dict[tuple, object] = {}

    def validate(self, select: tuple[str, ...] | None, custom: tuple[str, ...]) -> None:
        """Raise KeyError naming the first unknown $select field or $custom View.Field."""
        known = {name for name, _, _ in self._fields}
        for name in select or ():
            if name not in known and name not in self.spec.details and name != FILES:
                raise KeyError(f"$select: {self.spec.name} has no field {name!r}")
        for name in custom:
            if name not in self._custom:
                raise KeyError(
                    f"$custom: {self.spec.name} has no custom field {name!r} (known: {sorted(self._custom)})"
                )

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
        compiled = self._compiled.get((select, custom))
        if compiled is None:
            compiled = self._compiled.setdefault((select, custom), self._compile(select, custom))
        return compiled(row)

    def _compile(self, select, custom):
        """A function row -> body bytes with one dict literal per record: the hot path of every page."""
        converters = {"dt": "dt", "date": "date", "dur": "dur"}
        items = ['"note": {"value": row[2] or ""}']
        for name, index, type_name in self._fields:
            if select is None or name in select:
                value = f"{converters[type_name]}(v)" if type_name in converters else "v"
                items.append(f'{name!r}: EMPTY if (v := row[{index}]) is None else {{"value": {value}}}')
        views: dict[str, list[str]] = {}
        for name in custom:
            field, index = self._custom[name]
            views.setdefault(field.view, []).append(
                f'{field.name!r}: {{"type": {field.type_name!r}, "value": row[{index}]}}'
            )
        items.append(
            '"custom": {' + ", ".join(f"{view!r}: {{{', '.join(parts)}}}" for view, parts in views.items()) + "}"
        )
        files = Attachments.put_link(self.entity_path.rsplit("/", 1)[0], self.spec.name)
        items.append(
            f'"_links": {{"self": {self.entity_path + "/"!r} + row[0], "files:put": {files!r} + row[0] + "/{{filename}}"}}'
        )
        source = "def body(row):\n    return trim(encode({" + ", ".join(items) + "})[1:-1])\n"
        namespace = {
            "encode": _encode,
            "trim": _trim_microseconds,
            "EMPTY": {},
            "dt": self.codec.local_datetime,
            "date": self.codec.date_text,
            "dur": format_duration,
        }
        exec(compile(source, f"<render {self.spec.name}>", "exec"), namespace)  # noqa: S102 - our own generated code
        return namespace["body"]


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
