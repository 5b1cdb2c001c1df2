"""The hook across real processes: a task killed mid-read signs out; eight workers share one token chain."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
import requests

from airflow_provider_acumatica.hooks.acumatica import AcumaticaHook

READER = str(Path(__file__).with_name("reader_process.py"))
REDIRECT = "http://localhost:8080/oauth/callback"


def _reader(conn_id: str, mode: str, output=subprocess.PIPE) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, READER, conn_id, mode],
        stdout=output,
        stderr=subprocess.STDOUT,
        text=True,
        env=dict(os.environ),
    )


def test_sign_ins_equal_sign_outs_after_a_kill(new_sandbox, acumatica_connection):
    sandbox = new_sandbox(rows=3000, tenants=("Company",))
    process = _reader(acumatica_connection(sandbox, conn_id="acu_kill"), "kill")
    try:
        for line in process.stdout:  # blocks until the reader has its first page (logs come first)
            if line.strip() in ("first-page", "finished-without-kill"):
                break
        assert line.strip() == "first-page"
        assert sandbox.control.counters()["open_sessions"] == 1
        process.send_signal(signal.SIGTERM)
        _out, errors = process.communicate(timeout=60)
    finally:
        process.kill()
    counters = sandbox.control.counters()
    assert process.returncode == 143, _out[-2000:]
    assert counters["logins"] == counters["logouts"] == 1 and counters["open_sessions"] == 0


@pytest.mark.slow
def test_eight_processes_share_one_oauth_chain_with_two_second_tokens(new_sandbox, acumatica_connection, tmp_path):
    sandbox = new_sandbox(rows=50, tenants=("Company",), token_ttl=2)
    options = dict(auth_type="oauth2_code", login=None, password=None, token_store=f"sqlite:///{tmp_path / 'chain.db'}")
    with AcumaticaHook(acumatica_connection(sandbox, conn_id="acu_seed", **options)) as hook:
        url, state, verifier = hook.authorization_url(REDIRECT)
        code = parse_qs(urlparse(requests.get(url, allow_redirects=False, timeout=30).headers["Location"]).query)[
            "code"
        ][0]
        hook.exchange_code(REDIRECT, code, verifier)
    sandbox.control.reset_counters()
    conn_id = acumatica_connection(sandbox, conn_id="acu_seed", **options)
    outputs = [open(tmp_path / f"worker{index}.log", "w+") for index in range(8)]  # noqa: SIM115
    workers = [_reader(conn_id, "30", output) for output in outputs]
    for worker in workers:
        worker.wait(timeout=180)
    logs = []
    for output in outputs:
        output.seek(0)
        logs.append(output.read())
        output.close()
    counters = sandbox.control.counters()
    assert [worker.returncode for worker in workers] == [0] * 8, [log[-2000:] for log in logs]
    # each worker printed its page count (its OAuth sign-out is logged after it)
    assert all(int(next(line for line in reversed(log.splitlines()) if line.strip().isdigit())) > 0 for log in logs)
    assert counters["invalid_grant"] == 0 and counters["token_refreshes"] >= 10
    with AcumaticaHook(conn_id) as hook:  # the chain survived: one more refresh still works
        with hook.get_conn().token_store.locked(hook.settings.token_key) as chain:
            chain.expires_at = 0
        assert len(hook.get_entity_page("Project", top=1)) == 1
    assert sandbox.control.counters()["invalid_grant"] == 0
