"""The bundle's YAML config: strict parsing into tenants and tables; errors name file, tenant, table and key.

Layout (see docs/bundle.md): ``defaults`` (settings every tenant inherits), ``tenants`` (one DAG family
each) and ``tables`` (overrides and additions applied to every tenant). A tenant with a ``payroll`` block
also gets a payroll DAG; ``defaults.payroll`` holds the payroll settings such tenants inherit. A tenant's tables are, in
order: its catalog(s), then the top-level ``tables``, then its own table entries. A later entry for a
name already present overrides only the keys it gives; an entry for a new name is an addition and
must give its ``mode`` (so a misspelt override, e.g. ``Projet``, is an error rather than a new table).
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from airflow_provider_acumatica.bundle import values
from airflow_provider_acumatica.bundle.catalog import CATALOGS
from airflow_provider_acumatica.client.extras import closest_name
from airflow_provider_acumatica.client.limits import (
    CONCURRENT_REQUESTS,
    DEFAULT_BATCH_SIZE,
    ENTITY,
    PAGE_SIZES,
    SOURCES,
    WholeNumbers,
)
from airflow_provider_acumatica.extract.plan import DEFAULT_TIME_OFFSET, INCREMENTAL, MODES, TIME_OFFSETS

_TABLE_KEYS: Mapping[str, values.Check] = {
    "name": values.text,
    "mode": values.one_of(*MODES),
    "source": values.one_of(*SOURCES),
    "enabled": values.boolean,
    "schedule": values.cron,
    "time_offset": values.integer(TIME_OFFSETS, "seconds"),
    "batch_size": values.integer(PAGE_SIZES, "rows"),
    "timestamp_field": values.text,
    "key_fields": values.names,
    "expand": values.names,
    "track_deletes": values.boolean,
    "target_table": values.text,
}
# Settings a tenant inherits from `defaults` and may set for itself.
_TENANT_SETTINGS: Mapping[str, values.Check] = {
    "warehouse_conn_id": values.text,
    "pool_slots": values.integer(CONCURRENT_REQUESTS, "slots"),
    "requests_per_task": values.integer(CONCURRENT_REQUESTS, "requests"),
    "schedule": values.cron,
    "time_offset": _TABLE_KEYS["time_offset"],
    "batch_size": _TABLE_KEYS["batch_size"],
    "target_schema": values.text,
    "owner": values.text,
    "retries": values.integer(WholeNumbers(0, 100)),
    "retry_delay": values.integer(WholeNumbers(0, 86_400), "seconds"),
}
_PAYROLL_KEYS: Mapping[str, values.Check] = {
    "source_table": values.text,
    "source_sql": values.text,
    "schedule": values.cron,
    "billable": values.boolean_or("source"),
    "hold": values.boolean,
    "require_approval": values.boolean,
}
_DEFAULTS_KEYS: Mapping[str, values.Check] = {
    **_TENANT_SETTINGS,
    "start_date": values.date,
    "timezone": values.timezone,
    "payroll": values.unchecked,  # checked by _payroll
}
_TENANT_KEYS: Mapping[str, values.Check] = {
    "name": values.tenant_name,
    "acumatica_conn_id": values.text,
    "tables": values.unchecked,  # a catalog name or a list: checked by _tenant_entries
    "payroll": values.unchecked,  # checked by _payroll
    **_TENANT_SETTINGS,
}
_TOP_KEYS: Mapping[str, values.Check] = dict.fromkeys(("defaults", "tenants", "tables"), values.unchecked)
_BUILTIN_DEFAULTS: Mapping[str, Any] = {
    "warehouse_conn_id": "acumatica_warehouse",
    "pool_slots": 3,
    "requests_per_task": None,
    "schedule": "0 * * * *",
    "time_offset": DEFAULT_TIME_OFFSET,
    "batch_size": DEFAULT_BATCH_SIZE,
    "target_schema": None,
    "owner": "airflow",
    "retries": 2,
    "retry_delay": 300,
    "start_date": datetime.date(2024, 1, 1),
    "timezone": "UTC",
}
_BUILTIN_PAYROLL: Mapping[str, Any] = {
    "source_table": "payroll_time_activity",
    "source_sql": None,
    "schedule": "0 6 * * 1",  # Mondays 06:00: the week before is the pay period
    "billable": "source",
    "hold": True,
    "require_approval": False,
}


class ConfigError(ValueError):
    """A mistake in the config file; the message names file, tenant, table and key, and what is allowed."""


@dataclass(frozen=True)
class TableConfig:
    """One table of one tenant, every setting resolved."""

    name: str
    mode: str
    schedule: str
    time_offset: int
    batch_size: int
    source: str = ENTITY
    timestamp_field: str | None = None
    key_fields: tuple[str, ...] | None = None
    expand: tuple[str, ...] | None = None
    track_deletes: bool = False
    target_table: str | None = None


@dataclass(frozen=True)
class PayrollConfig:
    """A tenant's payroll publishing: where its approved activities are, when and how they are published."""

    source_table: str | None
    source_sql: str | None
    schedule: str
    billable: bool | str
    hold: bool
    require_approval: bool


