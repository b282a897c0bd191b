"""Processes a test started, found by walking /proc from their pids (never by name, so other work
on a shared machine is left alone), and stopped for sure."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

HAVE_PROC = Path("/proc/self/stat").exists()

# The hang guard of a test that waits on a child process (a fedbench run, a Ray driver, W&B's
# service). Idle, these children finish in seconds to a minute; on the 2-core CI machine with two
# trainings beside it everything runs up to ~8x slower (a 300 s guard once fired), so the guard is
# far above that: it only has to stop a child that will never finish.
HANG_GUARD_S = 1200


def _parents() -> dict[int, int]:
    """{pid: parent pid} of every process now."""
    out = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            out[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    return out


def descendants(*pids: int) -> set[int]:
    """Every process below ``pids`` now (children, their children, ...)."""
    parents, found, frontier = _parents(), set(), set(pids)
    while frontier:
        frontier = {p for p, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def running(pid: int) -> bool:
    """Alive and not a zombie (an exited child its new parent has not reaped yet)."""
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def stop_all(pids: set[int], grace_s: float = 15.0) -> set[int]:
    """SIGTERM every pid still running, SIGKILL those left after ``grace_s``; returns the pids
    that needed SIGKILL."""
    for pid in pids:
        if running(pid):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and any(running(p) for p in pids):
        time.sleep(0.2)
    killed = {p for p in pids if running(p)}
    for pid in killed:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return killed
