"""sandbox_process: the sandbox in a child process, as the demo and the benchmarks run it."""

from __future__ import annotations

import pytest
import requests

from airflow_provider_acumatica.sandbox import sandbox_process


def test_the_child_serves_until_the_block_ends():
    with sandbox_process("--tenants", "Acme", "--rows", "20") as url:
        assert requests.get(f"{url}/entity", timeout=10).json()["endpoints"][0]["name"] == "Default"
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{url}/entity", timeout=10)


def test_a_child_that_cannot_start_is_a_clear_error():
    with pytest.raises(RuntimeError, match="did not start"), sandbox_process("--profile-timezone", "Mars/Olympus"):
        pass