@dataclass(frozen=True)
class TenantConfig:
    """One tenant: its connections, licence-sized pool, DAG settings and enabled tables."""

    name: str
    acumatica_conn_id: str
    warehouse_conn_id: str
    pool_slots: int
    schedule: str
    time_offset: int
    batch_size: int
    owner: str
    retries: int
    retry_delay: int
    target_schema: str | None = None
    requests_per_task: int | None = None
    tables: tuple[TableConfig, ...] = field(default=())
    payroll: PayrollConfig | None = None

    @property
    def task_requests(self) -> int:
        """Concurrent requests (and pool slots) of one load task: `requests_per_task`, at most the pool's slots;
        by default the whole pool, so that the tenant's load tasks together never exceed its licence."""
        return min(self.requests_per_task or self.pool_slots, self.pool_slots)

    @property
    def pool(self) -> str:
        """The Airflow pool all of this tenant's Acumatica calls share."""
        return f"acumatica_{self.name}"


@dataclass(frozen=True)
class BundleConfig:
    """The whole config file, resolved."""

    path: Path
    start_date: datetime.date
    timezone: str
    tenants: tuple[TenantConfig, ...]


@dataclass(frozen=True)
class _Place:
    """Where a value sits in the file, to prefix error messages."""

    path: Path
    section: str | None = None
    tenant: str | None = None
    table: str | None = None

    def error(self, message: str) -> ConfigError:
        where = [part for part in (self.section, self._tenant(), self._table()) if part]
        prefix = f"{self.path}: " + (", ".join(where) + ": " if where else "")
        return ConfigError(prefix + message)

    def _tenant(self) -> str | None:
        return None if self.tenant is None else f"tenant {self.tenant}"

    def _table(self) -> str | None:
        return None if self.table is None else f"table {self.table!r}"

    def with_tenant(self, tenant: str) -> _Place:
        return _Place(self.path, self.section, tenant, self.table)

    def with_table(self, table: str) -> _Place:
        return _Place(self.path, self.section, self.tenant, table)


