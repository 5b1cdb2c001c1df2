"""The entity catalog: REST entities with their fields, keys and timestamps, the DAC views and the GI.

Field types: str, int, dec (decimal number), bool, dt (date-time stored in UTC), date (calendar date),
dur (time span stored in minutes, rendered "HH:MM"), guid. Every table also holds `id` (the record's
NoteID GUID), `_rid` (the integer surrogate the DAC interface shows) and `note`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

TIMESTAMP = "LastModifiedDateTime"


@dataclass(frozen=True)
class CustomField:
    """A user-defined field, shown in the `custom` block only when named in `$custom=View.Field`."""

    view: str
    name: str
    type_name: str
    value_type: str


@dataclass(frozen=True)
class EntitySpec:
    """One REST entity of the Default endpoint."""

    name: str
    fields: tuple[tuple[str, str], ...]
    keys: tuple[str, ...]
    timestamp: str | None = TIMESTAMP
    details: dict[str, tuple[str, tuple[str, ...]]] = field(default_factory=dict)
    custom: tuple[CustomField, ...] = ()
    server_key: str | None = None

    @property
    def field_types(self) -> dict[str, str]:
        """Field name -> type, custom fields included under their own names."""
        types = dict(self.fields)
        types.update({custom.name: custom.value_type for custom in self.custom})
        return types

    @property
    def columns(self) -> tuple[str, ...]:
        """Storage order of a row tuple."""
        return ("id", "_rid", "note", *(name for name, _ in self.fields), *(c.name for c in self.custom))


def _spec(name, fields, keys, **options) -> EntitySpec:
    return EntitySpec(name, tuple((f, t) for f, t in (item.split(":") for item in fields.split())), keys, **options)


_STAMP = f"{TIMESTAMP}:dt"

ENTITIES: dict[str, EntitySpec] = {
    spec.name: spec
    for spec in (
        _spec(
            "Project",
            f"ProjectID:str Description:str Status:str Customer:str ProjectManager:str Branch:str "
            f"StartDate:date EndDate:date Hold:bool CreatedDateTime:dt {_STAMP}",
            ("ProjectID",),
            details={"Tasks": ("ProjectTask", ("ProjectID",))},
            custom=(CustomField("Document", "UsrRegion", "CustomStringField", "str"),),
        ),
        _spec(
            "ProjectTask",
            f"ProjectID:str ProjectTaskID:str Description:str Status:str Default:bool StartDate:date EndDate:date {_STAMP}",
            ("ProjectID", "ProjectTaskID"),
        ),
        _spec(
            "ProjectBudget",
            "ProjectID:str ProjectTaskID:str CostCode:str AccountGroup:str Type:str Description:str UOM:str "
            f"OriginalBudgetedQty:dec OriginalBudgetedAmount:dec RevisedBudgetedAmount:dec ActualAmount:dec {_STAMP}",
            ("ProjectID", "ProjectTaskID", "CostCode", "AccountGroup"),
        ),
        _spec("CostCode", f"CostCodeID:str Description:str Active:bool {_STAMP}", ("CostCodeID",)),
        _spec(
            "ChangeOrder",
            f"RefNbr:str ProjectID:str Description:str Status:str Date:date ExternalRefNbr:str RevenueTotal:dec "
            f"CommitmentsTotal:dec {_STAMP}",
            ("RefNbr",),
        ),
        _spec(
            "Subcontract",
            f"SubcontractNbr:str Vendor:str ProjectID:str Description:str Status:str Date:date SubcontractTotal:dec {_STAMP}",
            ("SubcontractNbr",),
        ),
        _spec(
            "Employee",
            f"EmployeeID:str EmployeeName:str Status:str DepartmentID:str UnionLocal:str Email:str Branch:str {_STAMP}",
            ("EmployeeID",),
        ),
        _spec(
            "Customer",
            f"CustomerID:str CustomerName:str Status:str CustomerClass:str City:str Email:str {_STAMP}",
            ("CustomerID",),
        ),
        _spec("Vendor", f"VendorID:str VendorName:str Status:str VendorClass:str City:str {_STAMP}", ("VendorID",)),
        _spec(
            "EarningTypeCode",
            f"EarningTypeCodeID:str Description:str Category:str Multiplier:dec Active:bool {_STAMP}",
            ("EarningTypeCodeID",),
        ),
        _spec("WCCCode", f"WCCCode:str Description:str Active:bool {_STAMP}", ("WCCCode",)),
        _spec("PayrollUnionLocal", f"UnionLocalID:str Description:str Active:bool {_STAMP}", ("UnionLocalID",)),
        _spec("UnionLocal", "UnionLocalID:str Description:str Active:bool", ("UnionLocalID",), timestamp=None),
        _spec(
            "LaborCostRate",
            "RecordID:int Type:str Employee:str UnionLocal:str LaborItem:str ProjectID:str EarningType:str "
            "EffectiveDate:date Rate:dec",
            ("RecordID",),
            timestamp=None,
            server_key="RecordID",
        ),
        _spec(
            "TimeEntry",
            "TimeEntryID:guid Employee:str Date:dt ProjectID:str ProjectTaskID:str CostCode:str EarningType:str "
            "LaborItem:str TimeSpent:dur BillableTime:dur Billable:bool Overtime:dur BillableOvertime:dur "
            "Summary:str ExternalRefNbr:str ApprovalStatus:str UnionLocal:str WCCCode:str CertifiedJob:bool "
            f"CostRate:dec {_STAMP}",
            ("TimeEntryID",),
            custom=(CustomField("TimeActivity", "UsrShift", "CustomStringField", "str"),),
            server_key="TimeEntryID",
        ),
        _spec(
            "ProjectTransaction",
            "Module:str ReferenceNbr:str LineNbr:int Date:date ProjectID:str ProjectTaskID:str CostCode:str "
            "AccountGroup:str InventoryID:str Description:str Employee:str Qty:dec UOM:str UnitRate:dec Amount:dec "
            f"Billable:bool {_STAMP}",
            ("ReferenceNbr", "LineNbr"),
        ),
    )
}

LARGE_ENTITIES = ("TimeEntry", "ProjectTransaction")


@dataclass(frozen=True)
class Navigation:
    """A DAC's navigation property: the records of `target` whose `pairs` fields (ours, theirs) are equal;
    a collection or a single record."""

    name: str
    target: str
    pairs: tuple[tuple[str, str], ...]
    collection: bool


@dataclass(frozen=True)
class DacView:
    """An OData v4 DAC over a REST entity's table: (DAC field, Edm type, source) where source is a column
    name, "_rid", or "ref:{Entity}" (the `_rid` of the record of that entity whose keys equal ours)."""

    name: str
    entity: str
    fields: tuple[tuple[str, str, str], ...]
    keys: tuple[str, ...]
    tracked: bool = False
    navigations: tuple[Navigation, ...] = ()

    @property
    def namespace(self) -> str:
        """The DAC's .NET namespace, e.g. PX.Objects.PM for PMProject."""
        return f"PX.Objects.{self.name[:2]}"

    @property
    def qualified_name(self) -> str:
        """The fully qualified entity set name Acumatica also accepts, e.g. PX_Objects_PM_PMProject."""
        return f"{self.namespace.replace('.', '_')}_{self.name}"


