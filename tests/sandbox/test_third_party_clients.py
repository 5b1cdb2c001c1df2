"""Clients nobody on this team wrote, from PyPI, against the sandbox over HTTP: requests-oauthlib's OAuth2Session
(authorization code with PKCE, refresh with rotation, reuse refused, revocation, sign-out), python-odata (a DAC
read with a filter, $count, a key read, $expand, the service document) and easy-acumatica (built from the
endpoint's swagger.json: a list with $filter/$select/$expand, a time entry created and completed, a file, the
generic inquiry, sign-out)."""

from __future__ import annotations

import threading
import time
from datetime import datetime

import pytest
import requests
from conftest import REST
from easy_acumatica import AcumaticaClient
from easy_acumatica.odata import F, QueryOptions
from oauthlib.oauth2 import InvalidGrantError
from odata import ODataService
from requests_oauthlib import OAuth2Session

from airflow_provider_acumatica.sandbox import SANDBOX_CLIENT_SECRET, SANDBOX_PASSWORD, sandbox_client_id

REDIRECT = "http://localhost:8080/oauth/callback"
CLIENT_ID = sandbox_client_id("Company")


def _signed_in(sandbox) -> tuple[OAuth2Session, list[dict]]:
    """An OAuth2Session through the authorization code flow with PKCE; the sandbox's user consents at once, so the
    browser's visit is one GET whose redirect carries the code. Returns the session and the tokens it stored."""
    stored: list[dict] = []
    session = OAuth2Session(
        CLIENT_ID,
        redirect_uri=REDIRECT,
        scope=["api", "offline_access"],
        pkce="S256",
        auto_refresh_url=f"{sandbox.url}/identity/connect/token",
        auto_refresh_kwargs={"client_id": CLIENT_ID, "client_secret": SANDBOX_CLIENT_SECRET},
        token_updater=stored.append,
    )
    url, state = session.authorization_url(f"{sandbox.url}/identity/connect/authorize")
    assert "code_challenge=" in url and "code_challenge_method=S256" in url
    callback = requests.get(url, allow_redirects=False).headers["Location"]
    token = session.fetch_token(
        f"{sandbox.url}/identity/connect/token", authorization_response=callback, client_secret=SANDBOX_CLIENT_SECRET
    )
    assert state in callback and token["refresh_token"]
    return session, stored


def test_oauth2session_code_flow_with_pkce_refresh_rotation_and_sign_out(make_sandbox):
    sandbox = make_sandbox(max_sessions=1)
    session, stored = _signed_in(sandbox)
    assert session.get(f"{sandbox.url}{REST}/WCCCode").status_code == 200
    first_refresh = session.token["refresh_token"]
    sandbox.control.advance_clock(3601)  # the access token expires on the server...
    session.token = {**session.token, "expires_at": time.time() - 1}  # ...and the client knows it: it refreshes
    assert session.get(f"{sandbox.url}{REST}/WCCCode").status_code == 200
    assert len(stored) == 1 and stored[0]["refresh_token"] != first_refresh
    assert sandbox.control.counters()["open_sessions"] == 1  # the refreshed token reuses the grant's session
    stale = OAuth2Session(CLIENT_ID, token={**stored[0], "refresh_token": first_refresh})
    with pytest.raises(InvalidGrantError):
        stale.refresh_token(
            f"{sandbox.url}/identity/connect/token", client_id=CLIENT_ID, client_secret=SANDBOX_CLIENT_SECRET
        )
    assert session.post(f"{sandbox.url}/entity/auth/logout").status_code == 204
    assert sandbox.control.counters()["open_sessions"] == 0


def test_oauth2session_revokes_its_refresh_token(make_sandbox):
    sandbox = make_sandbox()
    session, _ = _signed_in(sandbox)
    url, headers, body = session._client.prepare_token_revocation_request(
        f"{sandbox.url}/identity/connect/revocation", session.token["refresh_token"], token_type_hint="refresh_token"
    )
    revoked = requests.post(url, data=body, headers=headers, auth=(CLIENT_ID, SANDBOX_CLIENT_SECRET))
    assert revoked.status_code == 200
    with pytest.raises(InvalidGrantError):
        session.refresh_token(
            f"{sandbox.url}/identity/connect/token", client_id=CLIENT_ID, client_secret=SANDBOX_CLIENT_SECRET
        )
    assert session.get(f"{sandbox.url}{REST}/WCCCode").status_code == 401


@pytest.fixture(scope="module")
def dac_service(shared_sandbox):
    return ODataService(
        f"{shared_sandbox.url}/t/Company/api/odata/dac/",
        auth=("admin", SANDBOX_PASSWORD),
        reflect_entities=True,
        quiet_progress=True,
    )


