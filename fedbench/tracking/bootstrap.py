"""The mean of a cell's seeds with a 95% percentile-bootstrap CI (resampling the seeds with
replacement; fixed resample count and generator seed, so a board regenerates byte for byte)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

RESAMPLES = 10_000
SEED = 0


def mean_ci(values: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high) of ``values`` (at least 2)."""
    x = np.asarray(values, dtype=np.float64)
    if x.size < 2:
        raise ValueError("a bootstrap CI needs at least 2 values")
    picks = np.random.default_rng(SEED).integers(0, x.size, size=(RESAMPLES, x.size))
    means = x[picks].mean(axis=1)
    tail = (1 - level) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return float(x.mean()), float(low), float(high)
