"""Which rows a query selects: compiled $filter predicates over REST fields or DAC views, cached matches
per table version (so paging costs one scan, and any mutation re-evaluates), and detail lookups.

A filter bounding a REST date-time field (a time window: `ge ... and lt ...`) scans only the rows in that
range, found in a sorted index per table version, as a database would; the predicate still decides."""

from __future__ import annotations

import threading
from bisect import bisect_left, bisect_right
from collections import OrderedDict
from collections.abc import Callable

from airflow_provider_acumatica.sandbox.catalog import DacView
from airflow_provider_acumatica.sandbox.odata_filter import compile_filter
from airflow_provider_acumatica.sandbox.rendering import ValueCodec
from airflow_provider_acumatica.sandbox.store import Row, Store, Table
from airflow_provider_acumatica.sandbox.throttle import note_rendered

_EDM_KINDS = {
    "Edm.String": "str",
    "Edm.Int32": "int",
    "Edm.Decimal": "dec",
    "Edm.Boolean": "bool",
    "Edm.DateTimeOffset": "dt",
    "Edm.Guid": "guid",
}
_MATCH_CACHE_SIZE = 32


def page_of(rows: list, skip: int, top: int | None, cap: int | None) -> list:
    """rows[skip:skip + top], and never more than the instance's page cap when it has one."""
    limits = [limit for limit in (top, cap) if limit is not None]
    page = rows[skip : skip + min(limits)] if limits else rows[skip:]
    note_rendered(len(page))
    return page


class QueryEngine:
    """Filters tables; shared by the REST API and OData."""

    def __init__(self, store: Store, codec: ValueCodec) -> None:
        self.store = store
        self.codec = codec
        self._matches: OrderedDict[tuple, tuple[int, list[Row]]] = OrderedDict()
        self._children: dict[tuple, tuple[int, dict]] = {}
        self._indexes: dict[tuple, tuple[int, list, list[int], list[Row]]] = {}
        self._flights: dict[tuple, threading.Lock] = {}
        self._lock = threading.Lock()

    def matching(self, table: Table, dialect: str, text: str, view: DacView | None = None) -> list[Row]:
        """Rows of `table` in key order that satisfy `$filter=text` (FilterError when refused)."""
        if not text.strip():
            return table.snapshot()
        cache_key = (table.tenant, table.spec.name, dialect, view.name if view else None, text)
        version = table.version
        with self._lock:
            cached = self._matches.get(cache_key)
            flight = self._flights.setdefault(cache_key, threading.Lock())
        if cached is not None and cached[0] == version:
            return cached[1]
        with flight:  # requests with the same filter at once (parallel pages) evaluate it once
            with self._lock:
                cached = self._matches.get(cache_key)
            if cached is not None and cached[0] == version:
                return cached[1]
            resolve = self.view_resolver(table, view) if view else self.field_resolver(table)
            predicate = compile_filter(text, dialect, resolve, self.codec)
            rows, exact = self._candidates(table, predicate, view)
            if not exact:
                rows = [row for row in rows if predicate(row)]
            with self._lock:
                self._matches[cache_key] = (version, rows)
                self._matches.move_to_end(cache_key)
                while len(self._matches) > _MATCH_CACHE_SIZE:
                    self._flights.pop(self._matches.popitem(last=False)[0], None)
        return rows

    def _candidates(self, table: Table, predicate: Callable, view: DacView | None) -> tuple[list[Row], bool]:
        """The rows, in key order, that `predicate` may match: all, or those within its bounds on a REST
        date-time field; and whether they are exactly its matches (a range on that field and nothing else,
        as a database answers from an index without looking at each row)."""
        types = table.spec.field_types
        bounds = [bound for bound in getattr(predicate, "bounds", ()) if view is None and types.get(bound[0]) == "dt"]
        if not bounds:
            return table.snapshot(), False
        field = bounds[0][0]
        values, positions, snapshot = self._index(table, field)
        start, end = 0, len(values)
        for name, op, value in bounds:
            if name != field:
                continue
            if op in ("gt", "ge"):
                start = max(start, (bisect_right if op == "gt" else bisect_left)(values, value))
            else:
                end = min(end, (bisect_right if op == "le" else bisect_left)(values, value))
        exact = getattr(predicate, "only_bounds", False) and all(name == field for name, _, _ in bounds)
        if end - start == len(snapshot):  # the bounds hold every row: the key-ordered snapshot as it is
            return snapshot, exact
        return [snapshot[position] for position in sorted(positions[start:end])], exact

    def _index(self, table: Table, field: str) -> tuple[list, list[int], list[Row]]:
        """The non-null values of `field` sorted, each row's place in the key-ordered snapshot, the snapshot."""
        key = (table.tenant, table.spec.name, field)
        version = table.version
        cached = self._indexes.get(key)
        if cached is None or cached[0] != version:
            snapshot = table.snapshot()
            at = table.position[field]
            pairs = sorted((row[at], place) for place, row in enumerate(snapshot) if row[at] is not None)
            cached = self._indexes[key] = (
                version,
                [value for value, _ in pairs],
                [place for _, place in pairs],
                snapshot,
            )
        return cached[1], cached[2], cached[3]

    def children(self, child: Table, link: tuple[str, ...], key: tuple) -> list[Row]:
        """Rows of `child` whose `link` fields equal `key` (index rebuilt when the child table changes)."""
        cache_key = (child.tenant, child.spec.name, link)
        cached = self._children.get(cache_key)
        if cached is None or cached[0] != child.version:
            index: dict[tuple, list[Row]] = {}
            positions = [child.position[field] for field in link]
            for row in child.snapshot():
                index.setdefault(tuple(row[p] for p in positions), []).append(row)
            cached = self._children[cache_key] = (child.version, index)
        return cached[1].get(key, [])

    def field_resolver(self, table: Table) -> Callable:
        """REST field name -> (getter in comparable form, type)."""
        types = dict(table.spec.fields)

        def resolve(name: str):
            return self._getter(table.position[name], types[name]), types[name]

        return resolve

    def view_resolver(self, table: Table, view: DacView) -> Callable:
        """DAC field name -> (getter in comparable form, type)."""
        sources = {name: (edm, source) for name, edm, source in view.fields}

        def resolve(name: str):
            edm, source = sources[name]
            raw = self.view_getter(table, source)
            kind = table.spec.field_types.get(source) or _EDM_KINDS[edm]
            return _comparable(raw, kind, self.codec), kind

        return resolve

    def view_getter(self, table: Table, source: str) -> Callable[[Row], object]:
        """The stored value a DAC field shows: a column, the `_rid`, or a referenced record's `_rid`."""
        if source.startswith("ref:"):
            parent = self.store.table(table.tenant, source[4:])
            positions = [table.position[key] for key in parent.spec.keys]
            rid = parent.position["_rid"]

            def referenced(row: Row):
                found = parent.find(tuple(row[p] for p in positions))
                return None if found is None else found[rid]

            return referenced
        position = table.position[source]
        return lambda row: row[position]

    def _getter(self, position: int, type_name: str):
        return _comparable(lambda row: row[position], type_name, self.codec)


def _comparable(raw: Callable, kind: str, codec: ValueCodec) -> Callable:
    """Wrap a getter so its values compare the way odata_filter's literals are coerced."""
    if kind == "str":
        return lambda row: None if (value := raw(row)) is None else str(value).casefold()
    if kind == "date":
        return lambda row: None if (value := raw(row)) is None else codec.local_midnight(value)
    return raw
