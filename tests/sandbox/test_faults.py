"""Injected faults over real HTTP, and the mutation fired in the middle of a client's paging."""

from __future__ import annotations

import pytest
import requests
from conftest import REST, sign_in


@pytest.fixture
def sandbox(make_sandbox):
    return make_sandbox(rows=2600)


def test_500_and_503_hit_count_requests_on_matching_paths(sandbox):
    session = sign_in(sandbox)
    sandbox.control.inject_fault("503", count=2, path_contains="TimeEntry")
    assert session.get(f"{sandbox.url}{REST}/CostCode").status_code == 200
    assert [session.get(f"{sandbox.url}{REST}/TimeEntry?$top=1").status_code for _ in range(3)] == [503, 503, 200]
    sandbox.control.inject_fault("500")
    assert session.get(f"{sandbox.url}{REST}/CostCode").status_code == 500


def test_dropped_connection_and_truncated_body(sandbox):
    session = sign_in(sandbox)
    sandbox.control.inject_fault("drop")
    with pytest.raises(requests.ConnectionError):
        session.get(f"{sandbox.url}{REST}/CostCode")
    sandbox.control.inject_fault("truncate")
    with pytest.raises((requests.exceptions.ChunkedEncodingError, requests.ConnectionError)):
        session.get(f"{sandbox.url}{REST}/TimeEntry?$top=100")
    assert session.get(f"{sandbox.url}{REST}/CostCode").status_code == 200


def test_slow_answer_is_held_until_faults_are_cleared_and_the_control_api_waits_for_it(sandbox):
    import threading

    session = sign_in(sandbox)
    sandbox.control.inject_fault("slow", delay_ms=60_000)
    assert sandbox.control.wait_held(1, timeout=0) == 0  # timeout 0: a look, no wait
    answers = []
    worker = threading.Thread(target=lambda: answers.append(session.get(f"{sandbox.url}{REST}/CostCode").status_code))
    worker.start()
    assert sandbox.control.wait_held(1) == 1  # returns once the request sleeps in the fault
    assert answers == []
    sandbox.control.clear_faults()
    worker.join()
    assert answers == [200]
    assert sandbox.control.wait_held(1, timeout=0) == 0  # it left the fault


def test_login_limit_fault_refuses_logins_only(sandbox):
    session = sign_in(sandbox)
    sandbox.control.inject_fault("login_limit")
    assert session.get(f"{sandbox.url}{REST}/CostCode").status_code == 200
    refused = requests.post(
        f"{sandbox.url}/entity/auth/login", json={"name": "admin", "password": "x", "tenant": "Company"}
    )
    assert refused.status_code == 429 and refused.json()["exceptionMessage"] == "API Login Limit"


def test_rate_faults_are_seeded(make_sandbox):
    def pattern():
        sandbox = make_sandbox(seed=3)
        sandbox.control.inject_fault("500", rate=0.5, path_contains="WCCCode")
        session = sign_in(sandbox)
        return [session.get(f"{sandbox.url}{REST}/WCCCode").status_code for _ in range(12)]

    first = pattern()
    assert first == pattern() and {200, 500} == set(first)


def test_mutation_in_the_middle_of_paging(sandbox):
    """Updating 50 records right before page 2 moves them to the end of a LastModifiedDateTime delta."""
    session = sign_in(sandbox)
    sandbox.control.inject_fault(
        "mutate",
        path_contains="skip=1000",
        mutation={"tenant": "Company", "entity": "TimeEntry", "op": "delete", "random": 50},
    )
    url = f"{sandbox.url}{REST}/TimeEntry"
    first = session.get(url, params={"$top": 1000, "$skip": 0, "$select": "Summary"}).json()
    second = session.get(url, params={"$top": 1000, "$skip": 1000, "$select": "Summary"}).json()
    truth = sandbox.control.truth("Company", "TimeEntry")
    assert len(truth["deleted"]) == 50 and len(truth["records"]) == 2550
    expected_second = [r["id"] for r in truth["records"][1000:2000]]
    assert [r["id"] for r in second] == expected_second
    assert first[-1]["id"] != second[0]["id"]


def test_bad_fault_options_are_refused(sandbox):
    from airflow_provider_acumatica.sandbox import SandboxControlError

    with pytest.raises(SandboxControlError, match="unknown kind"):
        sandbox.control.inject_fault("explode")
    with pytest.raises(SandboxControlError, match="mutation"):
        sandbox.control.inject_fault("mutate")
    with pytest.raises(SandboxControlError, match="polls must be 0 or more"):
        sandbox.control.inject_fault("long_running", polls=-1)
    for option in ("count", "rate", "delay_ms", "polls"):
        with pytest.raises(SandboxControlError, match=f"`{option}` must be a number, got 'soon'"):
            sandbox.control.inject_fault("slow", **{option: "soon"})


def test_ignore_skip_answers_every_matching_page_as_the_first(sandbox):
    """Hostility testing only (real Acumatica honours $skip): matching requests lose their $skip, others keep it."""
    session = sign_in(sandbox)
    url = f"{sandbox.url}{REST}/TimeEntry"

    def ids(skip: int) -> list[str]:
        return [
            record["id"]
            for record in session.get(url, params={"$top": 100, "$skip": skip, "$select": "Summary"}).json()
        ]

    first, honoured = ids(0), ids(100)
    sandbox.control.inject_fault("ignore_skip", count=2, path_contains="TimeEntry")
    assert ids(100) == first and ids(200) == first
    assert ids(100) == honoured  # the count is spent: $skip is honoured again
    assert set(first).isdisjoint(honoured)