def load_config(path: str | Path) -> BundleConfig:
    """Read and validate the YAML config file at ``path``; raise ConfigError on any mistake."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError(f"{path}: cannot read the config file: {error.strerror}") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from None
    return parse_config(data, path)


def parse_config(data: Any, path: str | Path) -> BundleConfig:
    """Validate an already-loaded config document; ``path`` only names it in messages."""
    place = _Place(Path(path))
    top = _checked_mapping(data, _TOP_KEYS, place, "top-level key", "the config file")
    given_defaults = _checked_mapping(
        top.get("defaults", {}), _DEFAULTS_KEYS, _section(place, "defaults"), "key", "defaults"
    )
    defaults = {**_BUILTIN_DEFAULTS, **given_defaults}
    payroll_place = _section(place, "defaults.payroll")
    defaults["payroll"] = {**_BUILTIN_PAYROLL, **_payroll_entries(given_defaults.get("payroll", {}), payroll_place)}
    shared_tables = _table_entries(top.get("tables", []), _section(place, "top-level tables"))
    tenants = _tenants(top.get("tenants"), defaults, shared_tables, place)
    return BundleConfig(
        path=Path(path), start_date=defaults["start_date"], timezone=defaults["timezone"], tenants=tenants
    )


def _section(place: _Place, section: str) -> _Place:
    return _Place(place.path, section)


def _checked_mapping(
    raw: Any, allowed: Mapping[str, values.Check], place: _Place, kind: str, what: str
) -> dict[str, Any]:
    """Keys of ``raw`` must be in ``allowed``; each value passes its check."""
    if not isinstance(raw, dict):
        raise place.error(f"{what} must be a mapping of keys to values, got {type(raw).__name__}")
    for key in raw:
        if key not in allowed:
            close = closest_name(str(key), allowed)
            hint = f"; did you mean {close!r}?" if close else ""
            raise place.error(f"unknown {kind} {key!r} (allowed: {', '.join(allowed)}){hint}")
    checked = {}
    for key, value in raw.items():
        try:
            checked[key] = allowed[key](value)
        except values.InvalidValue as error:
            raise place.error(f"key {key!r}: {error}") from None
    return checked


def _table_entries(raw: Any, place: _Place) -> list[tuple[dict[str, Any], _Place]]:
    """Validate a list of table mappings; a name may appear only once per list."""
    if not isinstance(raw, list):
        raise place.error("tables must be a list of table entries like {name: Project, mode: incremental}")
    entries: list[tuple[dict[str, Any], _Place]] = []
    for index, item in enumerate(raw, start=1):
        entry_place = place.with_table(_label(item, index))
        entry = _checked_mapping(item, _TABLE_KEYS, entry_place, "key", "a table entry")
        if "name" not in entry:
            raise entry_place.error(f"missing key 'name' (allowed keys: {', '.join(_TABLE_KEYS)})")
        if any(seen["name"] == entry["name"] for seen, _ in entries):
            raise entry_place.error("appears twice in the same list; merge the two entries")
        entries.append((entry, entry_place))
    return entries


def _label(item: Any, index: int) -> str:
    """The name of a list item for messages, or its position when it has no usable name."""
    name = item.get("name") if isinstance(item, dict) else None
    return name if isinstance(name, str) else f"#{index}"


def _tenants(raw: Any, defaults: Mapping[str, Any], shared_tables: list, place: _Place) -> tuple[TenantConfig, ...]:
    if not isinstance(raw, list) or not raw:
        raise place.error(
            "'tenants' must be a non-empty list, like "
            "[{name: company, acumatica_conn_id: acumatica_company, tables: construction}]"
        )
    tenants: dict[str, tuple[int, TenantConfig]] = {}
    for index, item in enumerate(raw, start=1):
        tenant = _tenant(item, index, defaults, shared_tables, place)
        if tenant.name in tenants:
            first = tenants[tenant.name][0]
            raise place.with_tenant(repr(tenant.name)).error(
                f"defined twice (tenants #{first} and #{index}); tenant names must be unique"
            )
        tenants[tenant.name] = (index, tenant)
    return tuple(tenant for _, tenant in tenants.values())


_REQUIRED_TENANT_KEYS = {
    "name": "the tenant's label in DAG ids",
    "acumatica_conn_id": "the Airflow connection to this tenant's Acumatica instance",
}


def _tenant(raw: Any, index: int, defaults: Mapping[str, Any], shared_tables: list, place: _Place) -> TenantConfig:
    label = _label(raw, index)
    label = label if label.startswith("#") else repr(label)
    tenant_place = place.with_tenant(label)
    entry = _checked_mapping(raw, _TENANT_KEYS, tenant_place, "key", "a tenant")
    for required, meaning in _REQUIRED_TENANT_KEYS.items():
        if required not in entry:
            raise tenant_place.error(f"missing key {required!r} ({meaning})")
    settings = {key: entry.get(key, defaults[key]) for key in _TENANT_SETTINGS}
    catalogs, own_tables = _tenant_entries(entry.get("tables", []), tenant_place)
    entries = [*_for_tenant(shared_tables, label), *own_tables]
    tables = _resolve_tables(catalogs, entries, settings, tenant_place)
    payroll = _payroll(entry["payroll"], defaults["payroll"], tenant_place) if "payroll" in entry else None
    return TenantConfig(
        name=entry["name"],
        acumatica_conn_id=entry["acumatica_conn_id"],
        tables=tables,
        payroll=payroll,
        **settings,
    )


def _payroll_entries(raw: Any, place: _Place) -> dict[str, Any]:
    """The keys of a ``payroll`` block (empty or null: all inherited)."""
    if raw is None:
        return {}
    payroll = _checked_mapping(raw, _PAYROLL_KEYS, place, "key", "payroll")
    if "source_table" in payroll and "source_sql" in payroll:
        raise place.error("give source_table or source_sql, not both")
    return payroll


def _payroll(raw: Any, inherited: Mapping[str, Any], place: _Place) -> PayrollConfig:
    """A tenant's payroll settings: its own block over the defaults' (a source given here replaces the other)."""
    own = _payroll_entries(raw, _Place(place.path, "payroll", place.tenant))
    if "source_sql" in own:
        own["source_table"] = None
    elif "source_table" in own:
        own["source_sql"] = None
    merged = {**inherited, **own}
    if merged["source_sql"]:
        merged["source_table"] = None
    return PayrollConfig(**merged)


def _for_tenant(entries: list[tuple[dict, _Place]], tenant_label: str) -> list[tuple[dict, _Place]]:
    return [(entry, entry_place.with_tenant(tenant_label)) for entry, entry_place in entries]


def _tenant_entries(raw: Any, place: _Place) -> tuple[list[str], list[tuple[dict, _Place]]]:
    """A tenant's ``tables``: a catalog name, or a list of catalog names and table entries."""
    items = [raw] if isinstance(raw, str) else raw
    if not isinstance(items, list):
        raise place.error(
            f"key 'tables': {raw!r} is not allowed "
            "(allowed: a catalog name like construction, or a list of catalog names and table entries)"
        )
    catalogs = [item for item in items if isinstance(item, str)]
    for catalog in catalogs:
        if catalog not in CATALOGS:
            raise place.error(f"key 'tables': unknown catalog {catalog!r} (allowed: {', '.join(CATALOGS)})")
    own = _table_entries([item for item in items if not isinstance(item, str)], place)
    return catalogs, own


