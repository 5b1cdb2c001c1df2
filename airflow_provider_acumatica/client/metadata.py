"""OData `$metadata` (CSDL) reading: each entity set's key and column types, to type columns and date-times."""

from __future__ import annotations

import dataclasses
import xml.etree.ElementTree as ElementTree

from airflow_provider_acumatica.client.records import DATETIME_EDM_TYPES


@dataclasses.dataclass(frozen=True)
class ODataEntitySet:
    """One DAC or generic inquiry: its key columns and `{column: Edm type}` in document order."""

    name: str
    entity_type: str
    key: tuple[str, ...]
    properties: dict[str, str]
    tracks_deletions: bool = False
    """True when `px.GetDeletedRecords()` is bound to this set (an administrator marked the DAC as tracked)."""

    @property
    def datetime_columns(self) -> tuple[str, ...]:
        return tuple(name for name, edm in self.properties.items() if edm in DATETIME_EDM_TYPES)


def parse_metadata(document: bytes | str) -> dict[str, ODataEntitySet]:
    """`{entity set name: ODataEntitySet}` from a CSDL document (v3 or v4, any namespace)."""
    try:
        root = ElementTree.fromstring(document)
    except ElementTree.ParseError as error:
        raise ValueError(f"unreadable $metadata document: {error}") from None
    types: dict[str, tuple[tuple[str, ...], dict[str, str]]] = {}
    for schema in _children(root, "Schema", deep=True):
        namespace = schema.get("Namespace", "")
        for entity_type in _children(schema, "EntityType"):
            key = tuple(ref.get("Name", "") for ref in _children(entity_type, "PropertyRef", deep=True))
            properties = {prop.get("Name", ""): prop.get("Type", "") for prop in _children(entity_type, "Property")}
            types[f"{namespace}.{entity_type.get('Name')}"] = (key, properties)
            types[entity_type.get("Name", "")] = (key, properties)
    tracked = _types_with_deleted_records(root)
    sets: dict[str, ODataEntitySet] = {}
    for entity_set in _children(root, "EntitySet", deep=True):
        type_name = entity_set.get("EntityType", "")
        key, properties = types.get(type_name, ((), {}))
        name = entity_set.get("Name", "")
        sets[name] = ODataEntitySet(name, type_name, key, properties, type_name in tracked)
    return sets


def _types_with_deleted_records(root: ElementTree.Element) -> set[str]:
    """Entity types that the bound function GetDeletedRecords takes as its binding collection."""
    tracked = set()
    for function in _children(root, "Function", deep=True):
        if function.get("Name") != "GetDeletedRecords" or function.get("IsBound") != "true":
            continue
        for parameter in _children(function, "Parameter")[:1]:
            binding = parameter.get("Type", "")
            if binding.startswith("Collection(") and binding.endswith(")"):
                tracked.add(binding[len("Collection(") : -1])
    return tracked


def _children(element: ElementTree.Element, local_name: str, deep: bool = False) -> list[ElementTree.Element]:
    candidates = element.iter() if deep else list(element)
    return [child for child in candidates if child.tag.rsplit("}", 1)[-1] == local_name]
