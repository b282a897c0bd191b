"""Batches of a bundle's rows, assembled off the training thread.

The order of the rows is torch's ``DataLoader`` order (its sampler, its generator, the global RNG
draw its iterator makes when it is created), so every batch is exactly the batch the plain loop
made before. What moves is the work: a background thread gathers the next batch (``index_select``
from memory-mapped columns releases the GIL) into pinned host buffers when the model is on a GPU,
so the copy to the device can run ``non_blocking`` while the previous step computes. ``prefetch``
batches are kept in flight; ``prefetch=0`` assembles in the caller's thread.

:attr:`BatchLoader.wait_s` accumulates how long the consumer waited for a batch: what
``make perf`` reports as the data wait share.
"""

from __future__ import annotations

import queue
import threading
import time

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

PREFETCH = 2
_END = object()


class _Rows(Dataset):
    def __init__(self, index: np.ndarray, codes: np.ndarray):
        self.index = torch.as_tensor(np.asarray(index), dtype=torch.long)
        self.codes = torch.as_tensor(np.asarray(codes), dtype=torch.long)

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> int:  # a position; the batch is gathered from the positions
        return i


def _positions(items: list[int]) -> torch.Tensor:
    return torch.as_tensor(items, dtype=torch.long)


class BatchLoader(DataLoader):
    """Batches of ``bundle`` rows ``index`` with missing codes ``codes``; see the module docstring.

    A ``DataLoader`` over row positions whose iterator gathers the rows: Lightning treats it as the
    plain ``DataLoader`` it was (it would otherwise call ``iter`` once more to test it, which draws
    from the sampler's generator and shifts every permutation)."""

    def __init__(self, bundle, index: np.ndarray, codes: np.ndarray, *, batch_size: int, shuffle: bool, seed: int = 0,
                 pin: bool = False, prefetch: int = PREFETCH):
        rows = _Rows(index, codes)
        gen = torch.Generator().manual_seed(seed) if shuffle else None
        super().__init__(rows, batch_size=batch_size, shuffle=shuffle, generator=gen, collate_fn=_positions, num_workers=0)
        self.bundle, self.rows, self.pin, self.prefetch = bundle, rows, pin, prefetch
        self.wait_s = 0.0

    def assemble(self, pos: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.bundle.batch(self.rows.index[pos], self.rows.codes[pos], pin=self.pin)

    def __iter__(self):
        positions = super().__iter__()  # in the caller's thread: the DataLoader's RNG draws happen here
        if self.prefetch <= 0:
            return _Inline(self, positions)
        return _Prefetcher(self, positions)


class _Inline:
    def __init__(self, loader: BatchLoader, positions):
        self.loader, self.positions = loader, positions

    def __iter__(self):
        return self

    def __next__(self):
        t = time.perf_counter()
        try:
            return self.loader.assemble(next(self.positions))
        finally:
            self.loader.wait_s += time.perf_counter() - t


class _Prefetcher:
    """Runs ``loader.assemble`` over the positions in a daemon thread, ``loader.prefetch`` ahead.
    The thread holds no reference to this object, so a consumer that stops early (a capped fit)
    lets it be collected, which stops the thread."""

    def __init__(self, loader: BatchLoader, positions):
        self.loader = loader
        self.queue: queue.Queue = queue.Queue(maxsize=max(1, loader.prefetch))
        self.stop = threading.Event()
        self.thread = threading.Thread(target=_work, args=(loader.assemble, positions, self.queue, self.stop),
                                       daemon=True, name="fedbench-batches")
        self.thread.start()

    def __iter__(self):
        return self

    def __next__(self):
        t = time.perf_counter()
        item = self.queue.get()
        self.loader.wait_s += time.perf_counter() - t
        if item is _END:
            self.close()
            raise StopIteration
        if isinstance(item, BaseException):
            self.close()
            raise item
        return item

    def close(self) -> None:
        self.stop.set()

    def __del__(self) -> None:
        self.stop.set()


def _put(q: queue.Queue, stop: threading.Event, item) -> bool:
    while not stop.is_set():
        try:
            q.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


def _work(assemble, positions, q: queue.Queue, stop: threading.Event) -> None:
    try:
        for pos in positions:
            if not _put(q, stop, assemble(pos)):
                return
    except BaseException as err:  # handed to the consumer, raised there
        _put(q, stop, err)
        return
    _put(q, stop, _END)


def make_loader(bundle, index: np.ndarray, codes: np.ndarray, *, batch_size: int, shuffle: bool, seed: int = 0,
                pin: bool = False, prefetch: int = PREFETCH) -> BatchLoader:
    """Batches of ``bundle`` rows ``index`` with per-row missing codes ``codes`` (aligned with index)."""
    return BatchLoader(bundle, index, codes, batch_size=batch_size, shuffle=shuffle, seed=seed, pin=pin, prefetch=prefetch)
