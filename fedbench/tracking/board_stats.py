"""Seed statistics of one leaderboard cell, and the rule that decides when a cell is bold.

A cell summarises the runs of one method at one setting, one per seed. Diverged runs are counted,
never averaged in: a NaN would poison the mean, and a run that blew up is not a low score but no
score. A cell's spread is its 95% bootstrap CI over seeds (the at-a-glance table) or its sample std
(the detail tables); one seed has neither.

Bold claims "this method is ahead", and on a board every method is compared with its plan's
reference baseline (:mod:`~fedbench.tracking.board_paired`), so bold means exactly that: the 95%
bootstrap CI of the method's paired difference to the reference (same seeds, same setting) lies
above zero (:func:`ahead`). A lead inside the noise, a cell from one seed and the reference itself
are never bold.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from fedbench.tracking.records import is_diverged
from fedbench.tracking.seed_stats import CI_LABEL, bootstrap_ci

__all__ = ["BOLD_RULE", "DASH", "Stat", "ahead", "cell_text", "collect", "table_head", "table_row"]

DASH = "–"
BOLD_RULE = (
    f"**bold** = ahead of the section's reference baseline: the bootstrap {CI_LABEL} of the method's paired "
    "difference to the reference (same seeds, same setting, same column) lies above zero; never the "
    "reference itself, never a cell with fewer than 2 paired seeds"
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

    @property
    def ci(self) -> tuple[float, float] | None:
        """95% bootstrap CI of the mean over seeds (:func:`~fedbench.tracking.seed_stats.bootstrap_ci`);
        None with fewer than two seeds."""
        return bootstrap_ci([self.values])

    def text(self, spread: str | None = "std", digits: int = 1) -> str:
        """``62.1 ± 0.3`` (``spread="std"``), ``62.1 [61.9, 62.3]`` (``"ci"``), ``62.1`` (one seed or
        ``None``), ``diverged``, or any of these with `` (1 diverged)``."""
        if not self.values:
            return "diverged" if self.diverged else DASH
        body = f"{self.mean:.{digits}f}"
        if spread == "std" and self.std is not None:
            body += f" ± {self.std:.{digits}f}"
        elif spread == "ci" and (ci := self.ci) is not None:
            body += f" [{ci[0]:.{digits}f}, {ci[1]:.{digits}f}]"
        return body + (f" ({self.diverged} diverged)" if self.diverged else "")


def collect(
    runs: Iterable[dict[str, Any]], value_of: Callable[[dict[str, Any]], float | None]
) -> Stat | None:
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


def ahead(ci: tuple[float, float] | None) -> bool:
    """The bold rule: a paired difference's CI (None: fewer than two paired seeds) lies above zero."""
    return ci is not None and ci[0] > 0


def cell_text(stat: Stat | None, bold: bool, spread: str | None = "std", said_diverged: int = 0) -> str:
    """A cell's markdown (``spread`` as in :meth:`Stat.text`); ``said_diverged`` diverged runs are
    already counted elsewhere on the row."""
    if stat is None:
        return DASH
    if stat.values and stat.diverged == said_diverged:
        stat = Stat(stat.values)
    text = stat.text(spread)
    return f"**{text}**" if bold else text


def table_head(header: list[str]) -> list[str]:
    return [table_row(header), "|" + "---|" * len(header)]


def table_row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"
