"""The control API: clock, record mutations with clock stamps, truth, counters; the seeded data."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

import pytest
import requests
from conftest import REST, sign_in

from airflow_provider_acumatica.sandbox import SandboxControlError


def test_clock_set_and_advance(make_sandbox):
    sandbox = make_sandbox()
    assert sandbox.control.set_clock("2026-01-01T00:00:00Z").isoformat().startswith("2026-01-01T00:00:00")
    moved = sandbox.control.advance_clock(600)
    assert (
        timedelta(seconds=600) <= moved - datetime.fromisoformat("2026-01-01T00:00:00+00:00") < timedelta(seconds=660)
    )
    with pytest.raises(SandboxControlError, match="offset"):
        sandbox.control.set_clock("2026-01-01T00:00:00")


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/_sandbox/clock", "advance_seconds"),
        ("/_sandbox/faults/held", "count"),
        ("/_sandbox/faults/held", "timeout_seconds"),
    ],
)
def test_a_control_field_that_is_not_a_number_answers_400_naming_it(shared_sandbox, path, field):
    response = requests.post(shared_sandbox.url + path, json={field: "soon"}, timeout=30)
    assert response.status_code == 400
    assert f"`{field}` must be a number, got 'soon'" in response.json()["exceptionMessage"]


def test_insert_update_delete_stamp_with_the_clock_and_show_in_rest(make_sandbox):
    sandbox = make_sandbox()
    sandbox.control.set_clock("2026-02-03T04:05:06.789Z")
    [new_id] = sandbox.control.insert(
        "Company", "CostCode", [{"CostCodeID": "99-900", "Description": "Test", "Active": True}]
    )
    updated = sandbox.control.update("Company", "CostCode", random=3, timestamp="2026-02-03T00:00:00Z")
    deleted = sandbox.control.delete("Company", "CostCode", ids=[new_id])
    truth = sandbox.control.truth("Company", "CostCode")
    stamps = {r["id"]: r["LastModifiedDateTime"] for r in truth["records"]}
    assert all(stamps[i] == "2026-02-03T00:00:00.000Z" for i in updated)
    assert deleted == [new_id] and new_id not in stamps and truth["deleted"][0]["id"] == new_id
    assert truth["deleted"][0]["deleted_at"].startswith("2026-02-03T04:05:")
    rest_ids = [r["id"] for r in sign_in(sandbox).get(f"{sandbox.url}{REST}/CostCode").json()]
    assert rest_ids == [r["id"] for r in truth["records"]]
    with pytest.raises(SandboxControlError, match="unknown field"):
        sandbox.control.insert("Company", "CostCode", [{"CostCodeID": "1", "Colour": "red"}])


def test_counters_and_reset(make_sandbox):
    sandbox = make_sandbox()
    sign_in(sandbox).get(f"{sandbox.url}{REST}/WCCCode")
    counters = sandbox.control.counters()
    assert (counters["logins"], counters["requests"], counters["open_sessions"]) == (1, 2, 1)
    reset = sandbox.control.reset_counters()
    assert (reset["logins"], reset["requests"], reset["open_sessions"]) == (0, 0, 1)


def test_data_differs_per_tenant_and_is_deterministic_per_seed(make_sandbox):
    def snapshot(sandbox, tenant):
        return sandbox.control.truth(tenant, "TimeEntry")["records"]

    one, two, other_seed = make_sandbox(seed=5), make_sandbox(seed=5), make_sandbox(seed=6)
    assert snapshot(one, "Company") == snapshot(two, "Company")
    assert snapshot(one, "Company") != snapshot(one, "Subsidiary")
    assert snapshot(one, "Company") != snapshot(other_seed, "Company")


def test_time_entries_reference_valid_records(shared_sandbox):
    truth = shared_sandbox.control.truth
    employees = {e["EmployeeID"] for e in truth("Company", "Employee")["records"]}
    tasks = {(t["ProjectID"], t["ProjectTaskID"]) for t in truth("Company", "ProjectTask")["records"]}
    codes = {c["CostCodeID"] for c in truth("Company", "CostCode")["records"]}
    earnings = {e["EarningTypeCodeID"] for e in truth("Company", "EarningTypeCode")["records"]}
    for entry in truth("Company", "TimeEntry")["records"]:
        assert entry["Employee"] in employees and (entry["ProjectID"], entry["ProjectTaskID"]) in tasks
        assert entry["CostCode"] in codes and entry["EarningType"] in earnings
    assert "LastModifiedDateTime" not in truth("Company", "UnionLocal")["records"][0]
    assert "LastModifiedDateTime" not in truth("Company", "LaborCostRate")["records"][0]


@pytest.mark.parametrize("entity", ["TimeEntry", "ProjectTransaction"])
def test_large_tables_have_a_cluster_larger_than_a_page(shared_sandbox, entity):
    stamps = Counter(r["LastModifiedDateTime"] for r in shared_sandbox.control.truth("Company", entity)["records"])
    assert stamps.most_common(1)[0][1] > 1000


@pytest.mark.parametrize(
    ("op", "body", "field"),
    [
        ("update", {"random": "x"}, "random"),
        ("update", {"random": -3}, "random"),
        ("update", {"random": 1.5}, "random"),
        ("insert", {"random": True}, "random"),
        ("delete", {"ids": 5}, "ids"),
        ("delete", {}, "ids"),
        ("update", {"records": {"id": "x"}}, "records"),
        ("insert", {"records": [], "timestamp": "soon"}, "timestamp"),
    ],
)
def test_a_mutation_of_the_wrong_shape_answers_400_naming_the_field(make_sandbox, op, body, field):
    sandbox = make_sandbox(rows=20)
    before = sandbox.control.truth("Company", "CostCode")
    response = requests.post(f"{sandbox.url}/_sandbox/tenants/Company/entities/CostCode/{op}", json=body, timeout=30)
    assert response.status_code == 400 and f"`{field}`" in response.json()["exceptionMessage"]
    assert sandbox.control.truth("Company", "CostCode") == before


def test_a_mutate_fault_of_the_wrong_shape_is_refused_when_injected(make_sandbox):
    sandbox = make_sandbox(rows=20)
    bad = {"kind": "mutate", "mutation": {"tenant": "Company", "entity": "CostCode", "op": "update", "random": "x"}}
    response = requests.post(f"{sandbox.url}/_sandbox/faults", json=bad, timeout=30)
    assert response.status_code == 400 and "`random`" in response.json()["exceptionMessage"]
    assert sign_in(sandbox).get(f"{sandbox.url}{REST}/CostCode").status_code == 200  # nothing fires
