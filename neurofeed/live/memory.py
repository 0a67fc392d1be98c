"""Process-wide memory setting of a live session (glibc's mmap threshold; Linux only)."""

from __future__ import annotations

import ctypes
import ctypes.util
import sys


def keep_memory_flat() -> None:
    """Ask glibc to return large freed buffers to the OS (Linux only; a no-op elsewhere).

    glibc raises its mmap threshold after the first large free, so later multi-MB temporaries
    (the baseline refit's least-squares system) land on the heap and stay in RSS for the rest
    of a session. A fixed 128 kB threshold keeps them mmapped and returned when freed.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt(-3, 128 * 1024)  # M_MMAP_THRESHOLD
    except (OSError, AttributeError):
        pass