def test_python_odata_reads_a_dac_with_a_filter_and_counts(dac_service, shared_sandbox):
    project_type = dac_service.entities["PMProject"]
    active = dac_service.query(project_type).filter(project_type.Status == "Active")
    projects = list(active)
    truth = [r for r in shared_sandbox.control.truth("Company", "Project")["records"] if r["Status"] == "Active"]
    assert sorted(p.ContractCD for p in projects) == sorted(r["ProjectID"] for r in truth) and projects
    assert active.count() == len(truth)
    cut = sorted(r["LastModifiedDateTime"] for r in truth)[len(truth) // 2]
    recent = active.filter(project_type.LastModifiedDateTime >= datetime.fromisoformat(cut))  # a bare v4 literal
    assert sorted(p.ContractCD for p in recent) == sorted(
        r["ProjectID"] for r in truth if r["LastModifiedDateTime"] >= cut
    )
    assert dac_service.query(project_type).count() == len(shared_sandbox.control.truth("Company", "Project")["records"])


def test_python_odata_key_read_and_expand(dac_service):
    project_type = dac_service.entities["PMProject"]
    project = dac_service.query(project_type).order_by(project_type.ContractID.desc()).first()
    url = project.__odata__.instance_url
    assert url.endswith(f"PMProject({project.ContractID})")
    by_key = dac_service.default_context.connection.execute_get(url)
    assert by_key["ContractCD"] == project.ContractCD and by_key["NoteID"] == str(project.NoteID)
    # Expanded rows come back raw: python-odata cannot build PMTask objects reached through a navigation property
    # while PMTask has a collection-bound function (px.GetDeletedRecords) - a limit of the client, not of $expand.
    with_tasks = dac_service.query(project_type).raw({"$expand": "Tasks", "$top": "20"})
    tasks = {(t["ProjectID"], t["TaskCD"]) for p in with_tasks for t in p["Tasks"]}
    task_type = dac_service.entities["PMTask"]
    assert tasks and tasks <= {(t.ProjectID, t.TaskCD) for t in dac_service.query(task_type)}


def test_python_odata_reads_the_service_document(dac_service, shared_sandbox):
    document = dac_service.default_context.connection.execute_get(dac_service.url, params={"$format": "json"})
    assert {entry["name"] for entry in document["value"]} == set(dac_service.entities)


class _SharedChain:
    """The one token chain eight workers share, as a deployment's token store keeps it: refreshes are serialized
    and a worker whose token is stale adopts the newest instead of refreshing again (which would break the chain)."""

    def __init__(self, sandbox, token: dict) -> None:
        self.sandbox, self.token = sandbox, token
        self._lock = threading.Lock()

    def refreshed(self, stale_access_token: str) -> dict:
        with self._lock:
            if self.token["access_token"] == stale_access_token:
                self.token = OAuth2Session(CLIENT_ID, token=self.token).refresh_token(
                    f"{self.sandbox.url}/identity/connect/token",
                    client_id=CLIENT_ID,
                    client_secret=SANDBOX_CLIENT_SECRET,
                )
            return self.token


def test_eight_workers_of_one_chain_share_one_seat_while_a_ninth_grant_is_refused(make_sandbox):
    sandbox = make_sandbox(max_sessions=2, token_ttl=600, session_idle_seconds=7200)
    occupant = requests.Session()  # another integration holds the licence's second seat all along
    occupant.post(
        f"{sandbox.url}/entity/auth/login", json={"name": "admin", "password": SANDBOX_PASSWORD, "tenant": "Subsidiary"}
    )
    first, _ = _signed_in(sandbox)
    chain, rounds, workers = _SharedChain(sandbox, first.token), 6, 8
    start, end = threading.Barrier(workers + 1), threading.Barrier(workers + 1)
    statuses: list[int] = []

    def work() -> None:
        session = OAuth2Session(CLIENT_ID, token=chain.token)
        for _ in range(rounds):
            start.wait()
            response = session.get(f"{sandbox.url}{REST}/CostCode", params={"$top": "5"})
            if response.status_code == 401:  # the access token expired on the server: take the chain's newest
                session.token = chain.refreshed(session.token["access_token"])
                response = session.get(f"{sandbox.url}{REST}/CostCode", params={"$top": "5"})
            statuses.append(response.status_code)
            end.wait()

    threads = [threading.Thread(target=work) for _ in range(workers)]
    for thread in threads:
        thread.start()
    ninth = None
    for round_number in range(rounds):
        start.wait()
        end.wait()
        if round_number == 0:
            ninth, _ = _signed_in(sandbox)  # its own grant: it needs a seat of its own, and none is free
            refused = ninth.get(f"{sandbox.url}{REST}/CostCode")
            assert refused.status_code == 429 and refused.json()["message"] == "API Login Limit"
        if round_number in (1, 3):
            sandbox.control.advance_clock(601)  # every worker's access token expires at once
    for thread in threads:
        thread.join()
    assert statuses == [200] * (workers * rounds)
    counters = sandbox.control.counters()
    assert (counters["login_limit_refusals"], counters["invalid_grant"], counters["token_refreshes"]) == (1, 0, 2)
    assert counters["peak_open_sessions"] == 2
    assert OAuth2Session(CLIENT_ID, token=chain.token).post(f"{sandbox.url}/entity/auth/logout").status_code == 204
    ninth.refresh_token(
        f"{sandbox.url}/identity/connect/token", client_id=CLIENT_ID, client_secret=SANDBOX_CLIENT_SECRET
    )
    assert ninth.get(f"{sandbox.url}{REST}/CostCode").status_code == 200  # the chain's seat is free now


def test_easy_acumatica_signs_in_lists_creates_a_time_entry_runs_an_action_attaches_and_signs_out(
    make_sandbox, tmp_path
):
    sandbox = make_sandbox()
    truth = sandbox.control.truth
    client = AcumaticaClient(
        base_url=sandbox.url,
        username="admin",
        password=SANDBOX_PASSWORD,
        tenant="Company",
        cache_dir=tmp_path,
        cache_methods=False,
        auto_load_env=False,
    )  # built from swagger.json
    assert sandbox.control.counters()["open_sessions"] == 1

    options = QueryOptions(
        filter=F.Status == "Active", select=["ProjectID", "Status", "Tasks/ProjectTaskID"], expand=["Tasks"]
    )
    projects = client.project.get_list(options=options)
    active = {r["ProjectID"] for r in truth("Company", "Project")["records"] if r["Status"] == "Active"}
    assert {p["ProjectID"]["value"] for p in projects} == active and "Description" not in projects[0]
    tasks = truth("Company", "ProjectTask")["records"]
    for project in projects:
        assert sorted(t["ProjectTaskID"]["value"] for t in project["Tasks"]) == sorted(
            t["ProjectTaskID"] for t in tasks if t["ProjectID"] == project["ProjectID"]["value"]
        )
        assert all(set(t) == {"id", "rowNumber", "note", "ProjectTaskID", "custom", "_links"} for t in project["Tasks"])

    task = tasks[0]
    employee = next(e for e in truth("Company", "Employee")["records"] if e["Status"] == "Active")
    models = client.models
    entry = models.TimeEntry(
        Employee=employee["EmployeeID"],
        Date="2026-03-02T07:00:00",  # the client sends no datetime
        ProjectID=task["ProjectID"],
        ProjectTaskID=task["ProjectTaskID"],
        CostCode=truth("Company", "CostCode")["records"][0]["CostCodeID"],
        EarningType="RG",
        TimeSpent="08:00",
        Billable=True,
        ExternalRefNbr="EASY-1",
        Summary="from easy-acumatica",
    )
    created = client.time_entry.put_entity(entry)
    assert created["ApprovalStatus"]["value"] == "Open" and created["BillableTime"]["value"] == "08:00"
    client.time_entry.invoke_action_complete_time_entry(
        models.CompleteTimeEntry(entity=models.TimeEntry(TimeEntryID=created["TimeEntryID"]["value"]))
    )
    stored = [r for r in truth("Company", "TimeEntry")["records"] if r["ExternalRefNbr"] == "EASY-1"]
    assert [(r["id"], r["ApprovalStatus"], r["Date"]) for r in stored] == [
        (created["id"], "Completed", "2026-03-02T12:00:00.000Z")
    ]  # wall time in the profile zone, stored in UTC

    client.time_entry.put_file(created["id"], "timesheet.pdf", b"%PDF-1.4", comment="signed")
    assert [f["filename"] for f in client.time_entry.get_files(created["id"])] == ["TimeEntry\\timesheet.pdf"]
    inquiry = client.inquiries.TimeActivities(QueryOptions(top=5))  # the generic inquiry over OData, Basic auth
    assert [row["NoteID"] for row in inquiry["value"]] == [
        r["id"] for r in truth("Company", "TimeEntry")["records"][:5]
    ]

    client.logout()
    counters = sandbox.control.counters()
    assert (counters["logins"], counters["logouts"], counters["open_sessions"]) == (1, 1, 0)
