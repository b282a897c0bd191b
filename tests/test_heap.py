"""fedbench.federation.heap: freed heap memory goes back to the OS at the end of a round."""

from __future__ import annotations

import ctypes

import pytest

from fedbench.federation.heap import release_freed_memory

MB = 2**20


def _rss() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * 4096


def test_release_gives_back_holes_that_free_alone_keeps():
    if not release_freed_memory():
        pytest.skip("this C library has no malloc_trim (not glibc)")
    libc = ctypes.CDLL(None)
    libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    size, n = 64 * 1024, 2400  # 150 MB in blocks below any mmap threshold: they come from the heap
    blocks, pins = [], []
    for _ in range(n):
        blocks.append(libc.malloc(size))
        pins.append(
            libc.malloc(16)
        )  # a live pin after every block: the holes cannot merge or shrink from the top
        ctypes.memset(blocks[-1], 1, size)  # touched: resident
    before = _rss()
    for b in blocks:
        libc.free(b)
    after_free = _rss()
    release_freed_memory()
    after_release = _rss()
    for p in pins:
        libc.free(p)
    held = n * size
    assert before - after_free < 0.2 * held  # free() alone keeps nearly all of it resident
    assert after_free - after_release > 0.8 * held  # the release hands it back
