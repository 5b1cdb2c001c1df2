"""A load's process memory: large answer bodies go back to the OS once freed; the collector skips older objects."""

from __future__ import annotations

import ctypes
import gc
import logging
from collections.abc import Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)

#: glibc's mallopt() parameter for the size from which a block gets a mapping of its own (malloc.h).
M_MMAP_THRESHOLD = -3
#: Blocks from this size on are mapped on their own and unmapped when freed: above a data page (served from the
#: heap and reused), below a page of timestamps.
LARGE_BLOCK_BYTES = 8 * 1024 * 1024


def return_large_blocks_to_the_os(threshold: int = LARGE_BLOCK_BYTES) -> bool:
    """Fix glibc's mmap threshold for this process; False where the C library has no such setting (musl, macOS).

    glibc maps a large block on its own, but each time it frees one it raises that threshold to the block's size
    (up to 32 MB): after the first probe page, every later one is carved from the calling thread's arena, which
    keeps it when freed. A load's threads then hold several freed probe pages each, by chance of which thread
    read which, and the task's peak grows with the number of pages (ADR 0005, benchmarks/RESULTS.md). Fixing it
    also turns off that raising. It is glibc's own setting (MALLOC_MMAP_THRESHOLD_), for this process only.
    """
    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)
    applied = bool(mallopt and mallopt(M_MMAP_THRESHOLD, threshold) == 1)
    log.debug("blocks of %d bytes and more returned to the OS when freed: %s", threshold, applied)
    return applied


@contextmanager
def older_objects_frozen() -> Iterator[None]:
    """Keep the cyclic garbage collector off the objects that exist before a load (Airflow's own, hundreds of
    thousands): otherwise each full collection the load's records set off walks them all, a large share of a
    large load's CPU (benchmarks/RESULTS.md). Records are collected as usual. A heap the host
    process froze already (a forking executor) is left frozen."""
    frozen_by_host = gc.get_freeze_count() > 0
    gc.freeze()
    try:
        yield
    finally:
        if not frozen_by_host:
            gc.unfreeze()
