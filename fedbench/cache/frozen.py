"""Frozen per-row work (a pass of the frozen backbone that depends only on the input), computed
once per row on first use, stored on disk and shared by every process of the machine.

PPT's un-prompted query pass, CLIP's text tower and FedMVP's per-modality features depend on a
row's input and frozen weights only, yet a naive loop recomputes them at every step and every
evaluation. A :class:`FrozenTable` computes them for a fixed block of :attr:`chunk` consecutive rows
the first time any row of the block is asked for, writes the block as ``.npy`` files
(atomically), and serves later requests from memory-mapped blocks. Because a block's content is a
function of its rows alone (never of the batch that happened to ask first), every run, executor
and process reads identical values; the table's key holds everything the values depend on
(backbone weights, rows, precision, device type, block size).

Blocks are filled lazily, so a smoke run touches a few hundred rows, not the whole dataset.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from fedbench.cache.arrays import open_rows, write_rows
from fedbench.cache.folder import cache_dir

Compute = Callable[[np.ndarray], dict[str, torch.Tensor]]  # table rows -> {name: [len(rows), ...]}

SMOKE_CHUNK = 1  # a smoke run touches a few hundred scattered rows: each costs itself only
_chunk_override: list[int] = []  # set by a smoke run


def frozen_chunk(default: int) -> int:
    """The block size a table should use: ``default``, or a smoke run's small blocks."""
    return _chunk_override[-1] if _chunk_override else default


class small_blocks:
    """Within this context every new table computes blocks of :data:`SMOKE_CHUNK` rows (a smoke run
    touches a few hundred scattered rows; blocks of 16 computed 16x as many with CLIP B/16 on a CPU)."""

    def __enter__(self):
        _chunk_override.append(SMOKE_CHUNK)

    def __exit__(self, *exc):
        _chunk_override.pop()


class FrozenTable:
    """Rows ``0..n-1`` of named frozen outputs, filled block by block by ``compute``."""

    def __init__(self, kind: str, key: str, n: int, compute: Compute, chunk: int = 64):
        self.kind, self.key, self.n, self.compute, self.chunk = (
            kind,
            key,
            n,
            compute,
            chunk,
        )  # chunk: in the key
        self.folder = cache_dir() / "frozen" / f"{kind}-{key}"
        self._blocks: dict[int, dict[str, np.ndarray]] = {}
        self._lock = threading.Lock()

    def _block_path(self, b: int, name: str) -> Path:
        return self.folder / f"{b:07d}.{name}.npy"

    def _load(self, b: int) -> dict[str, np.ndarray] | None:
        done = self.folder / f"{b:07d}.done"
        if not done.exists():
            return None
        try:
            names = done.read_text().split()
            return {name: open_rows(self._block_path(b, name)) for name in names}
        except (OSError, ValueError):  # damaged: computed again
            return None

    def _fill(self, b: int) -> dict[str, np.ndarray]:
        rows = np.arange(b * self.chunk, min(self.n, (b + 1) * self.chunk))
        out = self.compute(rows)
        self.folder.mkdir(parents=True, exist_ok=True)
        for name, value in out.items():
            value = value.detach().cpu()
            array = (value.float() if value.dtype in (torch.bfloat16, torch.float16) else value).numpy()
            write_rows(self._block_path(b, name), tuple(array.shape), array.dtype, [array])
        from fedbench.safe_io import atomic_write_text

        atomic_write_text(self.folder / f"{b:07d}.done", " ".join(sorted(out)))
        loaded = self._load(b)
        assert loaded is not None
        return loaded

    def block(self, b: int) -> dict[str, np.ndarray]:
        with self._lock:
            if b not in self._blocks:
                self._blocks[b] = self._load(b) or self._fill(b)
            return self._blocks[b]

    def rows(self, index) -> dict[str, torch.Tensor]:
        """Every named output for table rows ``index`` (any order, repeats allowed), as tensors."""
        index = np.atleast_1d(np.asarray(torch.as_tensor(index).cpu(), dtype=np.int64))
        if len(index) and (index.min() < 0 or index.max() >= self.n):
            raise IndexError(f"{self.kind}: rows outside 0..{self.n - 1}")
        blocks = index // self.chunk
        out: dict[str, torch.Tensor] = {}
        for b in np.unique(blocks):
            at = np.flatnonzero(blocks == b)
            for name, array in self.block(int(b)).items():
                picked = torch.from_numpy(np.ascontiguousarray(array[index[at] - b * self.chunk]))
                if name not in out:
                    out[name] = torch.empty((len(index), *picked.shape[1:]), dtype=picked.dtype)
                out[name][torch.from_numpy(at)] = picked
        return out

    def all_rows(self) -> dict[str, torch.Tensor]:
        """Every row (small tables only: this holds the table in memory)."""
        return self.rows(np.arange(self.n))