def test_long_running_action_answers_202_and_is_applied_by_the_status_check_after_the_polls(sandbox):
    """As Acumatica runs long operations: 202 + Location; the status answers 202 `polls` times, then the action is
    applied and it answers 204, and so on after that; an unknown operation is a 404. A fault-free action still
    answers 204 at once."""
    session = sign_in(sandbox)
    [entry] = session.get(
        f"{sandbox.url}{REST}/TimeEntry", params={"$top": 1, "$filter": "ApprovalStatus eq 'Open'"}
    ).json()

    def status() -> str:
        return session.get(f"{sandbox.url}{REST}/TimeEntry/{entry['id']}").json()["ApprovalStatus"]["value"]

    sandbox.control.inject_fault("long_running", polls=2, path_contains="CompleteTimeEntry")
    started = session.post(f"{sandbox.url}{REST}/TimeEntry/CompleteTimeEntry", json={"entity": {"id": entry["id"]}})
    location = started.headers["Location"]
    assert started.status_code == 202 and location.startswith(f"{REST}/TimeEntry/CompleteTimeEntry/status/")
    checks = [session.get(f"{sandbox.url}{location}") for _ in range(2)]
    assert [check.status_code for check in checks] == [202, 202] and status() == "Open"
    assert session.get(f"{sandbox.url}{location}").status_code == 204 and status() == "Completed"
    assert session.get(f"{sandbox.url}{location}").status_code == 204
    assert (
        session.get(f"{sandbox.url}{location.rsplit('/', 1)[0]}/{'0' * 8}-0000-0000-0000-{'0' * 12}").status_code == 404
    )
    reopened = session.post(f"{sandbox.url}{REST}/TimeEntry/OpenTimeEntry", json={"entity": {"id": entry["id"]}})
    assert reopened.status_code == 204 and status() == "Open"


def test_a_long_running_action_no_longer_allowed_when_it_runs_answers_its_error_at_the_status(sandbox):
    session = sign_in(sandbox)
    [entry] = session.get(
        f"{sandbox.url}{REST}/TimeEntry", params={"$top": 1, "$filter": "ApprovalStatus eq 'Open'"}
    ).json()
    sandbox.control.inject_fault("long_running", polls=0, path_contains="CompleteTimeEntry", count=1)
    location = session.post(
        f"{sandbox.url}{REST}/TimeEntry/CompleteTimeEntry", json={"entity": {"id": entry["id"]}}
    ).headers["Location"]
    assert (
        session.post(
            f"{sandbox.url}{REST}/TimeEntry/CompleteTimeEntry", json={"entity": {"id": entry["id"]}}
        ).status_code
        == 204
    )  # completed meanwhile
    for _ in range(2):  # the failure stays the operation's outcome
        failed = session.get(f"{sandbox.url}{location}")
        assert failed.status_code == 500 and "disabled for a time entry with the status Completed" in failed.text


def test_a_fault_after_the_write_loses_the_answer_of_a_write_that_was_applied(sandbox):
    session = sign_in(sandbox)
    entry = session.get(f"{sandbox.url}{REST}/TimeEntry?$top=1").json()[0]
    body = {name: entry[name] for name in ("Employee", "Date", "ProjectID", "ProjectTaskID", "CostCode", "EarningType")}
    body.update(TimeSpent={"value": "01:15"}, ExternalRefNbr={"value": "AFTER-1"})
    sandbox.control.inject_fault("drop", phase="after", path_contains="TimeEntry", method="PUT")
    assert session.get(f"{sandbox.url}{REST}/TimeEntry?$top=1").status_code == 200  # a GET does not match
    with pytest.raises(requests.ConnectionError):
        session.put(f"{sandbox.url}{REST}/TimeEntry", json=body, headers={"If-None-Match": "*"})
    found = session.get(f"{sandbox.url}{REST}/TimeEntry", params={"$filter": "ExternalRefNbr eq 'AFTER-1'"}).json()
    assert [record["TimeSpent"]["value"] for record in found] == ["01:15"]  # saved, though the answer was lost
    sandbox.control.inject_fault("500", phase="after", path_contains="TimeEntry/CompleteTimeEntry")
    completed = session.post(
        f"{sandbox.url}{REST}/TimeEntry/CompleteTimeEntry", json={"entity": {"id": found[0]["id"]}}
    )
    assert completed.status_code == 500
    assert (
        session.get(f"{sandbox.url}{REST}/TimeEntry/{found[0]['id']}").json()["ApprovalStatus"]["value"] == "Completed"
    )


@pytest.mark.parametrize(
    "options",
    [
        ({"kind": "slow", "phase": "after"}, "phase"),
        ({"kind": "drop", "phase": "during"}, "phase"),
        ({"kind": "drop", "method": "PATCH"}, "method"),
    ],
)
def test_a_phase_or_method_the_fault_cannot_have_is_refused(sandbox, options):
    options, named = options
    answer = requests.post(f"{sandbox.url}/_sandbox/faults", json=options)
    assert answer.status_code == 400 and named in answer.text
