"""``make_dataset(name, root, scale, seed)``: a full-size (or scaled) stand-in of a real dataset in
its original download layout, for measuring fedbench's data path on a machine without the data.

One module per family writes the files (food101, mmimdb, hatememes, captioned: cub200 and
flowers102, imageonly: cifar10, cifar100, tinyimagenet); this module picks it, guards the output
folder and times the run. Every generator streams: images are encoded and written one at a time,
and only names, labels and texts are held until the index files are written.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from benchmarks.standins import captioned, food101, hatememes, imageonly, mmimdb
from benchmarks.standins.common import Report, Writer, check_scale, finish, open_root, rng_for

Generator = Callable[[Writer, np.random.Generator, float], Report]
GENERATORS: dict[str, Generator] = {
    "food101": food101.make,
    "mmimdb": mmimdb.make,
    "hatememes": hatememes.make,
    "cub200": captioned.make_cub,
    "flowers102": captioned.make_flowers,
    "cifar10": imageonly.make_cifar10,
    "cifar100": imageonly.make_cifar100,
    "tinyimagenet": imageonly.make_tinyimagenet,
}
DATASET_NAMES = tuple(GENERATORS)


def make_dataset(
    name: str, root: str | Path, scale: float = 1.0, seed: int = 0, overwrite: bool = False
) -> Report:
    """Write the ``name`` stand-in into ``root`` (the dataset's own folder: what a run's
    ``data.options.root`` points at) at ``scale`` of the real counts, deterministically for ``seed``.
    A non-empty ``root`` is refused unless ``overwrite`` and it holds a stand-in of ``name``."""
    if name not in GENERATORS:
        raise KeyError(f"unknown dataset {name!r}; known: {', '.join(DATASET_NAMES)}")
    scale = check_scale(scale)
    started = time.perf_counter()
    out = open_root(Path(root), name, overwrite)
    report = GENERATORS[name](out, rng_for(name, seed), scale)
    return finish(out, report, started, scale, seed)
