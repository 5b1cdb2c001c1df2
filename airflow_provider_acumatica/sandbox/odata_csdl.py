"""What an OData service says about itself: the CSDL `$metadata` document (v4, or v3 for the legacy generic
inquiry path) and the JSON service document listing its entity sets."""

from __future__ import annotations

from xml.sax.saxutils import quoteattr

from airflow_provider_acumatica.sandbox.catalog import DacView

NAMESPACE = "PX.Objects"
_V4_OPEN = (
    '<edmx:Edmx Version="4.0" xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx"><edmx:DataServices>'
    f'<Schema Namespace="{NAMESPACE}" xmlns="http://docs.oasis-open.org/odata/ns/edm">'
)
_V3_OPEN = (
    '<edmx:Edmx Version="1.0" xmlns:edmx="http://schemas.microsoft.com/ado/2007/06/edmx">'
    '<edmx:DataServices m:DataServiceVersion="3.0" '
    'xmlns:m="http://schemas.microsoft.com/ado/2007/08/dataservices/metadata">'
    f'<Schema Namespace="{NAMESPACE}" xmlns="http://schemas.microsoft.com/ado/2009/11/edm">'
)


def metadata(views: list[DacView], with_deleted_function: bool, version: int = 4) -> str:
    """A CSDL document: one EntityType (keys, Edm types, navigation properties) and EntitySet per view."""
    types, sets = [], []
    for view in views:
        keys = "".join(f"<PropertyRef Name={quoteattr(key)}/>" for key in view.keys)
        properties = "".join(
            f"<Property Name={quoteattr(name)} Type={quoteattr(edm)} "
            f"Nullable={quoteattr(str(name not in view.keys).lower())}/>"
            for name, edm, _ in view.fields
        )
        navigations = "".join(_navigation(navigation) for navigation in view.navigations)
        types.append(
            f"<EntityType Name={quoteattr(view.name)}>{f'<Key>{keys}</Key>' if keys else ''}"
            f"{properties}{navigations}</EntityType>"
        )
        bindings = "".join(
            f"<NavigationPropertyBinding Path={quoteattr(n.name)} Target={quoteattr(n.target)}/>"
            for n in view.navigations
        )
        sets.append(
            f"<EntitySet Name={quoteattr(view.name)} EntityType={quoteattr(f'{NAMESPACE}.{view.name}')}>"
            f"{bindings}</EntitySet>"
        )
        if with_deleted_function and view.tracked:
            types.append(
                f'<Function Name="GetDeletedRecords" IsBound="true"><Parameter Name="bindingParameter" '
                f'Type="Collection({NAMESPACE}.{view.name})"/>'
                f'<ReturnType Type="Collection({NAMESPACE}.DeletedRecord)"/></Function>'
            )
    if with_deleted_function:
        types.append(
            '<EntityType Name="DeletedRecord"><Property Name="RefNoteID" Type="Edm.Guid" Nullable="false"/>'
            '<Property Name="DeleteDate" Type="Edm.DateTimeOffset" Nullable="false"/></EntityType>'
        )
    container = (
        f'<EntityContainer Name="Default"{_V3_DEFAULT if version == 3 else ""}>{"".join(sets)}</EntityContainer>'
    )
    return (
        f'<?xml version="1.0" encoding="utf-8"?>{_V3_OPEN if version == 3 else _V4_OPEN}'
        f"{''.join(types)}{container}</Schema></edmx:DataServices></edmx:Edmx>"
    )


_V3_DEFAULT = ' m:IsDefaultEntityContainer="true"'


def _navigation(navigation) -> str:
    target = f"{NAMESPACE}.{navigation.target}"
    if navigation.collection:
        return f"<NavigationProperty Name={quoteattr(navigation.name)} Type={quoteattr(f'Collection({target})')}/>"
    constraints = "".join(
        f"<ReferentialConstraint Property={quoteattr(ours)} ReferencedProperty={quoteattr(theirs)}/>"
        for ours, theirs in navigation.pairs
    )
    return (
        f"<NavigationProperty Name={quoteattr(navigation.name)} Type={quoteattr(target)}>"
        f"{constraints}</NavigationProperty>"
    )


def service_document(views: list[DacView], root: str, version: int = 4) -> dict:
    """The JSON service document: each entity set by name and relative URL."""
    if version == 3:
        return {"odata.metadata": f"{root}/$metadata", "value": [{"name": v.name, "url": v.name} for v in views]}
    return {
        "@odata.context": f"{root}/$metadata",
        "value": [{"name": view.name, "kind": "EntitySet", "url": view.name} for view in views],
    }
