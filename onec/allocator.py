"""Pin glibc's mmap threshold, so memory freed by a long run goes back to the system instead of piling up.

Why: a run allocates and frees buffers of a megabyte or so thousands of times (each JSON page, each parsed batch).
glibc raises its mmap threshold after the first such buffer is freed, and from then on serves them from its
per-thread heaps, which fragment: the peak then grows with the length of the run, not with the batch (the figures
are in docs/benchmarks.md, History). The process entry points (the CLI, the Dagster code location)
call `pin_mmap_threshold` once; a threshold set in the environment (`MALLOC_MMAP_THRESHOLD_`) is left alone, and
other platforms and C libraries are left as they are.
"""

from __future__ import annotations

import ctypes
import os
import sys

MMAP_THRESHOLD_BYTES = 128 * 1024
_M_MMAP_THRESHOLD = -3  # glibc's <malloc.h>
_ENVIRONMENT_SETTING = "MALLOC_MMAP_THRESHOLD_"


def pin_mmap_threshold(size: int = MMAP_THRESHOLD_BYTES) -> bool:
    """Set the threshold to `size` bytes; True when glibc took it."""
    if not sys.platform.startswith("linux") or _ENVIRONMENT_SETTING in os.environ:
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    mallopt = getattr(libc, "mallopt", None)
    if mallopt is None:
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, size))
