"""Records held by field: one list of values per field, as a loader takes them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import chain
from typing import Any


class RecordBatch:
    """Records held by field: `fields` maps each field name to its values, one per record (None where a record has
    no value). A loader takes whole columns, without a dict per record; `records()` gives the records as dicts."""

    __slots__ = ("fields", "_length")

    def __init__(self, fields: dict[str, Sequence[Any]], length: int) -> None:
        self.fields = fields
        self._length = length

    @classmethod
    def of_records(cls, records: Sequence[Mapping[str, Any]]) -> RecordBatch:
        """The batch of these records; fields in the order they first appear."""
        names = dict.fromkeys(chain.from_iterable(records))
        return cls({name: [record.get(name) for record in records] for name in names}, len(records))

    def __len__(self) -> int:
        return self._length

    def __repr__(self) -> str:
        return f"RecordBatch({self._length} records of fields {list(self.fields)})"

    def column(self, name: str) -> Sequence[Any]:
        """The values of field `name`, one per record (all None when no record has it)."""
        values = self.fields.get(name)
        return [None] * self._length if values is None else values

    def records(self) -> list[dict[str, Any]]:
        """The records as dicts (a field a record had no value for reads as None)."""
        if not self.fields:
            return [{} for _ in range(self._length)]
        names = list(self.fields)
        return [dict(zip(names, values)) for values in zip(*self.fields.values())]

    def take(self, positions: Sequence[int]) -> RecordBatch:
        """The records at `positions`, in that order."""
        return RecordBatch(
            {name: [values[i] for i in positions] for name, values in self.fields.items()}, len(positions)
        )
