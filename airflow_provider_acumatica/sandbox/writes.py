"""Record mutations shared by the REST API and the control API: build rows from field values, assign
server keys, stamp LastModifiedDateTime with the sandbox clock, and random edits for tests."""

from __future__ import annotations

import random
import uuid
from datetime import datetime

from airflow_provider_acumatica.sandbox.errors import ApiError
from airflow_provider_acumatica.sandbox.rendering import ValueCodec
from airflow_provider_acumatica.sandbox.store import Row, Store, Table

_READ_ONLY = {"LastModifiedDateTime", "CreatedDateTime"}


class Writer:
    """Applies inserts, updates and deletes to the store; values are already parsed (stored form)."""

    def __init__(self, store: Store, codec: ValueCodec, seed: int) -> None:
        self.store = store
        self.codec = codec
        self._rng = random.Random(f"{seed}:mutations")
        self._suffix = 0

    def parse_plain(self, table: Table, record: dict) -> dict:
        """Plain control-API values ({field: value}) in stored form; unknown fields are refused."""
        types = table.spec.field_types
        parsed = {}
        for name, raw in record.items():
            if name == "id":
                continue
            if name not in types:
                raise ApiError(400, f"{table.spec.name}: unknown field {name!r}; fields are {sorted(types)}")
            try:
                parsed[name] = self.codec.parse(types[name], raw)
            except ValueError as error:
                raise ApiError(400, f"{table.spec.name}.{name}: {error}") from None
        return parsed

    def insert(self, table: Table, values: dict, stamp: datetime | None = None, row_id: str | None = None) -> Row:
        """A new record from `values` (missing fields empty); server keys assigned; stamped now."""
        spec = table.spec
        row = dict.fromkeys(spec.columns)
        row.update(
            values, id=(row_id or str(uuid.uuid4())).lower(), _rid=table.new_rid(), note=values.get("note") or ""
        )
        if spec.server_key == "TimeEntryID" and not row.get("TimeEntryID"):
            row["TimeEntryID"] = str(uuid.uuid4())
        if spec.server_key == "RecordID" and row.get("RecordID") is None:
            row["RecordID"] = max((r[table.position["RecordID"]] for r in table.snapshot()), default=0) + 1
        missing = [key for key in spec.keys if row.get(key) in (None, "")]
        if missing:
            raise ApiError(422, f"{spec.name}: key field(s) {missing} cannot be empty")
        return self._store(table, row, stamp, creating=True)

    def update(self, table: Table, existing: Row, values: dict, stamp: datetime | None = None) -> Row:
        """`existing` with `values` applied, stamped now (or with `stamp`)."""
        row = dict(zip(table.spec.columns, existing))
        row.update(values)
        return self._store(table, row, stamp, creating=False)

    def delete(self, table: Table, row_id: str) -> Row | None:
        return table.delete(row_id, self.store.clock.now())

    def _store(self, table: Table, row: dict, stamp: datetime | None, creating: bool) -> Row:
        moment = stamp or self.store.clock.now()
        if table.spec.timestamp:
            row[table.spec.timestamp] = moment
        if creating and "CreatedDateTime" in row:
            row["CreatedDateTime"] = moment
        try:
            return table.put(tuple(row[name] for name in table.spec.columns))
        except KeyError as error:
            raise ApiError(422, str(error.args[0])) from None

    def writable(self, table: Table, values: dict) -> dict:
        """`values` without the fields clients cannot set (timestamps)."""
        return {name: value for name, value in values.items() if name not in _READ_ONLY}

    def random_update(self, table: Table, count: int, stamp: datetime | None = None) -> list[str]:
        """Edit `count` random records (a description-like field gets a revision mark); all share `stamp`."""
        stamp = stamp or self.store.clock.now()
        field = _editable_text_field(table)
        ids = []
        for row in self._pick(table, count):
            self._suffix += 1
            values = {field: f"{row[table.position[field]] or ''} (rev {self._suffix})"[-200:]} if field else {}
            ids.append(self.update(table, row, values, stamp)[0])
        return ids

    def random_insert(self, table: Table, count: int, stamp: datetime | None = None) -> list[str]:
        """Insert `count` copies of random records under fresh keys."""
        stamp = stamp or self.store.clock.now()
        ids = []
        for row in self._pick(table, count, allow_repeats=True):
            values = dict(zip(table.spec.columns[3:], row[3:]))
            for key in table.spec.keys:
                self._suffix += 1
                if key == table.spec.server_key:
                    values[key] = None
                elif isinstance(values[key], str):
                    values[key] = f"{values[key]}-N{self._suffix}"
                else:
                    values[key] = 10_000_000 + self._suffix
            ids.append(self.insert(table, values, stamp)[0])
        return ids

    def random_delete(self, table: Table, count: int) -> list[str]:
        return [self.delete(table, row[0])[0] for row in self._pick(table, count)]

    def _pick(self, table: Table, count: int, allow_repeats: bool = False) -> list[Row]:
        rows = table.snapshot()
        if not rows:
            return []
        if allow_repeats:
            return [rows[self._rng.randrange(len(rows))] for _ in range(count)]
        return self._rng.sample(rows, min(count, len(rows)))


def _editable_text_field(table: Table) -> str | None:
    for name in ("Description", "Summary", "EmployeeName", "CustomerName", "VendorName"):
        if name in table.position:
            return name
    return None
