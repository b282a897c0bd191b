"""Ctrl-C that stops within seconds at any point, loses nothing finished, and says how to resume.

Lightning turns a ``KeyboardInterrupt`` raised inside ``Trainer.fit`` into ``sys.exit(1)`` and
then ignores further SIGINTs, so a run would end with status 1 and no message, and a sweep would
carry on. While a command runs, SIGINT therefore raises :class:`RunInterrupted` instead: a
``BaseException`` that is not a ``KeyboardInterrupt``, which Lightning re-raises after its own
teardown. The federation loop adds the round in flight and the CLI prints one line and exits 130.
A second Ctrl-C ends the process at once. Finished rounds are in the round checkpoint (written
atomically after every round), finished runs in their records.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading

EXIT_INTERRUPTED = 130


class RunInterrupted(BaseException):
    """The user pressed Ctrl-C. ``round`` is the 1-based round in flight, when known."""

    def __init__(self, round_in_flight: int | None = None):
        super().__init__("interrupted")
        self.round = round_in_flight


@contextlib.contextmanager
def interruptible():
    """SIGINT raises :class:`RunInterrupted` once; a second SIGINT exits the process at once."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    presses = 0

    def on_sigint(signum, frame):
        nonlocal presses
        presses += 1
        if presses > 1:
            os._exit(EXIT_INTERRUPTED)
        raise RunInterrupted()

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def ignore_sigint() -> None:
    """For worker processes: the parent handles Ctrl-C and stops its workers."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
