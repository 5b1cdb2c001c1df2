"""Fixtures of the hook tests (connections and fresh sandboxes come from tests/conftest.py)."""

from __future__ import annotations

import pytest

from airflow_provider_acumatica.sandbox import SandboxSettings, start_sandbox


@pytest.fixture(scope="session")
def shared_sandbox():
    """A small two-tenant sandbox for tests that only read; tests that count must reset its counters."""
    with start_sandbox(SandboxSettings(rows=300, seed=11)) as sandbox:
        yield sandbox
