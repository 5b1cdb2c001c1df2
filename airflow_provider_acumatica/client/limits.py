"""What more than one layer allows (the connection, the operator, the bundle's config, the command line), written
once: page sizes, concurrent requests, the kinds of table source."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class WholeNumbers:
    """The whole numbers a limit allows, both ends included; a boolean is not a number here."""

    low: int
    high: int

    def __contains__(self, value: object) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and self.low <= value <= self.high

    def __str__(self) -> str:
        return f"from {self.low} to {self.high}"


MAX_PAGE_SIZE = 10_000
"""The most records one request asks for: a connection's `page_size`, a synced table's `batch_size`."""
PAGE_SIZES = WholeNumbers(1, MAX_PAGE_SIZE)
DEFAULT_BATCH_SIZE = 2_000
"""Records per request of a synced table unless its `batch_size` says otherwise."""
CONCURRENT_REQUESTS = WholeNumbers(1, 1000)
"""Requests in flight at once: a connection's, a task's share of it, the licence's."""
ENTITY = "entity"
"""A table read through the contract-based REST API."""
ODATA_KINDS = ("dac", "gi")
"""A table read through OData: a DAC, or a generic inquiry."""
SOURCES = (ENTITY, *ODATA_KINDS)
