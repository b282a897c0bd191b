"""Seed statistics of one leaderboard cell, and the rule that decides when a cell is bold.

A cell summarises the runs of one method at one setting, one per seed. Diverged runs are counted,
never averaged in: a NaN would poison the mean, and a run that blew up is not a low score but no
score. Bold claims "this method is ahead", so it is only given where the lead is larger than the
noise between seeds: the best mean must beat the runner-up's mean by more than the runner-up's
sample std, and a cell with a single seed (whose std is undefined) is never bold.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from fedbench.tracking.records import is_diverged

__all__ = ["BOLD_RULE", "DASH", "Stat", "best_index", "cell_text", "collect", "table_head", "table_row"]

DASH = "–"
BOLD_RULE = (
    "**bold** = the best mean is ahead of the runner-up by more than the runner-up's std over seeds "
    "(never with a single seed)"
)


@dataclass(frozen=True)
class Stat:
    """Finished runs' values (already in display units) and how many runs diverged."""

    values: tuple[float, ...]
    diverged: int = 0

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float | None:
        return statistics.fmean(self.values) if self.values else None

    @property
    def std(self) -> float | None:
        """Sample std (ddof=1); None with fewer than two seeds, where it is undefined (not 0)."""
        return statistics.stdev(self.values) if len(self.values) > 1 else None

    def text(self, with_std: bool = True, digits: int = 1) -> str:
        """``62.1 ± 0.3``, ``62.1`` (one seed), ``diverged``, or ``62.1 ± 0.3 (1 diverged)``."""
        if not self.values:
            return "diverged" if self.diverged else DASH
        body = f"{self.mean:.{digits}f}"
        if with_std and self.std is not None:
            body += f" ± {self.std:.{digits}f}"
        return body + (f" ({self.diverged} diverged)" if self.diverged else "")


def collect(runs: Iterable[dict[str, Any]], value_of: Callable[[dict[str, Any]], float | None]) -> Stat | None:
    """The :class:`Stat` of ``value_of`` over ``runs``, or None when no run reports it at all.

    A run with ``status: "diverged"`` or a non-finite value counts as diverged; a ``None`` value
    means the run does not report this quantity (e.g. no personalized score). When finished runs
    report nothing, neither do the diverged ones: the cell is None, not ``diverged``.
    """
    values: list[float] = []
    diverged = silent = 0
    for run in runs:
        value = None if is_diverged(run) else value_of(run)
        if is_diverged(run) or (value is not None and not math.isfinite(value)):
            diverged += 1
        elif value is None:
            silent += 1
        else:
            values.append(value)
    if not values and (silent or not diverged):
        return None
    return Stat(tuple(values), diverged)


def best_index(stats: list[Stat | None]) -> int | None:
    """Index of the cell to bold among ``stats`` (cells compared with each other), or None.

    The best mean is bold only when it exceeds the runner-up's mean by more than the runner-up's
    sample std, and both have at least two seeds. Ties and lone cells are never bold.
    """
    ranked = sorted(
        ((s.mean, i) for i, s in enumerate(stats) if s is not None and s.mean is not None),
        reverse=True,
    )
    if len(ranked) < 2:
        return None
    (best_mean, best), (runner_mean, runner) = ranked[0], ranked[1]
    best_std, runner_std = stats[best].std, stats[runner].std  # type: ignore[union-attr]
    if best_std is None or runner_std is None:
        return None
    return best if best_mean - runner_mean > runner_std else None


def cell_text(stat: Stat | None, bold: bool, with_std: bool = True, said_diverged: int = 0) -> str:
    """A cell's markdown; ``said_diverged`` diverged runs are already counted elsewhere on the row."""
    if stat is None:
        return DASH
    if stat.values and stat.diverged == said_diverged:
        stat = Stat(stat.values)
    text = stat.text(with_std=with_std)
    return f"**{text}**" if bold else text


def table_head(header: list[str]) -> list[str]:
    return [table_row(header), "|" + "---|" * len(header)]


def table_row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"
