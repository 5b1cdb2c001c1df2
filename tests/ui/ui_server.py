"""A real `airflow api-server` with this provider's plugin, a SQLite metadata DB, the sandbox and two users.

One per test module (starting it takes a while): its own AIRFLOW_HOME, a free loopback port (never 8793),
the simple auth manager with `alice` (admin) and `victor` (viewer), and connection `acumatica_company`
(oauth2_code) kept in the metadata DB, as the UI edits it; the bundle's sync DAG file in its DAGs folder.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import requests

from airflow_provider_acumatica.sandbox import SANDBOX_CLIENT_SECRET, SandboxSettings, sandbox_client_id, start_sandbox

CONN_ID = "acumatica_company"
MISSING_TABLE = "ProjectBudgetExt"  # in the config, not on the endpoint: its load fails, for the page's last error
SYNC_DAG_FILE = Path(__file__).resolve().parents[2] / "dags" / "acumatica_sync.py"
USERS = {"alice": ("admin", "alice-pass"), "victor": ("viewer", "victor-pass")}
SECRET_KEY = "ui-test-secret-key"
STARTUP_SECONDS = 180


@dataclasses.dataclass
class AirflowUI:
    url: str
    home: Path
    env: dict
    sandbox: object
    warehouse_url: str

    def token(self, user: str) -> str:
        """A JWT for `user` from the simple auth manager's token endpoint."""
        answer = requests.post(
            f"{self.url}/auth/token", json={"username": user, "password": USERS[user][1]}, timeout=30
        )
        answer.raise_for_status()
        return answer.json()["access_token"]

    def airflow(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "airflow", *args], env=self.env, capture_output=True, text=True, timeout=timeout
        )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def airflow_ui(tmp_path_factory):
    home = tmp_path_factory.mktemp("airflow-ui")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    (home / "passwords.json").write_text(json.dumps({name: password for name, (_, password) in USERS.items()}))
    (home / "dags").mkdir()
    warehouse_url = f"sqlite:///{home / 'warehouse.db'}"
    shutil.copy(SYNC_DAG_FILE, home / "dags")
    (home / "acumatica.yaml").write_text(
        textwrap.dedent(f"""\
        defaults: {{retries: 0}}
        tenants:
          - name: company
            acumatica_conn_id: {CONN_ID}
            warehouse_conn_id: acumatica_warehouse
            tables: [{{name: Project, mode: incremental}}, {{name: {MISSING_TABLE}, mode: incremental}}]
        """)
    )
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__AUTH_MANAGER": "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(f"{name}:{role}" for name, (role, _) in USERS.items()),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
        "AIRFLOW__API__BASE_URL": url,
        "AIRFLOW__API__SECRET_KEY": SECRET_KEY,
        "AIRFLOW__API_AUTH__JWT_SECRET": "ui-test-jwt-secret",
        "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
        "ACUMATICA_DAGS_CONFIG": str(home / "acumatica.yaml"),
        "OAUTHLIB_INSECURE_TRANSPORT": "1",
    }
    env.pop("AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST", None)
    sandbox = start_sandbox(SandboxSettings(rows=50, redirect_uris=(f"{url}/acumatica/oauth2redirect",)))
    ui = AirflowUI(url, home, env, sandbox, warehouse_url)
    server = None
    try:
        migrated = ui.airflow("db", "migrate")
        assert migrated.returncode == 0, migrated.stderr[-3000:]
        connections = {
            CONN_ID: {
                "conn_type": "acumatica",
                "host": sandbox.url,
                "extra": json.dumps(
                    {
                        "tenant": "Company",
                        "auth_type": "oauth2_code",
                        "client_id": sandbox_client_id("Company"),
                        "client_secret": SANDBOX_CLIENT_SECRET,
                        "token_store": f"sqlite:///{home / 'tokens.db'}",
                        "backoff_seconds": 0.01,
                    }
                ),
            },
            "acumatica_warehouse": {"conn_type": "generic", "extra": json.dumps({"sqlalchemy_url": warehouse_url})},
        }
        (home / "connections.json").write_text(json.dumps(connections))
        imported = ui.airflow("connections", "import", str(home / "connections.json"))
        assert imported.returncode == 0, imported.stderr[-3000:]
        log = open(home / "api-server.log", "w")
        server = subprocess.Popen(
            [sys.executable, "-m", "airflow", "api-server", "-H", "127.0.0.1", "-p", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        _wait_until_up(url, server, home / "api-server.log")
        yield ui
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                server.kill()
        sandbox.stop()


def _wait_until_up(url: str, server: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"the API server exited: {log.read_text()[-3000:]}")
        try:
            if requests.get(f"{url}/api/v2/monitor/health", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)  # polling a server that is starting: not a wait for a timed condition
    raise AssertionError(f"the API server did not answer within {STARTUP_SECONDS} s: {log.read_text()[-3000:]}")
