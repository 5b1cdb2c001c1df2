"""The batches a load is handed, checked and brought to one form before anything is staged: rows held by field.

A batch comes as rows (dicts keyed by field) or held by field (each field's values, one per row, None for no
value). Rows are turned into the second form, the one staging converts column by column.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from itertools import chain, repeat
from typing import Any

from airflow_provider_acumatica.warehouse.errors import WarehouseError


def columns_of_rows(rows: Iterable[Mapping[str, Any]], table: str) -> dict[str, list[Any]]:
    """The rows held by field, fields in the order they first appear (None where a row has no value for one);
    ``table`` names the batch in errors."""
    rows = list(rows)
    for position, row in enumerate(rows):
        if type(row) is not dict:
            if not isinstance(row, Mapping):
                raise TypeError(f"table {table!r}: row {position} of the batch is a {type(row).__name__}, not a dict")
            rows[position] = dict(row)
    return {field: list(map(dict.get, rows, repeat(field))) for field in _fields_of(rows)}


def row_count(columns: Mapping[str, Sequence[Any]], table: str) -> int:
    """The rows of a batch held by field; refuses fields whose values are not a sequence of one length."""
    if not isinstance(columns, Mapping):
        raise TypeError(f"table {table!r}: the batch is a {type(columns).__name__}, not a dict of field -> values")
    lengths = {}
    for field, values in columns.items():
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
            raise TypeError(
                f"table {table!r}: the values of field {field!r} are a {type(values).__name__}, "
                f"not a list with one value per row"
            )
        lengths[field] = len(values)
    if len(set(lengths.values())) > 1:
        raise WarehouseError(
            f"table {table!r}: the batch's fields have different numbers of values "
            f"({lengths}); give each field one value per row, None for no value"
        )
    return next(iter(lengths.values()), 0)


def _fields_of(rows: Sequence[dict[str, Any]]) -> Iterable[str]:
    """The fields of the rows, in the order they first appear: usually the first row's, which one pass in C
    confirms more cheaply than collecting the fields in order."""
    if not rows or len(set().union(*rows)) == len(rows[0]):
        return rows[0] if rows else ()
    return dict.fromkeys(chain.from_iterable(rows))
