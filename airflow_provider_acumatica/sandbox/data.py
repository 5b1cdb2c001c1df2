"""Seeded construction data per tenant: the small reference tables, and the large TimeEntry and
ProjectTransaction tables built row by row quickly (tuples in the catalog's column order)."""

from __future__ import annotations

import random
from datetime import date, timedelta

from airflow_provider_acumatica.sandbox.catalog import ENTITIES, LARGE_ENTITIES
from airflow_provider_acumatica.sandbox.settings import SandboxSettings
from airflow_provider_acumatica.sandbox.timeline import Timeline, cluster_sizes, default_anchor

FIRST = (
    "James Maria Robert Linda Michael Ana Jose Wei Priya Tom Olga Ahmed Sofia Luis Grace Ivan Mei Noah Emma Raj".split()
)
LAST = "Garcia Smith Nguyen Kowalski Brown Haddad Rossi Silva Murphy Chen Novak Patel Olsen Dubois Kim Walsh".split()
SITES = "Riverside Harbor Summit Oakwood Lakeview Granite Maple Westgate Cedar Pioneer Union Bayfront".split()
BUILDINGS = (
    "Medical Center|School Addition|Parking Garage|Office Tower|Water Plant|Bridge Deck|Warehouse|Library".split("|")
)
CITIES = "Boston Denver Austin Seattle Chicago Phoenix Atlanta Portland Tampa Omaha".split()
TRADES = "Concrete|Electrical|Steel|Plumbing|Drywall|Roofing|HVAC|Excavation|Glazing|Painting".split("|")
PHASES = "Mobilization|Site Work|Foundations|Framing|Rough-In|Enclosure|Finishes|Closeout".split("|")
WORK = "Formwork|Rebar tying|Pour slab|Pull wire|Set trusses|Hang drywall|Install ductwork|Punch list|Layout|Cleanup".split(
    "|"
)
EARNING_TYPES = (
    ("RG", "Regular", "Wage", 1.0),
    ("OT", "Overtime", "Overtime", 1.5),
    ("DT", "Double Time", "Overtime", 2.0),
    ("HOL", "Holiday", "Wage", 1.0),
    ("PTO", "Paid Time Off", "Time Off", 1.0),
    ("SICK", "Sick Pay", "Time Off", 1.0),
    ("VAC", "Vacation", "Time Off", 1.0),
    ("PW", "Prevailing Wage", "Wage", 1.0),
)
UNIONS = (
    ("IBEW-103", "Electrical Workers Local 103"),
    ("UA-12", "Plumbers & Pipefitters Local 12"),
    ("LIUNA-223", "Laborers Local 223"),
    ("IW-7", "Iron Workers Local 7"),
    ("UBC-67", "Carpenters Local 67"),
    ("OE-4", "Operating Engineers Local 4"),
    ("SMART-17", "Sheet Metal Workers Local 17"),
)
WCC = (
    ("5403", "Carpentry"),
    ("5190", "Electrical Wiring"),
    ("5183", "Plumbing"),
    ("5213", "Concrete Construction"),
    ("5040", "Iron or Steel Erection"),
    ("5645", "Residential Carpentry"),
    ("8810", "Clerical Office"),
)
LABOR_ITEMS = ("CARPENTER", "ELECTRICIAN", "LABORER", "PLUMBER", "IRONWORKER", "OPERATOR", "FOREMAN")
ACCOUNT_GROUPS = ("LABOR", "MATERIAL", "SUBCON", "EQUIP", "REVENUE")


def guid(rng: random.Random) -> str:
    """A random version-4 GUID in lowercase canonical form, drawn from `rng`."""
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"


class SandboxData:
    """Builds each (tenant, entity) table deterministically from seed + tenant + entity."""

    def __init__(self, settings: SandboxSettings) -> None:
        self.settings = settings
        self.anchor = settings.data_anchor or default_anchor()
        self._reference: dict[str, dict[str, list[dict]]] = {}

    def rng(self, tenant: str, purpose: str) -> random.Random:
        return random.Random(f"{self.settings.seed}:{tenant.lower()}:{purpose}")

    def build(self, tenant: str, entity: str) -> list[tuple]:
        """The generated rows of one table (`_rid` left 0: the table assigns it)."""
        if entity in LARGE_ENTITIES:
            rows = _LARGE_BUILDERS[entity](self, tenant)
        else:
            spec = ENTITIES[entity]
            rng = self.rng(tenant, f"ids:{entity}")
            columns = spec.columns[3:]
            rows = [
                (guid(rng), 0, "", *(record.get(name) for name in columns)) for record in self.reference(tenant)[entity]
            ]
        return rows

    def reference(self, tenant: str) -> dict[str, list[dict]]:
        """The small tables of `tenant` as plain records (generated once, shared by the large tables)."""
        if tenant not in self._reference:
            self._reference[tenant] = _ReferenceBuilder(self, tenant).build()
        return self._reference[tenant]


