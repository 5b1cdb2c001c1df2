"""Sessions are signed out even when their holder forgets to: a hook never closed signs out when its process ends
normally; an OAuth run signs its session out at close, as a cookie run does. Over HTTP to the sandbox."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap

from airflow_provider_acumatica.hooks.acumatica import AcumaticaHook

FORGETFUL = textwrap.dedent("""
    import sys
    from airflow_provider_acumatica.hooks.acumatica import AcumaticaHook

    hook = AcumaticaHook(sys.argv[1])  # never closed, no `with`
    assert len(hook.get_entity_page("TimeEntry", top=5)) == 5
    print("read", hook.get_conn().authenticator.open_sessions, flush=True)
""")


def test_a_hook_never_closed_signs_out_when_its_process_ends(new_sandbox, acumatica_connection):
    sandbox = new_sandbox(rows=20, tenants=("Company",))
    conn_id = acumatica_connection(sandbox)
    done = subprocess.run([sys.executable, "-c", FORGETFUL, conn_id], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "read 1" in done.stdout.splitlines()  # the session was open when the script's work ended
    assert "POST /entity/auth/logout -> 204" in done.stdout
    counters = sandbox.control.counters()
    assert counters["logins"] == counters["logouts"] == 1 and counters["open_sessions"] == 0


def test_closing_a_hook_detaches_its_exit_sign_out(new_sandbox, acumatica_connection):
    sandbox = new_sandbox(rows=20, tenants=("Company",))
    hook = AcumaticaHook(acumatica_connection(sandbox))
    hook.get_entity_page("TimeEntry", top=1)
    hook.close(parallel=True)
    assert not hook._sign_out_at_exit.alive  # nothing kept alive, nothing done twice at exit


def test_an_oauth_run_signs_its_session_out_at_close(new_sandbox, acumatica_connection, caplog):
    sandbox = new_sandbox(rows=20, tenants=("Company",))
    with caplog.at_level(logging.INFO):
        with AcumaticaHook(acumatica_connection(sandbox, auth_type="oauth2_password")) as hook:
            hook.get_entity_page("TimeEntry", top=1)
            token = hook.get_conn().authenticator._used.token
    logouts = [record for record in caplog.records if "POST /entity/auth/logout -> 204" in record.getMessage()]
    assert len(logouts) == 1 and token not in caplog.text


def test_an_oauth_hook_that_sent_nothing_signs_nothing_out(new_sandbox, acumatica_connection):
    sandbox = new_sandbox(rows=20, tenants=("Company",))
    with AcumaticaHook(acumatica_connection(sandbox, auth_type="oauth2_password")) as hook:
        hook.get_conn()
    assert sandbox.control.counters()["requests"] == 0
