"""Ctrl-C or SIGTERM that stops within seconds at any point, loses nothing finished, and says how
to resume.

Lightning turns a ``KeyboardInterrupt`` raised inside ``Trainer.fit`` into ``sys.exit(1)`` and
then ignores further SIGINTs, so a run would end with status 1 and no message, and a sweep would
carry on. While a command runs, SIGINT and SIGTERM (what ``kill``, a scheduler or a container
stop send) therefore raise :class:`RunInterrupted` instead: a ``BaseException`` that is not a
``KeyboardInterrupt``, which Lightning re-raises after its own teardown. Every ``finally`` on the
way runs (Ray actors, the disk store's folder, the W&B run are closed), a parallel sweep stops its
worker processes and waits for them, and the CLI prints one line and exits 130 (Ctrl-C) or 143
(SIGTERM). A second signal ends the process at once. Finished rounds are in the round checkpoint
(written atomically after every round), finished runs in their records.

A signal can land where its exception would be lost: inside a finaliser (Python prints and drops
it; the handler then only keeps it), or under a library's clean-up that fails in turn (Lightning's
teardown raises ``RuntimeError`` over it; :func:`surfacing_interrupts` digs it out). So the
interrupt received is also kept until its command ends, and :func:`raise_if_interrupted` raises it
at every training batch, round and sweep wait.

Sweep workers (:func:`worker_signals`) handle SIGTERM the same way: the cell in flight unwinds and
the worker exits at once (a process pool's worker would otherwise wait for its next cell); they
ignore SIGINT (the parent, which a terminal's Ctrl-C also reaches, stops them) and get SIGTERM when
their parent dies, even by SIGKILL (Linux), so none keeps training alone.
Ray's worker processes (actors, sweep cells on Ray) keep Ray's own SIGTERM handler, which exits
through ``sys.exit`` (so ``finally`` blocks and atexit handlers run there too); ``ray.init`` also
replaces the driver's handler, which :func:`reclaim_signals` puts back.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import threading

EXIT_INTERRUPTED = 130
SIGNALS = {signal.SIGINT: "Ctrl-C", signal.SIGTERM: "SIGTERM"}
_HANDLERS: list = []  # the handlers of the interruptible() blocks now open (innermost last)
# the interrupt received, kept until its command ends: a handler's exception raised while Python runs a
# finaliser (a ``__del__``, a weakref callback, a GC pass) is printed and dropped, and the run went on
_pending: RunInterrupted | None = None


class RunInterrupted(BaseException):
    """The user pressed Ctrl-C or the process got SIGTERM. ``round`` is the 1-based round in
    flight, when known; ``signum`` the signal."""

    def __init__(self, round_in_flight: int | None = None, signum: int = signal.SIGINT):
        super().__init__("interrupted")
        self.round = round_in_flight
        self.signum = signum

    def __reduce__(self):  # a worker's RunInterrupted reaches the parent pickled
        return (RunInterrupted, (self.round, self.signum))

    @property
    def exit_code(self) -> int:
        return 128 + int(self.signum)

    @property
    def cause(self) -> str:
        return SIGNALS.get(self.signum, f"signal {int(self.signum)}")


@contextlib.contextmanager
def interruptible():
    """SIGINT and SIGTERM raise :class:`RunInterrupted` once; a second one exits at once."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received = 0

    def on_signal(signum, frame):
        nonlocal received
        received += 1
        if received > 1:
            os._exit(128 + signum)
        _interrupt(signum, frame)

    global _pending
    previous = {s: signal.signal(s, on_signal) for s in SIGNALS}
    _HANDLERS.append(on_signal)
    try:
        yield
    finally:
        _HANDLERS.pop()
        if not _HANDLERS:
            _pending = None
        for s, handler in previous.items():
            signal.signal(s, handler)


def _interrupt(signum: int, frame) -> None:
    """Raise the interrupt, except inside a finaliser, where Python would print the exception as
    ignored and drop it: there it is only kept, and :func:`raise_if_interrupted` raises it."""
    global _pending
    _pending = RunInterrupted(signum=signum)
    while frame is not None:
        if frame.f_code.co_name == "__del__":
            return
        frame = frame.f_back
    raise RunInterrupted(signum=signum)


def raise_if_interrupted() -> None:
    """Raise the interrupt already received, if any: called at every training batch and round, so a
    signal whose exception a finaliser swallowed still stops the run within a batch."""
    if _pending is not None:
        raise RunInterrupted(signum=_pending.signum)


def interruption_behind(err: BaseException) -> RunInterrupted | None:
    """The :class:`RunInterrupted` that ``err`` was raised while handling, if any: Lightning's
    teardown after an interrupt can fail in turn (a Ctrl-C while a fit starts its epoch leaves
    ``len(combined_loader)`` raising ``RuntimeError``), which would hide the interrupt."""
    seen: set[int] = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, RunInterrupted):
            return err
        seen.add(id(err))
        err = err.__context__
    return None


@contextlib.contextmanager
def surfacing_interrupts():
    """Re-raise the interrupt behind an error that a library's clean-up raised while unwinding it,
    so the run stops with the one-line message (and a sweep cell as stopped, not failed)."""
    try:
        yield
    except Exception as err:
        interrupted = interruption_behind(err)
        if interrupted is None:
            raise
        raise interrupted from None


def reclaim_signals() -> None:
    """Put fedbench's handlers back after a library replaced them (``ray.init`` installs a SIGTERM
    handler that calls ``sys.exit``), so SIGTERM still ends in the one-line stop."""
    if _HANDLERS and threading.current_thread() is threading.main_thread():
        for s in SIGNALS:
            signal.signal(s, _HANDLERS[-1])


def ignore_sigint() -> None:
    """For worker processes: the parent handles Ctrl-C and stops its workers."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


_in_task = False
_stopping = False


def worker_signals(parent_pid: int) -> None:
    """A sweep worker's signals: SIGINT ignored; SIGTERM stops the cell in flight (it unwinds like
    a Ctrl-C) and the worker; SIGTERM when the parent ``parent_pid`` dies (:func:`die_with_parent`)."""
    ignore_sigint()

    def on_sigterm(signum, frame):
        global _stopping
        _stopping = True
        if _in_task:
            _interrupt(signum, frame)  # the cell unwinds; worker_task then ends the worker
        _exit_worker()

    signal.signal(signal.SIGTERM, on_sigterm)
    die_with_parent(parent_pid)


def _exit_worker() -> None:
    """End a stopped worker now: its cell has unwound (its W&B run finished, its store closed), the
    atexit handlers (W&B's service teardown) run, and the process exits without waiting on the
    pool's queue threads, which the parent no longer reads."""
    import atexit

    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    try:
        atexit._run_exitfuncs()
    finally:
        os._exit(128 + signal.SIGTERM)


@contextlib.contextmanager
def worker_task():
    """Around one cell in a worker: a SIGTERM during it raises :class:`RunInterrupted`; once a
    worker was told to stop, it starts no further cell."""
    global _in_task
    if _stopping:
        raise RunInterrupted(signum=signal.SIGTERM)
    _in_task = True
    try:
        yield
    finally:
        _in_task = False
        if _stopping:
            _exit_worker()


def die_with_parent(parent_pid: int) -> None:
    """Ask Linux to send this process SIGTERM when its parent exits (also by SIGKILL); a no-op
    elsewhere. Exits at once if the parent ``parent_pid`` is already gone."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGTERM), 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent_pid:
        sys.exit(128 + signal.SIGTERM)
