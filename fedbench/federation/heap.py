"""Hand freed heap memory back to the operating system at the end of every round.

A round allocates and frees hundreds of MB (client modules, batches, states, scoring). glibc keeps
freed memory in its heap for reuse, and after the first large free it raises its mmap threshold,
so later large tensors also come from the heap; with long-lived states between the holes, the heap
cannot shrink from its top. Measured (``make perf`` section c, fedprime, 100 clients a round): about
800 MB of freed memory stays resident after the first round, and the growth per stored client then
follows where states land in that slack. ``malloc_trim(0)`` returns the free pages in place
(``madvise``), in microseconds to milliseconds.
"""

from __future__ import annotations

import ctypes
import sys
from functools import cache


@cache
def _malloc_trim():
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None).malloc_trim  # glibc; musl and others have none
    except (OSError, AttributeError):
        return None


def release_freed_memory() -> bool:
    """Return the heap's free pages to the OS; whether this C library can (glibc only)."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
