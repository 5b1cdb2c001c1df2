"""The sandbox as a child process: its own interpreter, so it never competes for a GIL with its client."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def sandbox_process(*arguments: str) -> Iterator[str]:
    """Run `acumatica-sandbox --port 0 ARGUMENTS...` until the block ends; yields its instance URL."""
    command = [sys.executable, "-m", "airflow_provider_acumatica.sandbox.cli", "--port", "0", *arguments]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        url = process.stdout.readline().rsplit(" ", 1)[-1].strip()
        if not url.startswith("http"):
            raise RuntimeError(f"the sandbox did not start; run `{' '.join(command[2:])}` to see why")
        yield url
    finally:
        process.terminate()
        process.wait()
