"""A dataset ready for training: pre-materialised tensors plus split indices.

Everything frozen and deterministic (token ids, image indices into the backbone's image bank) is
computed once, so a client fit only gathers rows. A batch is a dict with ``text_ids``,
``text_keep``, ``image``, ``label`` and ``code`` (the per-sample modality mask: 0 complete,
1 text missing, 2 image missing).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset


@dataclass
class DataBundle:
    name: str
    num_classes: int
    label_names: list[str]
    labels: torch.Tensor  # [N] int64
    text_ids: torch.Tensor  # [N, L] int64, [CLS] ... [SEP] then padding
    text_keep: torch.Tensor  # [N, L] bool
    image: torch.Tensor  # [N] int64 row of the backbone's image bank
    splits: dict[str, np.ndarray]
    metric: str = "accuracy"
    info: dict = field(default_factory=dict)

    def batch(self, index: torch.Tensor, code: torch.Tensor) -> dict[str, torch.Tensor]:
        keep = self.text_keep[index]
        width = int(keep.sum(1).max())  # dynamic padding: trim to the longest text in the batch
        return {
            "text_ids": self.text_ids[index, :width],
            "text_keep": keep[:, :width],
            "image": self.image[index],
            "label": self.labels[index],
            "code": code,
        }


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
