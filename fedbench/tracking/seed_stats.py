"""The statistics a board reports over seeds: bootstrap CIs, probability of improvement, and the
minimum detectable difference. Pure functions of numbers; the board decides what they are applied to.

What the field uses, and where this comes from:

- **Stratified bootstrap CI** (Agarwal et al., "Deep RL at the Edge of the Statistical Precipice",
  NeurIPS 2021, the method of the ``rliable`` library): the runs (seeds) are resampled with
  replacement *within* each task (here: each setting of a plan), the statistic is recomputed on
  every resample, and the 2.5th and 97.5th percentiles of those give the 95% interval. Settings are
  never mixed by the resampling, so a setting with a high score cannot stand in for a low one.
- **Probability of improvement** (same paper): P(X > Y) per setting, estimated from all pairs of a
  run of X and a run of Y (the Mann-Whitney U statistic over ``n_x * n_y``, ties counted half),
  then averaged over the settings.
- **Minimum detectable difference** of a two-sided paired t-test: ``(t[1 - alpha/2, n-1] +
  t[power, n-1]) * s_d / sqrt(n)`` for ``n`` paired seeds whose differences have std ``s_d``.

Why fedbench computes these itself instead of calling ``rliable`` (1.2.0, tried): it needs
``arch < 8``, and ``arch`` 7.2.0 fails to import beside the ``pandas`` 3 this environment resolves
(``deprecate_kwarg() missing 1 required positional argument``); and its ``StratifiedBootstrap``
draws its indices from numpy's global generator (``np.random.choice``), not from the
``random_state`` it is given, so a committed board would regenerate byte for byte only while no
other code touched that global state. Here every interval comes from its own generator, seeded
with :data:`BOOTSTRAP_SEED`, with :data:`BOOTSTRAP_REPS` resamples, so a cell's interval is a
function of its values alone, whatever else is on the board. The rank tests and the
critical-difference diagram do use a library (scikit-posthocs, see
:mod:`~fedbench.tracking.board_ranks`).

With few seeds a percentile bootstrap is too narrow (two seeds whose differences share a sign give
an interval that excludes zero), so the board states the minimum detectable difference beside it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = [
    "ALPHA",
    "BOOTSTRAP_REPS",
    "BOOTSTRAP_SEED",
    "CI_LABEL",
    "CONFIDENCE",
    "POWER",
    "bootstrap_ci",
    "minimum_detectable_difference",
    "pooled_std",
    "probability_of_improvement",
]

CONFIDENCE = 0.95
CI_LABEL = f"{100 * CONFIDENCE:.0f}% CI"
BOOTSTRAP_REPS = 10_000
BOOTSTRAP_SEED = 0
ALPHA = 1 - CONFIDENCE  # the paired t-test of the minimum detectable difference, two-sided
POWER = 0.8


def bootstrap_ci(
    strata: Sequence[Sequence[float]],
    *,
    reps: int = BOOTSTRAP_REPS,
    seed: int = BOOTSTRAP_SEED,
    confidence: float = CONFIDENCE,
) -> tuple[float, float] | None:
    """Percentile CI of the mean of all values, resampling within each stratum; None when a
    stratum has fewer than two values (one seed has no spread to resample).

    The statistic is the mean over every value, so each stratum weighs by its size, as in the
    point estimate. Deterministic: the same values give the same interval, in whatever order.

    >>> bootstrap_ci([[1.0, 1.0, 1.0]])
    (1.0, 1.0)
    >>> bootstrap_ci([[1.0, 2.0], [5.0]]) is None
    True
    """
    # canonical order (values within a stratum, then strata), so the interval depends on the values
    # alone, not on the order the records were read in
    groups = [
        np.asarray(g, dtype=float) for g in sorted((sorted(s) for s in strata), key=lambda g: (len(g), g))
    ]
    if not groups or min(len(g) for g in groups) < 2:
        return None
    rng = np.random.default_rng(seed)
    sums = np.zeros(reps)
    for group in groups:
        sums += group[rng.integers(0, len(group), size=(reps, len(group)))].sum(axis=1)
    means = sums / sum(len(g) for g in groups)
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(low), float(high)


def probability_of_improvement(pairs: Sequence[tuple[Sequence[float], Sequence[float]]]) -> float | None:
    """P(X > Y): per stratum, the share of (x, y) run pairs with x > y (ties count half), averaged
    over the strata that have runs of both; None when none has.

    >>> probability_of_improvement([([2.0, 3.0], [1.0, 3.0]), ([0.0], [1.0])])
    0.3125
    """
    shares = []
    for xs, ys in pairs:
        x, y = np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)
        if not x.size or not y.size:
            continue
        diff = x[:, None] - y[None, :]
        shares.append(float(((diff > 0).sum() + 0.5 * (diff == 0).sum()) / diff.size))
    return sum(shares) / len(shares) if shares else None


def pooled_std(groups: Sequence[Sequence[float]]) -> float | None:
    """Sample std pooled over ``groups`` (each around its own mean, weighted by its degrees of
    freedom); None when no group has two values."""
    usable = [np.asarray(g, dtype=float) for g in groups if len(g) > 1]
    dof = sum(len(g) - 1 for g in usable)
    if not dof:
        return None
    return math.sqrt(sum(float(((g - g.mean()) ** 2).sum()) for g in usable) / dof)


def minimum_detectable_difference(
    std: float | None, n: int, *, alpha: float = ALPHA, power: float = POWER
) -> float | None:
    """The smallest true mean difference a two-sided paired t-test over ``n`` seeds detects with
    probability ``power`` at level ``alpha``, when the paired differences have std ``std``:
    ``(t[1 - alpha/2, n-1] + t[power, n-1]) * std / sqrt(n)``; None below two seeds.

    >>> round(minimum_detectable_difference(1.0, 5), 3)
    1.662
    """
    from scipy.stats import t

    if std is None or n < 2:
        return None
    dof = n - 1
    return float((t.ppf(1 - alpha / 2, dof) + t.ppf(power, dof)) * std / math.sqrt(n))
