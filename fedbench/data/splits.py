"""Grouped, stratified train/val/test(/pretrain) splits.

Variants of one emoji (man/woman/person cook) share a group; putting them on both sides of a split
would let a model score by recognising the near-duplicate, so whole groups are assigned. Within
each class, groups are shuffled and laid end to end, and a group goes to the split whose share of
the class contains the group's midpoint. Every split thus gets close to its fraction of every
class, which keeps the small test set's class mix (and the majority rate) stable across seeds.
"""

from __future__ import annotations

import numpy as np

from fedbench.errors import ConfigError

DEFAULT_FRACTIONS = {"pretrain": 0.25, "train": 0.45, "val": 0.10, "test": 0.20}


def _check_fractions(fractions: dict[str, float]) -> tuple[list[str], np.ndarray]:
    if not fractions:
        raise ConfigError("split fractions are empty; give e.g. {'train': 0.8, 'test': 0.2}")
    names = list(fractions)
    fr = np.array([float(fractions[k]) for k in names])
    if (fr < 0).any() or not np.isfinite(fr).all():
        raise ConfigError(f"split fractions must be >= 0, got {fractions}")
    if abs(fr.sum() - 1.0) > 1e-6:
        raise ConfigError(f"split fractions must sum to 1, got {fr.sum():.4g} from {fractions}")
    return names, fr


def grouped_stratified_split(labels, groups, fractions: dict[str, float], seed: int) -> dict[str, np.ndarray]:
    """Sorted, disjoint index arrays per split name covering all samples; groups never cross splits.

    A group whose members carry different labels is placed with the class of its most common label
    (ties: the smallest label id).
    """
    labels = np.asarray(labels)
    groups = np.asarray(groups)
    if labels.shape != groups.shape or labels.ndim != 1:
        raise ConfigError(
            f"labels and groups must be 1-D and equal length, got {labels.shape} and {groups.shape}"
        )
    names, fr = _check_fractions(fractions)
    bounds = np.cumsum(fr)
    bounds[-1] = 1.0  # guard against float drift so the last split catches the end
    rng = np.random.default_rng(seed)

    uniq, inverse = np.unique(groups, return_inverse=True)
    sizes = np.bincount(inverse, minlength=len(uniq))
    group_label = np.empty(len(uniq), dtype=np.int64)
    for g in range(len(uniq)):
        group_label[g] = np.bincount(labels[inverse == g]).argmax()

    assigned = np.empty(len(uniq), dtype=np.int64)
    for c in np.unique(group_label):
        members = rng.permutation(np.flatnonzero(group_label == c))
        ends = np.cumsum(sizes[members])
        midpoints = (ends - sizes[members] / 2) / ends[-1]
        assigned[members] = np.searchsorted(bounds, midpoints, side="right").clip(max=len(names) - 1)

    sample_split = assigned[inverse]
    return {name: np.flatnonzero(sample_split == i) for i, name in enumerate(names)}
