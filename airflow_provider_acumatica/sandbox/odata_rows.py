"""How OData rows are shaped: the fields a DAC view shows ($select), navigation properties ($expand), the order
($orderby, by default the key) and key predicates (`PMProject(5)`, `PMTask(ProjectID=1,TaskID=2)`)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from airflow_provider_acumatica.sandbox.catalog import DACS, DacView, Navigation
from airflow_provider_acumatica.sandbox.errors import ApiError

if TYPE_CHECKING:
    from airflow_provider_acumatica.sandbox.app import SandboxApp

_KEY_PART = re.compile(r"\s*(?:(?P<name>[A-Za-z_]\w*)\s*=\s*)?(?P<value>'(?:[^']|'')*'|[^,'=]+?)\s*(?:,|$)")
_KEY_LITERALS = {
    "Edm.Int32": re.compile(r"^-?\d+$"),
    "Edm.String": re.compile(r"^'(?:[^']|'')*'$"),
    "Edm.Guid": re.compile(r"^[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$"),
}
_EDM_KINDS = {"Edm.Int32": "int", "Edm.Boolean": "bool", "Edm.Guid": "guid", "Edm.DateTimeOffset": "dt"}


def _split(params: dict, name: str) -> list[str]:
    return [part.strip() for part in params.get(name, "").split(",") if part.strip()]


class Projection:
    """Renders rows of one DAC view as OData JSON objects: the selected fields, plus expanded navigations."""

    def __init__(self, app: SandboxApp, tenant: str, view: DacView, params: dict) -> None:
        self.app, self.tenant, self.view = app, tenant, view
        table = app.store.table(tenant, view.entity)
        types = table.spec.field_types
        self.getters = {
            name: (app.queries.view_getter(table, source), types.get(source, _EDM_KINDS.get(edm, "str")))
            for name, edm, source in view.fields
        }
        self.selected = _split(params, "$select") or list(self.getters)
        unknown = [name for name in self.selected if name not in self.getters]
        if unknown:
            raise ApiError(400, f"$select: {view.name} has no field(s) {unknown}")
        self.expansions = [self._expansion(name) for name in _split(params, "$expand")]

    def render(self, rows: list) -> list[dict]:
        wire = self.app.codec.wire
        getters = [(name, *self.getters[name]) for name in self.selected]
        records = [{name: wire(kind, getter(row)) for name, getter, kind in getters} for row in rows]
        for navigation, target, index in self.expansions:
            ours = [self.getters[mine][0] for mine, _ in navigation.pairs]
            for record, row in zip(records, rows):
                related = index.get(tuple(getter(row) for getter in ours), [])
                if navigation.collection:
                    record[navigation.name] = target.render(related)
                else:
                    record[navigation.name] = target.render(related[:1])[0] if related else None
        return records

    def _expansion(self, name: str) -> tuple[Navigation, Projection, dict]:
        """A navigation to expand, the projection of its target, and the target's rows by the linked fields."""
        navigation = next((n for n in self.view.navigations if n.name == name), None)
        if navigation is None:
            if "(" in name or "/" in name:
                raise ApiError(
                    400,
                    f"$expand: options and paths inside $expand ({name!r}) are not supported; "
                    "expand a navigation property by its name.",
                )
            names = [n.name for n in self.view.navigations]
            raise ApiError(
                400, f"$expand: {self.view.name} has no navigation property {name!r} (has: {names or 'none'})"
            )
        target = Projection(self.app, self.tenant, DACS[navigation.target], {})
        theirs = [target.getters[field][0] for _, field in navigation.pairs]
        index: dict[tuple, list] = {}
        for row in self.app.store.table(self.tenant, target.view.entity).snapshot():
            index.setdefault(tuple(getter(row) for getter in theirs), []).append(row)
        return navigation, target, index


def order_rows(rows: list, view: DacView, text: str, getters: dict) -> list:
    """The rows in `$orderby` order (terms `Field [asc|desc]`); by default the DAC's key order."""
    if not text.strip():
        order = [(key, False) for key in view.keys]
    else:
        order = []
        for term in text.split(","):
            parts = term.split()
            direction_ok = len(parts) == 1 or (len(parts) == 2 and parts[1] in ("asc", "desc"))
            if not parts or parts[0] not in getters or not direction_ok:
                raise ApiError(400, f"$orderby: cannot order {view.name} by {term.strip()!r}")
            order.append((parts[0], len(parts) == 2 and parts[1] == "desc"))
    for name, descending in reversed(order):
        getter = getters[name][0]
        rows = sorted(rows, key=lambda row: _sort_key(getter(row)), reverse=descending)
    return rows


def _sort_key(value):
    return (value is not None, value.casefold() if isinstance(value, str) else value)


def key_filter(view: DacView, text: str) -> str:
    """The v4 $filter a key predicate stands for: `5` for a one-field key, or `Name=value,...` naming every key
    field; values as OData v4 writes them (numbers, 'strings', bare GUIDs). 400 otherwise."""
    parts, position = [], 0
    while position < len(text):
        match = _KEY_PART.match(text, position)
        if match is None or match.end() == position:
            raise ApiError(400, f"{view.name}: cannot read the key predicate ({text})")
        parts.append((match.group("name"), match.group("value").strip()))
        position = match.end()
    if len(parts) == 1 and parts[0][0] is None and len(view.keys) == 1:
        parts = [(view.keys[0], parts[0][1])]
    named = dict(parts)
    if None in named or sorted(named) != sorted(view.keys) or len(parts) != len(view.keys):
        raise ApiError(
            400,
            f"{view.name}: the key predicate ({text}) must name each key field once: "
            f"{', '.join(f'{key}=...' for key in view.keys)}",
        )
    types = {name: edm for name, edm, _ in view.fields}
    for name, value in parts:
        if not _KEY_LITERALS.get(types[name], re.compile("$^")).match(value):
            raise ApiError(400, f"{view.name}: {value} is not a {types[name]} literal for the key field {name}")
    return " and ".join(f"{name} eq {value}" for name, value in parts)
