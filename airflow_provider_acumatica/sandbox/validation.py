"""Business rules of TimeEntry writes, answered as 422 with an `error` string on each bad field."""

from __future__ import annotations

from airflow_provider_acumatica.sandbox.store import Store

_REFERENCES = (
    ("Employee", "Employee", "Employee"),
    ("ProjectID", "Project", "Project"),
    ("CostCode", "CostCode", "Cost Code"),
    ("EarningType", "EarningTypeCode", "Earning Type"),
    ("UnionLocal", "PayrollUnionLocal", "Union Local"),
    ("WCCCode", "WCCCode", "WCC Code"),
)
_REQUIRED = ("Employee", "Date", "ProjectID", "ProjectTaskID", "CostCode", "EarningType", "TimeSpent")


def time_entry_errors(store: Store, tenant: str, entry: dict) -> dict[str, str]:
    """Field -> error message for a TimeEntry about to be saved (empty when valid)."""
    errors = {field: f"'{field}' cannot be empty." for field in _REQUIRED if entry.get(field) in (None, "")}
    for field, entity, label in _REFERENCES:
        value = entry.get(field)
        if field in errors or value in (None, ""):
            continue
        if store.table(tenant, entity).find((value,)) is None:
            errors[field] = f"{label} '{value}' cannot be found in the system."
    employee = store.table(tenant, "Employee").find((entry.get("Employee"),)) if "Employee" not in errors else None
    if employee is not None and employee[store.table(tenant, "Employee").position["Status"]] != "Active":
        errors["Employee"] = f"The employee '{entry['Employee']}' is inactive."
    if "ProjectID" not in errors and "ProjectTaskID" not in errors:
        if store.table(tenant, "ProjectTask").find((entry["ProjectID"], entry["ProjectTaskID"])) is None:
            errors["ProjectTaskID"] = (
                f"Project Task '{entry['ProjectTaskID']}' cannot be found in project '{entry['ProjectID']}'."
            )
    spent, billable_time = entry.get("TimeSpent"), entry.get("BillableTime")
    if "TimeSpent" not in errors and spent <= 0:
        errors["TimeSpent"] = "Time Spent must be greater than 00:00."
    if entry.get("Billable") and billable_time is not None and billable_time <= 0 and "TimeSpent" not in errors:
        errors["BillableTime"] = "Billable Time must be greater than 00:00 for a billable entry."
    elif billable_time is not None and spent is not None and billable_time > spent:
        errors["BillableTime"] = "Billable Time cannot exceed Time Spent."
    return errors