class _ReferenceBuilder:
    """Projects, tasks, cost codes, people and code tables of one tenant, scaled mildly with `rows`."""

    def __init__(self, data: SandboxData, tenant: str) -> None:
        self.rng = data.rng(tenant, "reference")
        self.timeline = Timeline(data.anchor, data.rng(tenant, "reference-time"))
        self.rows = data.settings.rows
        self.tenant = tenant

    def stamped(self, records: list[dict]) -> list[dict]:
        """Give records LastModifiedDateTime: random, but a third share one mass-update stamp."""
        mass_update = self.timeline.random_stamp()
        for record in records:
            record["LastModifiedDateTime"] = mass_update if self.rng.random() < 0.34 else self.timeline.random_stamp()
        return records

    def build(self) -> dict[str, list[dict]]:
        rng = self.rng
        prefix = self.tenant[:3].upper()
        customers = [
            {
                "CustomerID": f"C{prefix}{n:04d}",
                "CustomerName": f"{rng.choice(SITES)} {rng.choice(['Health', 'Schools', 'Holdings', 'Properties', 'County', 'Developers'])}",
                "Status": rng.choice(["Active"] * 5 + ["Inactive"]),
                "CustomerClass": rng.choice(["COMMERCIAL", "PUBLIC", "RESIDENT"]),
                "City": rng.choice(CITIES),
                "Email": f"ap{n}@{prefix.lower()}customer.example",
            }
            for n in range(1, 16 + self.rows // 5000)
        ]
        vendors = [
            {
                "VendorID": f"V{prefix}{n:04d}",
                "VendorName": f"{rng.choice(LAST)} {rng.choice(TRADES)} {rng.choice(['Inc', 'LLC', 'Co'])}",
                "Status": "Active",
                "VendorClass": rng.choice(["SUBCON", "SUPPLIER"]),
                "City": rng.choice(CITIES),
            }
            for n in range(1, 16 + self.rows // 5000)
        ]
        unions = [
            {"UnionLocalID": code, "Description": text, "Active": True} for code, text in UNIONS if rng.random() < 0.85
        ] or [{"UnionLocalID": UNIONS[0][0], "Description": UNIONS[0][1], "Active": True}]
        first_employee = rng.randrange(100, 900)
        employees = [
            {
                "EmployeeID": f"EP{first_employee + n:05d}",
                "EmployeeName": f"{rng.choice(FIRST)} {rng.choice(LAST)}",
                "Status": "Active" if rng.random() < 0.9 else "Inactive",
                "DepartmentID": rng.choice(["FIELD", "FIELD", "SHOP", "OFFICE"]),
                "UnionLocal": rng.choice(unions)["UnionLocalID"] if rng.random() < 0.8 else None,
                "Email": f"emp{first_employee + n}@{self.tenant.lower()}.example",
                "Branch": "HQ",
            }
            for n in range(20 + min(self.rows // 1000, 1980))
        ]
        cost_codes = [
            {
                "CostCodeID": f"{division:02d}-{100 * step:03d}",
                "Description": f"{TRADES[division % len(TRADES)]} - {PHASES[step % len(PHASES)]}",
                "Active": rng.random() < 0.95,
            }
            for division in range(1, 17)
            for step in range(1, rng.randint(2, 5))
        ]
        projects, tasks = self._projects(customers, employees)
        tables = {
            "Customer": customers,
            "Vendor": vendors,
            "Employee": employees,
            "CostCode": cost_codes,
            "Project": projects,
            "ProjectTask": tasks,
            "PayrollUnionLocal": [dict(u) for u in unions],
            "EarningTypeCode": [
                {"EarningTypeCodeID": c, "Description": d, "Category": k, "Multiplier": m, "Active": True}
                for c, d, k, m in EARNING_TYPES
            ],
            "WCCCode": [{"WCCCode": c, "Description": d, "Active": True} for c, d in WCC],
        }
        tables["ProjectBudget"] = self._budgets(tasks, cost_codes)
        tables["ChangeOrder"], tables["Subcontract"] = self._commitments(projects, vendors)
        for records in tables.values():
            self.stamped(records)
        for project in projects:
            project["CreatedDateTime"] = min(project["LastModifiedDateTime"], self.timeline.random_stamp())
        tables["UnionLocal"] = [dict(u) for u in unions]
        tables["LaborCostRate"] = self._rates(unions, projects)
        return tables

    def _projects(self, customers, employees):
        rng, projects, tasks = self.rng, [], []
        year = 20 + rng.randrange(6)
        for n in range(1, 11 + min(self.rows // 2000, 490)):
            start = date(2000 + year, 1, 1) + timedelta(days=rng.randrange(700))
            project_id = f"{year}-{n * 7 + rng.randrange(7):04d}"
            projects.append(
                {
                    "ProjectID": project_id,
                    "Description": f"{rng.choice(SITES)} {rng.choice(BUILDINGS)}",
                    "Status": rng.choice(["Active"] * 6 + ["Planned", "Completed", "On Hold"]),
                    "Customer": rng.choice(customers)["CustomerID"],
                    "ProjectManager": rng.choice(employees)["EmployeeID"],
                    "Branch": "HQ",
                    "StartDate": start,
                    "EndDate": start + timedelta(days=rng.randrange(120, 900)),
                    "Hold": rng.random() < 0.05,
                    "UsrRegion": rng.choice(["North", "South", "East", "West"]),
                }
            )
            for step, phase in enumerate(PHASES[: rng.randint(3, len(PHASES))], start=1):
                tasks.append(
                    {
                        "ProjectID": project_id,
                        "ProjectTaskID": f"{step:02d}",
                        "Description": phase,
                        "Status": rng.choice(["Active", "Active", "Completed", "Planned"]),
                        "Default": step == 1,
                        "StartDate": start + timedelta(days=30 * step),
                        "EndDate": start + timedelta(days=30 * step + 60),
                    }
                )
        return projects, tasks

    def _budgets(self, tasks, cost_codes):
        rng, budgets = self.rng, []
        for task in tasks:
            for code in rng.sample(cost_codes, min(2, len(cost_codes))):
                for group in rng.sample(ACCOUNT_GROUPS[:4], 2):
                    amount = round(rng.uniform(5_000, 400_000), 2)
                    budgets.append(
                        {
                            "ProjectID": task["ProjectID"],
                            "ProjectTaskID": task["ProjectTaskID"],
                            "CostCode": code["CostCodeID"],
                            "AccountGroup": group,
                            "Type": "Expense",
                            "Description": f"{code['Description']} {group.lower()}",
                            "UOM": "HOUR" if group == "LABOR" else "EA",
                            "OriginalBudgetedQty": float(rng.randrange(10, 2000)),
                            "OriginalBudgetedAmount": amount,
                            "RevisedBudgetedAmount": round(amount * rng.uniform(0.95, 1.2), 2),
                            "ActualAmount": round(amount * rng.uniform(0, 1.1), 2),
                        }
                    )
        return budgets

    def _commitments(self, projects, vendors):
        rng, orders, subcontracts = self.rng, [], []
        for project in projects:
            for _ in range(rng.randrange(4)):
                orders.append(
                    {
                        "RefNbr": f"CO{len(orders) + 1:05d}",
                        "ProjectID": project["ProjectID"],
                        "Description": f"{rng.choice(WORK)} scope change",
                        "Status": rng.choice(["On Hold", "Open", "Closed"]),
                        "Date": project["StartDate"] + timedelta(days=rng.randrange(300)),
                        "ExternalRefNbr": f"RFI-{rng.randrange(1, 400)}" if rng.random() < 0.5 else None,
                        "RevenueTotal": round(rng.uniform(-20_000, 90_000), 2),
                        "CommitmentsTotal": round(rng.uniform(0, 70_000), 2),
                    }
                )
            for _ in range(rng.randrange(3)):
                vendor = rng.choice(vendors)
                subcontracts.append(
                    {
                        "SubcontractNbr": f"SC{len(subcontracts) + 1:06d}",
                        "Vendor": vendor["VendorID"],
                        "ProjectID": project["ProjectID"],
                        "Description": f"{rng.choice(TRADES)} subcontract",
                        "Status": rng.choice(["Open", "Open", "Closed", "Pending Approval"]),
                        "Date": project["StartDate"] + timedelta(days=rng.randrange(60)),
                        "SubcontractTotal": round(rng.uniform(20_000, 2_000_000), 2),
                    }
                )
        return orders, subcontracts

    def _rates(self, unions, projects):
        rng, rates = self.rng, []
        for union in unions:
            for item in LABOR_ITEMS:
                for code, _, _, multiplier in EARNING_TYPES[:3]:
                    rates.append(
                        {
                            "RecordID": len(rates) + 1,
                            "Type": "Union Wage",
                            "Employee": None,
                            "UnionLocal": union["UnionLocalID"],
                            "LaborItem": item,
                            "ProjectID": rng.choice(projects)["ProjectID"] if rng.random() < 0.2 else None,
                            "EarningType": code,
                            "EffectiveDate": date(2024, 1, 1) + timedelta(days=rng.randrange(500)),
                            "Rate": round(rng.uniform(28, 72) * multiplier, 2),
                        }
                    )
        return rates


def _time_entries(data: SandboxData, tenant: str) -> list[tuple]:
    """TimeEntry rows referencing valid employees, projects, tasks, cost codes and earning types."""
    rng, count = data.rng(tenant, "TimeEntry"), data.settings.rows
    reference = data.reference(tenant)
    timeline = Timeline(data.anchor, data.rng(tenant, "TimeEntry-time"))
    stamps = timeline.stamps(count, cluster_sizes(count, rng))
    work_dates = [stamp - timedelta(hours=rng.randrange(2, 240), seconds=rng.randrange(3600)) for stamp in stamps]
    work_dates[: len(timeline.dst_instants)] = timeline.dst_instants[:count]
    employees = [(e["EmployeeID"], e["UnionLocal"]) for e in reference["Employee"]]
    tasks = [(t["ProjectID"], t["ProjectTaskID"]) for t in reference["ProjectTask"]]
    codes = [c["CostCodeID"] for c in reference["CostCode"]]
    earnings = ["RG"] * 16 + ["OT"] * 3 + ["DT", "HOL", "PTO", "SICK"]
    wcc = [code for code, _ in WCC]
    random_ = rng.random
    rows = []
    for n in range(count):
        employee, union = employees[int(random_() * len(employees))]
        project, task = tasks[int(random_() * len(tasks))]
        earning = earnings[int(random_() * len(earnings))]
        spent = 15 * (2 + int(random_() * 38))
        billable = random_() < 0.7
        rows.append(
            (
                guid(rng),
                0,
                "",
                guid(rng),
                employee,
                work_dates[n],
                project,
                task,
                codes[int(random_() * len(codes))],
                earning,
                LABOR_ITEMS[int(random_() * len(LABOR_ITEMS))],
                spent,
                spent - 15 * int(random_() * 3) if billable and spent > 30 else (spent if billable else 0),
                billable,
                spent if earning in ("OT", "DT") else 0,
                spent if billable and earning in ("OT", "DT") else 0,
                WORK[n % len(WORK)],
                f"MC-{tenant[:3].upper()}-{n:07d}" if random_() < 0.4 else None,
                "Completed" if random_() < 0.85 else "Open",
                union,
                wcc[n % len(wcc)],
                random_() < 0.3,
                round(28 + random_() * 40, 2),
                stamps[n],
                ("Day", "Swing", "Night")[n % 3],
            )
        )
    return rows


def _project_transactions(data: SandboxData, tenant: str) -> list[tuple]:
    """ProjectTransaction lines (1-9 per reference number) against valid projects, tasks and cost codes."""
    rng, count = data.rng(tenant, "ProjectTransaction"), data.settings.rows
    reference = data.reference(tenant)
    timeline = Timeline(data.anchor, data.rng(tenant, "ProjectTransaction-time"))
    stamps = timeline.stamps(count, cluster_sizes(count, rng))
    tasks = [(t["ProjectID"], t["ProjectTaskID"]) for t in reference["ProjectTask"]]
    codes = [c["CostCodeID"] for c in reference["CostCode"]]
    employees = [e["EmployeeID"] for e in reference["Employee"]]
    random_, rows, reference_nbr, line = rng.random, [], rng.randrange(1000, 90000), 0
    for n in range(count):
        if line == 0 or random_() < 0.3:
            reference_nbr, line = reference_nbr + 1, 0
        line += 1
        project, task = tasks[int(random_() * len(tasks))]
        labor = random_() < 0.5
        qty = float(1 + int(random_() * 80))
        rate = round(30 + random_() * 90, 2)
        group = "LABOR" if labor else ACCOUNT_GROUPS[1 + int(random_() * 3)]
        stamp = stamps[n]
        rows.append(
            (
                guid(rng),
                0,
                "",
                "TE" if labor else "AP",
                f"PM{reference_nbr:07d}",
                line,
                stamp.date() - timedelta(days=int(random_() * 5)),
                project,
                task,
                codes[int(random_() * len(codes))],
                group,
                LABOR_ITEMS[n % len(LABOR_ITEMS)] if labor else "MATERIAL",
                f"{WORK[n % len(WORK)]} ({group.lower()})",
                employees[int(random_() * len(employees))] if labor else None,
                qty,
                "HOUR" if labor else "EA",
                rate,
                round(qty * rate, 2),
                random_() < 0.7,
                stamp,
            )
        )
    return rows


_LARGE_BUILDERS = {"TimeEntry": _time_entries, "ProjectTransaction": _project_transactions}
