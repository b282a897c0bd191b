"""The dataset contract: a dataset returns modality data only, never a model.

A :class:`ModalData` holds labels, texts, an image source, splits, groups and a metric spec. How
the images and texts become model inputs (tokens, features, a cached bank) is the backbone's
business (``fedbench.backbones``), so one dataset serves every backbone and one backbone every
dataset.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

TASKS = ("multiclass", "multilabel", "binary")


@dataclass(frozen=True)
class MetricSpec:
    """How a dataset is scored. ``primary`` is what selects a round on validation and heads the
    leaderboard; ``task`` picks the torchmetrics family.

    multiclass: accuracy, macro_f1. multilabel: f1_macro, f1_micro, f1_weighted, f1_samples (MAP's
    MM-IMDb table). binary: auroc, accuracy (Hateful Memes).
    """

    task: str = "multiclass"
    primary: str = "accuracy"


class ImageSource(Protocol):
    """Images by row: ``len(src)`` rows; ``src[i]`` is an RGB uint8 array [H, W, 3] (or None when
    the dataset has no image for that row). ``key`` identifies the content for caching."""

    key: str

    def __len__(self) -> int: ...

    def __getitem__(self, i: int) -> np.ndarray | None: ...


@dataclass
class ArrayImages:
    """Images already in memory: a uint8 array [N, H, W, 3]."""

    array: np.ndarray
    key: str

    def __len__(self) -> int:
        return len(self.array)

    def __getitem__(self, i: int) -> np.ndarray:
        return self.array[i]


@dataclass
class PathImages:
    """Images decoded lazily from files (one path per row; None = no image), resized to ``size``
    when given."""

    paths: Sequence[str | Path | None]
    key: str
    size: int | None = None

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> np.ndarray | None:
        from PIL import Image

        path = self.paths[i]
        if path is None:
            return None
        with Image.open(path) as im:
            im = im.convert("RGB")
            if self.size is not None:
                im = im.resize((self.size, self.size), Image.BICUBIC)
            return np.asarray(im, dtype=np.uint8)


@dataclass
class ModalData:
    """One dataset's modality data. Rows are samples; ``splits`` maps split names to row indices.

    Splits: ``train``, ``val``, ``test`` always; ``pretrain`` or ``public`` optionally, for data
    no federated client sees (a backbone may pretrain on it, a server may score on it).
    ``labels`` is [N] int for single-label data, [N, C] 0/1 for multi-label. ``groups`` keeps
    near-duplicates (e.g. emoji skin-tone variants) in one split. ``fingerprint`` identifies the
    content for feature caches.
    """

    name: str
    labels: np.ndarray
    label_names: list[str]
    texts: list[str]
    images: ImageSource
    splits: dict[str, np.ndarray]
    metric: MetricSpec = field(default_factory=MetricSpec)
    groups: np.ndarray | None = None
    fingerprint: str = ""
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.label_names)

    @property
    def multilabel(self) -> bool:
        return self.labels.ndim == 2

    def __len__(self) -> int:
        return len(self.labels)
