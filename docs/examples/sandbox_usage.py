"""The sandbox from Python, as docs/sandbox.md shows it; tests/dags/test_doc_examples.py runs `changed_entries`."""

from __future__ import annotations


def changed_entries() -> tuple[str, list[str]]:
    """Start a sandbox of 5,000 rows and change 50 time entries: (its URL, the ids of the changed entries)."""
    # [START sandbox]
    from airflow_provider_acumatica.sandbox import SandboxSettings, start_sandbox

    with start_sandbox(SandboxSettings(rows=5000, naive_datetimes=True)) as sandbox:  # a background thread
        url = sandbox.url  # instance URL for an `acumatica` connection
        changed = sandbox.control.update("Company", "TimeEntry", random=50)  # ids of the changed records
    # [END sandbox]
    return url, changed
