"""A seed tree: every random stream of a run is derived from the run's root seed and a name.

Deriving seeds by name (rather than drawing them one after another) keeps each stream independent
of execution order: the seed of client 3's fit in round 7 is the same whether clients run
sequentially, in parallel, or after a resume.
"""

from __future__ import annotations

import hashlib

import numpy as np


def derive_seed(root: int, *names: object) -> int:
    """A 31-bit seed from ``root`` and a path of names, stable across processes and platforms."""
    key = "/".join([str(int(root))] + [str(n) for n in names]).encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:4], "little") & 0x7FFFFFFF


def rng(root: int, *names: object) -> np.random.Generator:
    """A numpy generator for the stream ``names`` under ``root``."""
    return np.random.default_rng(derive_seed(root, *names))


def seed_tree(root: int) -> dict[str, int]:
    """The named top-level seeds of a run, recorded with every result."""
    names = ("split", "missing", "partition", "sampling", "init", "aggregation")
    return {"root": int(root), **{n: derive_seed(root, n) for n in names}}