DACS: dict[str, DacView] = {
    view.name: view
    for view in (
        DacView(
            "PMProject",
            "Project",
            (
                ("ContractID", "Edm.Int32", "_rid"),
                ("ContractCD", "Edm.String", "ProjectID"),
                ("Description", "Edm.String", "Description"),
                ("Status", "Edm.String", "Status"),
                ("CustomerID", "Edm.String", "Customer"),
                ("StartDate", "Edm.DateTimeOffset", "StartDate"),
                ("ExpireDate", "Edm.DateTimeOffset", "EndDate"),
                ("NoteID", "Edm.Guid", "id"),
                ("CreatedDateTime", "Edm.DateTimeOffset", "CreatedDateTime"),
                ("LastModifiedDateTime", "Edm.DateTimeOffset", TIMESTAMP),
            ),
            ("ContractID",),
            navigations=(Navigation("Tasks", "PMTask", (("ContractID", "ProjectID"),), collection=True),),
        ),
        DacView(
            "PMTask",
            "ProjectTask",
            (
                ("ProjectID", "Edm.Int32", "ref:Project"),
                ("TaskID", "Edm.Int32", "_rid"),
                ("TaskCD", "Edm.String", "ProjectTaskID"),
                ("Description", "Edm.String", "Description"),
                ("Status", "Edm.String", "Status"),
                ("NoteID", "Edm.Guid", "id"),
                ("LastModifiedDateTime", "Edm.DateTimeOffset", TIMESTAMP),
            ),
            ("ProjectID", "TaskID"),
            tracked=True,
            navigations=(Navigation("Project", "PMProject", (("ProjectID", "ContractID"),), collection=False),),
        ),
        DacView(
            "EPEmployee",
            "Employee",
            (
                ("BAccountID", "Edm.Int32", "_rid"),
                ("AcctCD", "Edm.String", "EmployeeID"),
                ("AcctName", "Edm.String", "EmployeeName"),
                ("Status", "Edm.String", "Status"),
                ("DepartmentID", "Edm.String", "DepartmentID"),
                ("NoteID", "Edm.Guid", "id"),
                ("LastModifiedDateTime", "Edm.DateTimeOffset", TIMESTAMP),
            ),
            ("BAccountID",),
        ),
        DacView(
            "PMCostCode",
            "CostCode",
            (
                ("CostCodeID", "Edm.Int32", "_rid"),
                ("CostCodeCD", "Edm.String", "CostCodeID"),
                ("Description", "Edm.String", "Description"),
                ("IsActive", "Edm.Boolean", "Active"),
                ("NoteID", "Edm.Guid", "id"),
                ("LastModifiedDateTime", "Edm.DateTimeOffset", TIMESTAMP),
            ),
            ("CostCodeID",),
        ),
    )
}

GI_VIEW = DacView(
    "TimeActivities",
    "TimeEntry",
    (
        ("NoteID", "Edm.Guid", "id"),
        ("Employee", "Edm.String", "Employee"),
        ("Date", "Edm.DateTimeOffset", "Date"),
        ("ProjectID", "Edm.String", "ProjectID"),
        ("ProjectTaskID", "Edm.String", "ProjectTaskID"),
        ("EarningType", "Edm.String", "EarningType"),
        ("TimeSpent", "Edm.String", "TimeSpent"),
        ("ApprovalStatus", "Edm.String", "ApprovalStatus"),
        ("LastModifiedOn", "Edm.DateTimeOffset", TIMESTAMP),
    ),
    (),
)
