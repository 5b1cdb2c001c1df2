"""Errors the warehouse raises, each naming the table, column, field or row involved and what to do."""

from __future__ import annotations


class WarehouseError(ValueError):
    """A load cannot proceed because of its input or of the warehouse's current layout."""


class SchemaConflictError(WarehouseError):
    """Fields, key fields or an existing table do not agree on the table's layout."""


class ValueMisfitError(WarehouseError):
    """A value does not fit the type of its column."""
