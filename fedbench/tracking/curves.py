"""Choosing a board's number of rounds from validation curves (issue 19's board of record).

The rule: smooth each (setting, method) curve of the seed-mean validation value of the board's
primary metric (``record["metric"]``: accuracy on emoji) with a trailing mean
over ``window`` rounds; the curve has plateaued at the first round whose smoothed value is within
``tolerance`` of the best smoothed value the curve reaches. A curve whose first such round falls in
its last ``window`` rounds is still climbing (None): run more rounds before choosing. A plan's
rounds are the latest plateau round over its methods and settings, so no method is cut off while it
still improves. Validation only: test accuracy never enters the choice.
"""

from __future__ import annotations

from typing import Any

from fedbench.tracking.board_extras import round_series
from fedbench.tracking.board_model import board_runs, build_sections, primary_metric

__all__ = ["plan_rounds", "plateau_round", "trailing_means", "val_key"]

WINDOW = 5  # rounds in the trailing mean
TOLERANCE = 0.01  # one point of accuracy


def val_key(runs: list[dict[str, Any]], dataset: str) -> str:
    """The round key of the runs' primary metric on the validation split (e.g. ``val.accuracy``)."""
    return f"val.{primary_metric(runs, dataset)}"


def trailing_means(values: list[float | None], window: int = WINDOW) -> list[float | None]:
    """The rule's smoothing: entry i is the mean of the known values of rounds i+1 .. i+window
    (1-based), i.e. the trailing mean ending at round i + window; None where none is known."""
    means: list[float | None] = []
    for end in range(window, len(values) + 1):
        span = [v for v in values[end - window : end] if v is not None]
        means.append(sum(span) / len(span) if span else None)
    return means


def plateau_round(
    values: list[float | None], window: int = WINDOW, tolerance: float = TOLERANCE
) -> int | None:
    """The 1-based round at which ``values`` (one per round) has plateaued under the module's rule,
    or None while the curve is still climbing at its end (or has fewer than ``window`` rounds)."""
    if window < 1 or tolerance < 0:
        raise ValueError(f"plateau_round: window must be >= 1 and tolerance >= 0, got {window}, {tolerance}")
    smoothed = trailing_means(values, window)
    known = [v for v in smoothed if v is not None]
    if not known:
        return None
    best = max(known)
    first = next(i for i, v in enumerate(smoothed) if v is not None and v >= best - tolerance)
    last_round = first + window  # smoothed[i] ends at round i + window (1-based)
    return None if last_round > len(values) - window else last_round


def plan_rounds(
    records: list[dict[str, Any]], dataset: str, window: int = WINDOW, tolerance: float = TOLERANCE
) -> dict[str, dict[str, Any]]:
    """Per board section (bench plan): {"curves": {(setting, method): plateau round or None},
    "rounds": the latest plateau, or None when any curve is still climbing}."""
    out: dict[str, dict[str, Any]] = {}
    runs = board_runs(records, dataset)
    key = val_key(runs, dataset) if runs else ""
    for section in build_sections(runs):
        curves = {
            cell: plateau_round(means, window, tolerance)
            for cell, (_, means) in round_series(section, key).items()
        }
        if curves:
            done = list(curves.values())
            rounds = None if any(r is None for r in done) else max(done)
            out[section.name] = {"curves": curves, "rounds": rounds}
    return out
