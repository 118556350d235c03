"""Bound glibc's per-thread malloc arenas while indexing, so peak memory does not depend on luck.

Indexing runs three threads (decode ‖ prepare ‖ encode) that allocate and free frame-sized buffers.
glibc gives a thread that finds the main heap busy an arena of its own (up to 8 per core), and
fragmentation spread over many arenas made the peak RSS of the same 30-minute video vary from
821 to 1047 MiB between runs. Two arenas kept it at 779-803 MiB in every run (BENCHMARKS.md, memory).
The limit only holds for arenas not yet created, so ``import frameseek`` sets it, before torch, FFmpeg
or our threads allocate; set ``MALLOC_ARENA_MAX`` yourself to choose another value.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
import threading

M_ARENA_MAX = -8
"""glibc's ``mallopt`` parameter number for the arena limit (malloc.h)."""

_lock = threading.Lock()
_done = False


def limit_malloc_arenas(count: int = 2) -> bool:
    """Limit this process to ``count`` glibc malloc arenas (once; a no-op off glibc).

    ``MALLOC_ARENA_MAX`` in the environment is the user's choice (glibc read it at start) and is kept.
    Returns True if the limit was set by this call.
    """
    global _done
    with _lock:
        if _done or not sys.platform.startswith("linux") or os.environ.get("MALLOC_ARENA_MAX"):
            return False
        _done = True
        try:
            mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
        except (OSError, AttributeError):  # not glibc (musl has no mallopt arenas)
            return False
        return bool(mallopt(M_ARENA_MAX, count))
