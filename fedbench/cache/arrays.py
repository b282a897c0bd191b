"""Arrays of rows on disk: written chunk by chunk, read memory-mapped, gathered by row index.

A dataset's decoded pixels, token ids or frozen features are far larger than RAM at real size
(MAP's Food-101 at 384 px: 40 GB). They are written once in their final layout as ``.npy`` files,
a chunk at a time (the writer never holds more than one chunk), and opened read-only with
``mmap``: every process of a machine (sweep workers, Ray actors) then shares one copy through the
page cache, and a process's resident memory holds only the rows it touched recently.

``.npy`` is numpy's plain header + raw bytes; it is read with ``allow_pickle=False``, so a file
received from someone else can hold numbers only, never code.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import IO

import numpy as np
import torch

from fedbench.safe_io import atomic_write

__all__ = ["MappedRows", "open_rows", "write_rows"]


def write_rows(path: Path, shape: tuple[int, ...], dtype, chunks: Iterable[np.ndarray]) -> Path:
    """Write an ``.npy`` array of ``shape`` from ``chunks`` (consecutive row blocks, in order)
    atomically: the file appears complete or not at all. Raises ValueError when the chunks do not
    add up to ``shape``."""
    dtype = np.dtype(dtype)

    def write(fh: IO[bytes]) -> None:
        header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": tuple(shape)}
        np.lib.format.write_array_header_2_0(fh, header)
        rows = 0
        for chunk in chunks:
            chunk = np.ascontiguousarray(chunk, dtype=dtype)
            if chunk.shape[1:] != tuple(shape[1:]):
                raise ValueError(
                    f"chunk of shape {chunk.shape} does not fit rows of shape {tuple(shape[1:])}"
                )
            fh.write(memoryview(chunk).cast("B"))
            rows += len(chunk)
        if rows != shape[0]:
            raise ValueError(f"{rows} rows written, {shape[0]} expected")

    return atomic_write(Path(path), write)


def open_rows(path: Path) -> np.ndarray:
    """The array in ``path``, memory-mapped read-only (ValueError/OSError if it is not a plain
    numeric ``.npy`` file)."""
    array = np.load(path, mmap_mode="r", allow_pickle=False)
    if array.dtype.hasobject:
        raise ValueError(f"{path} holds objects, not numbers")
    return array


class MappedRows:
    """A read-only ``[N, ...]`` column backed by a memory-mapped array, optionally through a row map
    (``rows[i]`` is the file row of this column's row ``i``: a subset, a reordering or a repetition
    of the file's rows). ``column[index]`` gathers rows into a new tensor (``dtype`` if given, e.g.
    int32 ids as int64), so a :class:`~fedbench.data.bundle.DataBundle` uses it like a tensor.

    Gathering goes through ``torch.index_select``, which releases the GIL, so a prefetch thread
    assembles the next batch while the training thread computes. ``out`` lets the caller gather
    straight into a pinned buffer.
    """

    def __init__(
        self,
        array: np.ndarray,
        rows: np.ndarray | None = None,
        dtype: torch.dtype | None = None,
        key: str = "",
    ):
        self.array, self.key = array, key
        self.rows = None if rows is None else torch.as_tensor(np.asarray(rows, dtype=np.int64))
        with warnings.catch_warnings():  # the mapping is read-only and never written through
            warnings.simplefilter("ignore", UserWarning)
            self.data = torch.from_numpy(array)
        self.out_dtype = dtype or self.data.dtype

    def __len__(self) -> int:
        return len(self.data) if self.rows is None else len(self.rows)

    @property
    def shape(self) -> torch.Size:
        return torch.Size((len(self), *self.data.shape[1:]))

    @property
    def dtype(self) -> torch.dtype:
        return self.out_dtype

    def file_rows(self, index) -> torch.Tensor:
        index = torch.as_tensor(index, dtype=torch.long)
        return index if self.rows is None else self.rows[index]

    def __getitem__(self, index) -> torch.Tensor:
        if isinstance(index, slice):
            index = torch.arange(len(self))[index]
        return self.gather(index)

    def gather(self, index, out: torch.Tensor | None = None) -> torch.Tensor:
        rows = self.file_rows(index)
        if self.out_dtype == self.data.dtype:
            return (
                torch.index_select(self.data, 0, rows, out=out)
                if out is not None
                else torch.index_select(self.data, 0, rows)
            )
        picked = torch.index_select(self.data, 0, rows)
        return picked.to(self.out_dtype) if out is None else out.copy_(picked)

    def empty(self, n: int, pin: bool = False) -> torch.Tensor:
        """An uninitialised tensor for ``n`` gathered rows (pinned for fast GPU copies if asked)."""
        return torch.empty((n, *self.data.shape[1:]), dtype=self.out_dtype, pin_memory=pin)

    def with_rows(self, rows: np.ndarray) -> MappedRows:
        """The same file through another row map (``rows`` index this column's rows)."""
        return MappedRows(self.array, self.file_rows(torch.as_tensor(rows)).numpy(), self.out_dtype, self.key)

    def __getstate__(self):  # sent to another process: it re-opens the file instead of copying it
        return {"path": self.array.filename, "rows": self.rows, "dtype": self.out_dtype, "key": self.key}

    def __setstate__(self, state) -> None:
        rows = None if state["rows"] is None else state["rows"].numpy()
        self.__init__(open_rows(Path(state["path"])), rows, state["dtype"], state["key"])
