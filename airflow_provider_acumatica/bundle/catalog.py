"""Prebuilt table catalogs a tenant can name in the config instead of listing its tables one by one."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

# Construction and payroll entities of the Default REST endpoint. Entities with LastModifiedDateTime
# sync incrementally; UnionLocal and LaborCostRate have no modification timestamp, so only a full
# reload keeps them right. No key_fields here: the operator then keys REST rows by the stable `id`,
# which holds on every instance whatever its field names (a tenant's config may still override them).
_CONSTRUCTION_INCREMENTAL = (
    "Project",
    "ProjectTask",
    "ProjectBudget",
    "CostCode",
    "ChangeOrder",
    "Subcontract",
    "Employee",
    "Customer",
    "Vendor",
    "EarningTypeCode",
    "TimeEntry",
    "WCCCode",
    "PayrollUnionLocal",
    "ProjectTransaction",
)
_CONSTRUCTION_FULL = ("UnionLocal", "LaborCostRate")
_CONSTRUCTION_EXPANDS = {"Project": ("Tasks",)}


def _entry(name: str, mode: str) -> Mapping[str, object]:
    entry: dict[str, object] = {"name": name, "mode": mode}
    if name in _CONSTRUCTION_EXPANDS:
        entry["expand"] = list(_CONSTRUCTION_EXPANDS[name])
    return MappingProxyType(entry)


CATALOGS: Mapping[str, tuple[Mapping[str, object], ...]] = MappingProxyType(
    {
        "construction": (
            *(_entry(name, "incremental") for name in _CONSTRUCTION_INCREMENTAL),
            *(_entry(name, "full") for name in _CONSTRUCTION_FULL),
        )
    }
)
"""Catalog name -> table entries, each written like a table entry of the config file."""
