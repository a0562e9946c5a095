"""Large allocations handed back to the operating system when freed (glibc).

An HTTP login runs scrypt, which allocates 16 MiB for each verification. glibc serves a block that large with
a mapping of its own and unmaps it on free, but then raises its threshold for such blocks (up to 32 MiB),
so that the next ones come from a heap or a thread's arena and stay in the process after they are freed:
a burst of logins grew the server by a block for each thread that happened to run one, and more bursts by
more. A fixed threshold keeps every large block a mapping of its own, gone when it is freed.
"""

from __future__ import annotations

import ctypes
import logging
import sys

log = logging.getLogger("customer_updates.memory")

M_MMAP_THRESHOLD = -3  # mallopt's parameter number in glibc's malloc.h
LARGE_BLOCK = 1 << 20  # bytes: below scrypt's 16 MiB, above what a request's parsing allocates at once


def return_large_blocks(threshold: int = LARGE_BLOCK) -> bool:
    """Have glibc map blocks of `threshold` bytes or more on their own (and unmap them on free). False
    where that cannot be set (not Linux with glibc); nothing changes there."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    done = bool(mallopt(M_MMAP_THRESHOLD, threshold))
    if not done:
        log.info("allocator threshold not set", extra={"threshold": threshold})
    return done
