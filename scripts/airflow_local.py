"""`make airflow`: Airflow as a newcomer browses it, on this machine, against the Acumatica sandbox.

The API server (UI), scheduler, dag-processor and triggerer run as separate processes on a SQLite metadata
database with the LocalExecutor, under .airflow-local/ (kept between runs); the sandbox licenses 3 concurrent
requests and 3 API users; the connections are the demo's (SQLite warehouse .airflow-local/warehouse.db). Prints the
UI's URL and login, then runs until Ctrl-C. Not part of `make demo` or `make test`.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from demo import ROOT, TENANTS, airflow_environment

from airflow_provider_acumatica.sandbox import sandbox_process

HOME = ROOT / ".airflow-local"
USER = "admin"
PROCESSES = ("api-server", "scheduler", "dag-processor", "triggerer")


def port(preferred: int) -> int:
    """`preferred` if free on loopback, else any free port."""
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", preferred))
        except OSError:
            probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def environment(sandbox_url: str, api_port: int) -> dict[str, str]:
    passwords = HOME / "passwords.json"
    if not passwords.exists():
        passwords.write_text(json.dumps({USER: secrets.token_urlsafe(9)}))
    env = airflow_environment(sandbox_url, HOME / "warehouse.db")
    env.update(
        {
            "AIRFLOW_HOME": str(HOME / "airflow"),
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USER}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(port(8793)),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(port(8794)),
        }
    )
    return env


def main() -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # a closed terminal stops everything too (see finally)
    (HOME / "airflow").mkdir(parents=True, exist_ok=True)
    api_port = port(8080)
    with sandbox_process(
        "--tenants", ",".join(TENANTS.values()), "--rows", "5000", "--max-concurrent", "3", "--max-sessions", "3"
    ) as sandbox_url:
        env = environment(sandbox_url, api_port)
        airflow = str(Path(sys.executable).with_name("airflow"))
        for command in (
            [airflow, "db", "migrate"],
            [sys.executable, "-m", "airflow_provider_acumatica.bundle", "pools", "--airflow", airflow],
        ):
            subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
        logs = {name: open(HOME / f"{name}.log", "a") for name in PROCESSES}  # noqa: SIM115 - closed at exit
        started = [
            subprocess.Popen(
                [airflow, name, *(["--host", "127.0.0.1", "--port", str(api_port)] if name == "api-server" else [])],
                env=env,
                stdout=logs[name],
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            for name in PROCESSES
        ]
        password = json.loads((HOME / "passwords.json").read_text())[USER]
        print(f"Airflow UI: http://127.0.0.1:{api_port}   login: {USER} / {password}")
        print(f"  Acumatica sandbox: {sandbox_url} (licence: 3 concurrent requests, 3 API users)")
        print(
            f"  DAGs acumatica_sync__company and __subsidiary (paused: switch one on, or Trigger with the form); "
            f"warehouse {HOME / 'warehouse.db'}; logs {HOME}/*.log.  Ctrl-C stops everything.",
            flush=True,
        )
        try:
            while all(process.poll() is None for process in started):
                time.sleep(1)
            print("an Airflow process stopped; see the logs in", HOME, file=sys.stderr)
        except KeyboardInterrupt:
            pass
        finally:
            for process in started:
                if process.poll() is None:
                    os.killpg(process.pid, signal.SIGTERM)
            for process in started:
                process.wait()


if __name__ == "__main__":
    main()
