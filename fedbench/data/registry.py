"""Datasets by name. A dataset is a :class:`DatasetSpec`: a builder from its own validated options
and the split seed to :class:`~fedbench.data.base.ModalData` (modality data only, no model).

Built-in: ``emoji`` (the embedded offline benchmark). Plugins register more through the
``fedbench.datasets`` entry-point group, or in process with ``DATASETS.register``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fedbench.data.base import ModalData
from fedbench.registry import Registry


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    build: Callable[[Any, int], ModalData]  # (options, split_seed) -> ModalData
    options: type | None = None  # a dataclass of the dataset's own settings (None: no options)
    description: str = ""
    version: int = 1  # bump with any change to the rows, labels, splits or texts a run sees


DATASETS: Registry[DatasetSpec] = Registry(
    "dataset", "fedbench.datasets", "fedbench.data.builtin", "data.dataset"
)
register_dataset = DATASETS.register