def _resolve_tables(
    catalogs: list[str], entries: Iterable[tuple[dict, _Place]], settings: Mapping[str, Any], place: _Place
) -> tuple[TableConfig, ...]:
    """Catalog tables first, then each entry: an override of a known name or an addition with a mode."""
    merged: dict[str, dict[str, Any]] = {}
    places: dict[str, _Place] = {}
    for catalog in catalogs:
        for catalog_entry in CATALOGS[catalog]:
            merged[str(catalog_entry["name"])] = dict(catalog_entry)
            places[str(catalog_entry["name"])] = place.with_table(str(catalog_entry["name"]))
    for entry, entry_place in entries:
        name = entry["name"]
        if name not in merged and "mode" not in entry:
            known = f"catalog {', '.join(catalogs)}" if catalogs else "this tenant's tables"
            raise entry_place.error(
                f"overrides a table that is not in {known} (known: {', '.join(merged) or 'none'}); "
                "check the spelling, or give 'mode' to add it as a new table"
            )
        merged.setdefault(name, {}).update(entry)
        places[name] = entry_place
    tables = tuple(
        _table(entry, settings, places[name]) for name, entry in merged.items() if entry.get("enabled", True)
    )
    if not tables:
        raise place.error("has no enabled tables (allowed: tables: construction, or a list of table entries)")
    return tables


_OPTIONAL_TABLE_KEYS = ("track_deletes", "target_table")
DEFAULT_TIMESTAMP_FIELD = "LastModifiedDateTime"


def _default_timestamp_field(mode: str) -> str | None:
    return DEFAULT_TIMESTAMP_FIELD if mode == INCREMENTAL else None


def _table(entry: Mapping[str, Any], settings: Mapping[str, Any], place: _Place) -> TableConfig:
    source = entry.get("source", ENTITY)
    if entry.get("expand") and source != ENTITY:
        raise place.error(f"key 'expand' works only with source entity (REST), not {source!r}")
    optional = {key: entry[key] for key in _OPTIONAL_TABLE_KEYS if key in entry}
    lists = {key: tuple(entry[key]) for key in ("key_fields", "expand") if key in entry}
    return TableConfig(
        name=entry["name"],
        mode=entry["mode"],
        source=source,
        # Full tables may have no timestamp at all (UnionLocal): none unless the config names one.
        timestamp_field=entry.get("timestamp_field", _default_timestamp_field(entry["mode"])),
        schedule=entry.get("schedule", settings["schedule"]),
        time_offset=entry.get("time_offset", settings["time_offset"]),
        batch_size=entry.get("batch_size", settings["batch_size"]),
        **optional,
        **lists,
    )
