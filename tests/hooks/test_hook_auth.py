"""Every auth mode over real HTTP against the sandbox: sign-in, reads, clear refusals, sign-outs always."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs, urlparse

import pytest
import requests

from airflow_provider_acumatica.client.errors import AcumaticaAuthError, AcumaticaConfigError
from airflow_provider_acumatica.hooks.acumatica import AcumaticaHook
from airflow_provider_acumatica.sandbox import SANDBOX_CLIENT_SECRET, SANDBOX_PASSWORD, sandbox_client_id

REDIRECT = "http://localhost:8080/oauth/callback"


def _project_ids(sandbox, tenant="Company") -> list[str]:
    return sorted(record["id"] for record in sandbox.control.truth(tenant, "Project")["records"])


def _authorization_code(hook: AcumaticaHook) -> tuple[str, str]:
    """Walk the authorization code flow the way a browser would (the sandbox user consents at once)."""
    url, state, verifier = hook.authorization_url(REDIRECT)
    answer = requests.get(url, allow_redirects=False, timeout=30)
    query = parse_qs(urlparse(answer.headers["Location"]).query)
    assert query["state"] == [state]
    return query["code"][0], verifier


@pytest.mark.parametrize("auth_type", ["cookie", "oauth2_password"])
def test_auth_mode_signs_in_and_reads(shared_sandbox, acumatica_connection, auth_type):
    conn_id = acumatica_connection(shared_sandbox, auth_type=auth_type)
    with AcumaticaHook(conn_id) as hook:
        assert sorted(record["id"] for record in hook.iter_entity("Project", page_size=7)) == _project_ids(
            shared_sandbox
        )
        assert hook.get_odata_page("PMProject", top=3)[0]["ContractCD"]


def test_authorization_code_flow_then_rotating_seed(shared_sandbox, acumatica_connection):
    shared_sandbox.control.reset_counters()
    conn_id = acumatica_connection(shared_sandbox, auth_type="oauth2_code", login=None, password=None)
    with AcumaticaHook(conn_id) as hook:
        code, verifier = _authorization_code(hook)
        hook.exchange_code(REDIRECT, code, verifier)
        first = [record["id"] for record in hook.iter_entity("Project")]
        store = hook.get_conn().token_store
        chain = store.read(hook.settings.token_key)
    assert sorted(first) == _project_ids(shared_sandbox) and chain.refresh_token

    # A refresh token pasted into the connection is only the seed: the store keeps the rotated chain.
    seed = chain.refresh_token
    seeded = acumatica_connection(
        shared_sandbox, auth_type="oauth2_code", login=None, password=None, refresh_token=seed
    )
    for _ in range(3):
        with AcumaticaHook(seeded) as hook:
            with store.locked(hook.settings.token_key) as stored:
                stored.expires_at = 0  # force a refresh on every round
            assert len(hook.get_entity_page("Project", top=2)) == 2
    counters = shared_sandbox.control.counters()
    assert counters["token_refreshes"] == 3 and counters["invalid_grant"] == 0
    assert store.read(hook.settings.token_key).refresh_token != seed


def test_no_refresh_token_for_code_flow_is_a_clear_error(shared_sandbox, acumatica_connection, tmp_path):
    conn_id = acumatica_connection(
        shared_sandbox,
        auth_type="oauth2_code",
        login=None,
        password=None,
        token_store=f"sqlite:///{tmp_path / 'empty.db'}",
    )
    with (
        AcumaticaHook(conn_id) as hook,
        pytest.raises(AcumaticaAuthError, match=f"airflow-acumatica connect --conn-id {conn_id}"),
    ):
        hook.get_entity_page("Project", top=1)


@pytest.mark.parametrize(
    ("auth_type", "options", "words"),
    [
        ("cookie", {"password": "wrong-password-1"}, "sign-in of user 'admin' to tenant 'Company' refused"),
        ("cookie", {"tenant": "NoSuchTenant"}, "to tenant 'NoSuchTenant' refused"),
        ("oauth2_password", {"password": "wrong-password-1"}, "password grant refused"),
        ("oauth2_password", {"client_secret": "wrong-client-secret"}, "invalid_client"),
    ],
)
def test_wrong_credentials_give_clear_errors(shared_sandbox, acumatica_connection, auth_type, options, words):
    shared_sandbox.control.reset_counters()
    conn_id = acumatica_connection(shared_sandbox, auth_type=auth_type, **options)
    with AcumaticaHook(conn_id) as hook:
        with pytest.raises(AcumaticaAuthError) as caught:
            hook.get_entity_page("Project", top=1)
        ok, message = hook.test_connection()
    assert words in str(caught.value) and not ok and words in message
    for secret in ("wrong-password-1", "wrong-client-secret", SANDBOX_PASSWORD, SANDBOX_CLIENT_SECRET):
        assert secret not in str(caught.value) and secret not in message
    assert shared_sandbox.control.counters()["open_sessions"] == 0


def test_invalid_settings_fail_at_hook_creation(shared_sandbox, acumatica_connection):
    conn_id = acumatica_connection(shared_sandbox, profile_timezone="Mars/Base")
    with pytest.raises(AcumaticaConfigError, match="connection 'acumatica_test', field 'profile_timezone'"):
        AcumaticaHook(conn_id)
    conn_id = acumatica_connection(shared_sandbox, auth_type="oauth2_password", client_secret="")
    with pytest.raises(AcumaticaConfigError, match="field 'client_secret'"):
        AcumaticaHook(conn_id)


def test_test_connection_signs_in_reads_and_signs_out(shared_sandbox, acumatica_connection):
    shared_sandbox.control.reset_counters()
    hook = AcumaticaHook(acumatica_connection(shared_sandbox))
    ok, message = hook.test_connection()
    counters = shared_sandbox.control.counters()
    assert ok and "tenant 'Company'" in message
    assert counters["logins"] == counters["logouts"] == 1 and counters["open_sessions"] == 0
    hook.close()


def test_sign_ins_equal_sign_outs_after_success_and_after_an_exception(shared_sandbox, acumatica_connection):
    shared_sandbox.control.reset_counters()
    conn_id = acumatica_connection(shared_sandbox, max_concurrent_requests=2)
    with AcumaticaHook(conn_id) as hook:
        assert len(list(hook.iter_entity("TimeEntry", page_size=50))) == 300
    with pytest.raises(RuntimeError, match="stop half way"), AcumaticaHook(conn_id) as hook:
        for index, _record in enumerate(hook.iter_entity("TimeEntry", page_size=50)):
            if index == 60:
                raise RuntimeError("stop half way")
    counters = shared_sandbox.control.counters()
    assert counters["logins"] == counters["logouts"] == 2 and counters["open_sessions"] == 0


def test_threads_that_race_to_use_a_new_hook_share_one_client_and_all_sessions_end(new_sandbox, acumatica_connection):
    # The operator's first requests may come from several threads at once (a parallel probe): every session
    # they open must belong to the one client that close() signs out.
    sandbox = new_sandbox(rows=30, tenants=("Company",), latency_ms=50)
    hook = AcumaticaHook(acumatica_connection(sandbox, max_concurrent_requests=3))
    start = threading.Barrier(6)

    def first_use(skip: int):
        start.wait()
        return hook.get_conn(), hook.get_entity_page("TimeEntry", top=5, skip=skip)

    with ThreadPoolExecutor(6) as pool:
        clients = {id(client) for client, _page in pool.map(first_use, range(0, 30, 5))}
    hook.close()
    counters = sandbox.control.counters()
    assert len(clients) == 1
    assert counters["logins"] == counters["logouts"] and counters["open_sessions"] == 0


def test_expired_session_signs_in_again_once(new_sandbox, acumatica_connection):
    sandbox = new_sandbox(rows=50, session_idle_seconds=60)
    with AcumaticaHook(acumatica_connection(sandbox)) as hook:
        assert len(hook.get_entity_page("TimeEntry", top=5)) == 5
        sandbox.control.advance_clock(120)  # the session times out on the server
        assert len(hook.get_entity_page("TimeEntry", top=5, skip=5)) == 5
    assert sandbox.control.counters()["logins"] == 2


def _seeded_code_connection(sandbox, acumatica_connection) -> str:
    """An oauth2_code connection whose token chain is started in its store."""
    conn_id = acumatica_connection(sandbox, auth_type="oauth2_code", login=None, password=None)
    with AcumaticaHook(conn_id) as hook:
        code, verifier = _authorization_code(hook)
        hook.exchange_code(REDIRECT, code, verifier)
    return conn_id


def test_a_401_for_another_workers_token_rereads_the_store_and_refreshes(new_sandbox, acumatica_connection):
    # Worker A holds the first token; worker B refreshed; then both tokens die on the server's clock while the
    # workers' clocks still call them valid (skew, or another worker's slow answer): A must not give up.
    sandbox = new_sandbox(rows=20, tenants=("Company",))
    conn_id = _seeded_code_connection(sandbox, acumatica_connection)
    with AcumaticaHook(conn_id) as worker_a, AcumaticaHook(conn_id) as worker_b:
        assert len(worker_a.get_entity_page("Project", top=1)) == 1
        with worker_b.get_conn().token_store.locked(worker_b.settings.token_key) as chain:
            chain.expires_at = 0
        assert len(worker_b.get_entity_page("Project", top=1)) == 1
        sandbox.control.reset_counters()
        sandbox.control.advance_clock(7200)
        assert len(worker_a.get_entity_page("Project", top=2)) == 2
    counters = sandbox.control.counters()
    assert counters["token_refreshes"] == 1 and counters["invalid_grant"] == 0


def test_a_retry_whose_fresh_token_also_expires_on_the_way_renews_again(new_sandbox, acumatica_connection):
    # A loaded machine, modelled by the server answering late: the first two reads of Project reach the token
    # check after 1.5 s, longer than a whole token life, so the refreshed token of the retry dies too.
    sandbox = new_sandbox(rows=20, tenants=("Company",), token_ttl=1)
    conn_id = _seeded_code_connection(sandbox, acumatica_connection)
    sandbox.control.inject_fault("slow", count=2, path_contains="/Project", delay_ms=1500)
    with AcumaticaHook(conn_id) as hook:
        assert len(hook.get_entity_page("Project", top=2)) == 2
    counters = sandbox.control.counters()
    assert counters["token_refreshes"] >= 2 and counters["invalid_grant"] == 0


def test_a_fresh_token_refused_after_a_renewal_is_an_auth_error(new_sandbox, acumatica_connection, caplog):
    # The token is for tenant Company, the OData path names Subsidiary: refused although alive, every time.
    sandbox = new_sandbox(rows=20)
    conn_id = acumatica_connection(
        sandbox, auth_type="oauth2_password", tenant="Subsidiary", client_id=sandbox_client_id("Company")
    )
    with AcumaticaHook(conn_id) as hook, pytest.raises(AcumaticaAuthError, match="still not authorized after renewing"):
        hook.get_odata_page("PMProject", top=1)
    refusals = [message for message in caplog.messages if "/PMProject?" in message and "-> 401" in message]
    assert len(refusals) == 2  # the read, one renewal, the read again: no loop
