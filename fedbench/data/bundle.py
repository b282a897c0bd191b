"""A dataset made model-ready by a backbone: pre-materialised tensors plus split indices.

A backbone's ``featurize`` computes everything frozen and deterministic once (for the embedded
backbone: token ids and rows of its image-token bank), so a client fit only gathers rows. A batch
is a dict holding the bundle's columns for its rows plus ``label`` and ``code`` (the batch contract,
:mod:`fedbench.batch`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

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

    def batch(self, index: torch.Tensor, code: torch.Tensor) -> dict[str, torch.Tensor]:
        out = {name: col[index] for name, col in self.columns.items()}
        if self.padded:
            width = int(out[self.padded[0]].sum(1).max())
            for name in self.padded:
                out[name] = out[name][:, :width]
        out[LABEL] = self.labels[index]
        out[CODE] = code
        return out


class _Rows(Dataset):
    def __init__(self, index: np.ndarray, codes: np.ndarray):
        self.index = torch.as_tensor(np.asarray(index), dtype=torch.long)
        self.codes = torch.as_tensor(np.asarray(codes), dtype=torch.long)

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> int:  # a position; the collate gathers the rows
        return i


def make_loader(bundle: DataBundle, index: np.ndarray, codes: np.ndarray, *, batch_size: int, shuffle: bool, seed: int = 0) -> DataLoader:
    """Batches of ``bundle`` rows ``index`` with per-row missing codes ``codes`` (aligned with index)."""
    rows = _Rows(index, codes)

    def collate(positions: list[int]) -> dict[str, torch.Tensor]:
        pos = torch.as_tensor(positions, dtype=torch.long)
        return bundle.batch(rows.index[pos], rows.codes[pos])

    gen = torch.Generator().manual_seed(seed) if shuffle else None
    return DataLoader(rows, batch_size=batch_size, shuffle=shuffle, generator=gen, collate_fn=collate, num_workers=0)
