"""Fixtures of the UI tests: a real API server with this provider's plugin (see ui_server.py)."""

from ui_server import airflow_ui  # noqa: F401 - a fixture
