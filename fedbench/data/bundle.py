"""A dataset made model-ready by a backbone: pre-materialised tensors plus split indices.

A backbone's ``featurize`` computes everything frozen and deterministic once (for the embedded
backbone: token ids and rows of its image-token bank), so a client fit only gathers rows. A batch
is a dict holding the bundle's columns for its rows plus ``label`` and ``code`` (the batch contract,
:mod:`fedbench.batch`). A column is a tensor (small data) or a memory-mapped
:class:`~fedbench.cache.arrays.MappedRows` (real datasets); both are gathered by row index.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from fedbench.batch import CODE, LABEL
from fedbench.data.base import MetricSpec

# the splits a bundle keeps: the clients' (train), model selection (val), scoring (test) and a
# server-held one no client holds (pretrain / public), for a server context
BUNDLE_SPLITS = ("train", "val", "test", "pretrain", "public")


@dataclass
class DataBundle:
    name: str
    num_classes: int
    label_names: list[str]
    labels: torch.Tensor  # [N] int64, or [N, C] float 0/1 for multi-label data
    columns: dict[str, torch.Tensor]  # the backbone's inputs, one row per sample
    splits: dict[str, np.ndarray]
    metric_spec: MetricSpec = field(default_factory=MetricSpec)
    info: dict = field(default_factory=dict)
    # columns padded along dim 1 whose width is trimmed per batch to the longest row of the first
    # (a bool keep mask): dynamic padding for token sequences
    padded: tuple[str, ...] = ()

    @property
    def metric(self) -> str:
        return self.metric_spec.primary

    def batch(
        self, index: torch.Tensor, code: torch.Tensor, pin: bool = False, alloc=None
    ) -> dict[str, torch.Tensor]:
        """The rows ``index`` of every column, their labels and the missing codes ``code``. The rows
        are gathered into pinned host memory when ``pin`` (fast, asynchronous copies to a GPU), or
        into tensors from ``alloc(shape, dtype)`` when given (a loader's reused buffers)."""
        out = {name: gather(col, index, pin, alloc) for name, col in self.columns.items()}
        if self.padded:
            width = int(out[self.padded[0]].sum(1).max())
            for name in self.padded:
                out[name] = out[name][:, :width]
        out[LABEL] = gather(self.labels, index, pin, alloc)
        out[CODE] = code.pin_memory() if pin else code
        return out


def bundle_fingerprint(bundle: DataBundle) -> str:
    """A content key of a bundle's labels and columns (frozen caches built from its rows use it)."""
    from fedbench.cache.digest import column_digest, tensor_digest
    from fedbench.cache.folder import cache_key

    return cache_key(
        labels=tensor_digest(bundle.labels),
        columns=[column_digest(bundle.columns[k]) for k in sorted(bundle.columns)],
    )


def gather(column, index: torch.Tensor, pin: bool = False, alloc=None) -> torch.Tensor:
    """``column[index]`` for a tensor or a memory-mapped column (:class:`~fedbench.cache.arrays.MappedRows`),
    into pinned memory (``pin``) or a tensor from ``alloc(shape, dtype)``."""
    if not pin and alloc is None:
        return column[index]
    shape, dtype = (len(index), *column.shape[1:]), column.dtype
    out = torch.empty(shape, dtype=dtype, pin_memory=True) if pin else alloc(shape, dtype)
    if isinstance(column, torch.Tensor):
        return torch.index_select(column, 0, index, out=out)
    return column.gather(index, out=out)
