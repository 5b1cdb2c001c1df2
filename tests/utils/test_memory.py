"""return_large_blocks_to_the_os against the real C library, each case in a fresh interpreter (a clean heap)."""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys

import pytest

# A 30 MB page read and freed, then a 20 MB one: what the second leaves in the process once freed, in MB.
RETAINED_AFTER_TWO_PAGES = """
import sys
from airflow_provider_acumatica.utils.memory import return_large_blocks_to_the_os

def rss_mb():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:")) / 1024

if sys.argv[1] == "fixed":
    assert return_large_blocks_to_the_os()
page = b"x" * (30 << 20)
del page
before = rss_mb()
page = b"x" * (20 << 20)
del page
print(rss_mb() - before)
"""

pytestmark = pytest.mark.skipif(not hasattr(ctypes.CDLL(None), "gnu_get_libc_version"), reason="glibc only")


def _retained_mb(mode: str) -> float:
    """Run without glibc's MALLOC_* settings that this environment may carry: they would decide the outcome."""
    command = [sys.executable, "-c", RETAINED_AFTER_TWO_PAGES, mode]
    environment = {name: value for name, value in os.environ.items() if not name.startswith("MALLOC_")}
    return float(subprocess.run(command, env=environment, capture_output=True, text=True, check=True).stdout)


# The control: without it, the test below would pass on a glibc that never kept the page in the first place.
def test_glibc_alone_keeps_a_freed_page_once_it_has_freed_a_larger_one() -> None:
    assert _retained_mb("default") > 15


def test_with_the_threshold_fixed_a_freed_page_goes_back_to_the_os() -> None:
    assert _retained_mb("fixed") < 5
