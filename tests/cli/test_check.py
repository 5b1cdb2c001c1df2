"""`airflow-acumatica check` against the sandbox over real HTTP: exit status, messages, the time-zone check."""

from __future__ import annotations

import io

from airflow_provider_acumatica.cli.main import main


def _check(conn_id: str, *argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = main(["check", "--conn-id", conn_id, *argv], stdin=io.StringIO(), stdout=out, stderr=err)
    return status, out.getvalue(), err.getvalue()


def test_a_good_connection_passes_and_signs_out(new_sandbox, acumatica_connection):
    sandbox = new_sandbox(rows=20)
    status, out, err = _check(acumatica_connection(sandbox, profile_timezone="America/New_York"))
    assert (status, err) == (0, "")
    assert "Endpoints: Default 22.200.001" in out and "Read 1 Project record" in out
    assert "match profile_timezone America/New_York" in out and out.rstrip().endswith("OK")
    counters = sandbox.control.counters()
    assert counters["logins"] == counters["logouts"] == 1 and counters["open_sessions"] == 0


def test_a_profile_time_zone_mismatch_fails_naming_both_zones(new_sandbox, acumatica_connection):
    sandbox = new_sandbox(rows=20)  # the sandbox user's profile is America/New_York, sent with offsets
    status, out, err = _check(acumatica_connection(sandbox, profile_timezone="Europe/London"))
    assert status == 1
    assert "the profile time zone of user admin looks like -0" in err  # -05:00 in winter, -04:00 in summer
    assert "the connection says Europe/London" in err and "Set the connection's profile_timezone" in err
    assert sandbox.control.counters()["open_sessions"] == 0


def test_date_times_without_offset_cannot_be_compared_and_say_so(new_sandbox, acumatica_connection):
    sandbox = new_sandbox(rows=5, naive_datetimes=True)
    status, out, _ = _check(acumatica_connection(sandbox, profile_timezone="Europe/London"))
    assert status == 0 and "come without an offset" in out and "Europe/London" in out


def test_an_endpoint_version_the_instance_does_not_serve_fails(new_sandbox, acumatica_connection):
    sandbox = new_sandbox(rows=5)
    status, _, err = _check(acumatica_connection(sandbox, endpoint_version="21.100.001"))
    assert status == 1
    assert "does not serve endpoint Default 21.100.001" in err and "24.200.001" in err


def test_wrong_credentials_and_unknown_connections_fail_clearly(new_sandbox, acumatica_connection):
    sandbox = new_sandbox(rows=5)
    status, _, err = _check(acumatica_connection(sandbox, password="Not-The-Password-42"))
    assert status == 1 and err.startswith("Check failed:") and "Not-The-Password-42" not in err
    status, _, err = _check("acumatica_nowhere")
    assert status == 1 and "'acumatica_nowhere' is not defined" in err
