"""The `acumatica-sandbox` console script, run as a real subprocess."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import requests

from airflow_provider_acumatica.sandbox import SANDBOX_PASSWORD, SANDBOX_USER

SCRIPT = str(Path(sys.executable).with_name("acumatica-sandbox"))
FLAGS = (
    "--host",
    "--port",
    "--tenants",
    "--rows",
    "--seed",
    "--profile-timezone",
    "--naive-datetimes",
    "--latency-ms",
    "--token-ttl",
    "--max-sessions",
    "--requests-per-minute",
    "--max-concurrent",
    "--redirect-uri",
    "--session-idle-seconds",
    "--max-page-size",
    "--ms-per-record",
)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_help_lists_every_flag():
    result = subprocess.run([SCRIPT, "--help"], capture_output=True, text=True, timeout=60, check=True)
    assert all(flag in result.stdout for flag in FLAGS)


def test_console_script_serves_the_entity_api():
    port = _free_port()
    process = subprocess.Popen(
        [SCRIPT, "--port", str(port), "--rows", "50", "--tenants", "Acme", "--naive-datetimes"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        banner = process.stdout.readline()  # printed once the port is bound
        assert f"http://127.0.0.1:{port}" in banner
        url = f"http://127.0.0.1:{port}"
        assert [e["name"] for e in requests.get(f"{url}/entity", timeout=10).json()["endpoints"]][0] == "Default"
        session = requests.Session()
        login = session.post(
            f"{url}/entity/auth/login", json={"name": SANDBOX_USER, "password": SANDBOX_PASSWORD, "tenant": "Acme"}
        )
        assert login.status_code == 204
        entries = session.get(f"{url}/entity/Default/24.200.001/TimeEntry", timeout=10).json()
        assert (
            len(entries) == 50
            and "+" not in entries[0]["Date"]["value"][19:]
            and "-" not in entries[0]["Date"]["value"][19:]
        )
    finally:
        process.terminate()
        process.wait(timeout=10)
        process.stdout.close()


def test_bad_time_zone_is_a_clear_error():
    result = subprocess.run([SCRIPT, "--profile-timezone", "Mars/Olympus"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "Mars/Olympus" in result.stderr
