"""The overall ranking of a board section's methods across its settings (Demšar 2006).

Each setting of the section is one block: its methods are ranked by their seed mean on the
section's at-a-glance measure (1 = best, ties share the mean rank), and the ranks are averaged over
the settings. Friedman's test (scipy) asks whether any method ranks differently from the others;
Nemenyi's post-hoc test (scikit-posthocs) which pairs do, at alpha 0.05. Its critical difference
``CD = q_alpha * sqrt(k (k + 1) / (6 N))`` (k methods, N settings, q_alpha the studentized range
quantile over sqrt 2) is the gap in mean rank that a pair must exceed, and the critical-difference
diagram (:func:`~fedbench.tracking.plots.plot_cd_diagram`) draws the ranks with bars joining the
methods it cannot tell apart. Only methods with a score at every setting are ranked (the others
are named); ranking needs two methods, the tests two settings, Friedman's three methods.

Why scikit-posthocs (0.17.1): its Nemenyi test and diagram take a plain blocks x methods matrix and
draw on a given matplotlib axes (fedbench never touches pyplot's global figures). autorank (1.3.0,
read, not installed) refuses fewer than five blocks ("requires at least five performance
estimations"), and the plans have three to six settings; it also picks its test from normality
checks on the data unless forced, and draws through pyplot. rliable ranks nothing.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from fedbench.tracking.board_model import Section
from fedbench.tracking.board_stats import collect
from fedbench.tracking.seed_stats import ALPHA

__all__ = ["Ranking", "cd_plot_name", "rank_section", "ranking_text"]


@dataclass(frozen=True)
class Ranking:
    """Mean ranks of ``methods`` (in the section's order) over ``blocks`` settings, and the tests."""

    methods: tuple[str, ...]
    mean_ranks: tuple[float, ...]
    blocks: int
    left_out: tuple[str, ...] = ()
    friedman: tuple[float, float] | None = None  # (chi-square, p); needs 3 methods and 2 settings
    cd: float | None = None  # Nemenyi's critical difference at ALPHA; needs 2 settings
    nemenyi_p: tuple[tuple[float, ...], ...] | None = None  # k x k p-values

    def rank_of(self, method: str) -> float | None:
        return self.mean_ranks[self.methods.index(method)] if method in self.methods else None

    def different_pairs(self) -> list[tuple[str, str, float]]:
        """(better, worse, p) for each pair Nemenyi's test tells apart at ALPHA."""
        if self.nemenyi_p is None:
            return []
        out = []
        for i, a in enumerate(self.methods):
            for j in range(i + 1, len(self.methods)):
                if self.nemenyi_p[i][j] < ALPHA:
                    b = self.methods[j]
                    better, worse = (a, b) if self.mean_ranks[i] < self.mean_ranks[j] else (b, a)
                    out.append((better, worse, self.nemenyi_p[i][j]))
        return out


def rank_section(section: Section, measure: Any) -> Ranking | None:
    """The ranking of ``section``'s methods by seed mean of ``measure``; None with fewer than two
    methods scored at every setting."""
    import numpy as np
    from scipy.stats import friedmanchisquare, rankdata, studentized_range

    means = {m: [_mean(section, m, s, measure) for s in section.settings] for m in section.methods}
    ranked = [m for m in section.methods if all(v is not None for v in means[m])]
    left_out = tuple(m for m in section.methods if m not in ranked)
    if len(ranked) < 2 or not section.settings:
        return None
    values = np.array([[means[m][j] for m in ranked] for j in range(len(section.settings))], dtype=float)
    n, k = values.shape
    mean_ranks = tuple(float(r) for r in rankdata(-values, axis=1, method="average").mean(axis=0))
    if n < 2:
        return Ranking(tuple(ranked), mean_ranks, n, left_out)
    import scikit_posthocs

    p = scikit_posthocs.posthoc_nemenyi_friedman(values).to_numpy()
    cd = float(
        studentized_range.ppf(1 - ALPHA, k, math.inf) / math.sqrt(2) * math.sqrt(k * (k + 1) / (6 * n))
    )
    friedman = None
    if k >= 3:
        stat, pvalue = friedmanchisquare(*values.T)
        friedman = None if math.isnan(pvalue) else (float(stat), float(pvalue))  # NaN: every setting a tie
    return Ranking(
        tuple(ranked), mean_ranks, n, left_out, friedman, cd, tuple(tuple(float(x) for x in row) for row in p)
    )


def _mean(section: Section, method: str, setting: Any, measure: Any) -> float | None:
    stat = collect(section.cells.get((method, setting), []), measure)
    return None if stat is None else stat.mean


def ranking_text(ranking: Ranking | None, plot_link: str | None = None) -> list[str]:
    """Markdown lines under a section's paired table: the tests, what they find, the diagram."""
    if ranking is None:
        return ["Ranking: fewer than two methods have a score at every setting.", ""]
    parts = [
        f"Mean ranks over the {ranking.blocks} setting{'s' if ranking.blocks != 1 else ''} are in the table"
    ]
    if ranking.cd is None:
        parts.append("one setting is too few for a rank test")
    else:
        if ranking.friedman is not None:
            chi2, p = ranking.friedman
            parts.append(
                f"Friedman's test over {len(ranking.methods)} methods: chi² = {chi2:.2f}, p = {p:.3g}"
            )
        found = ranking.different_pairs()
        said = (
            "; ".join(f"{a} ahead of {b} (p = {p:.3g})" for a, b, p in found) or "no pair of methods differs"
        )
        parts.append(f"Nemenyi's critical difference at alpha {ALPHA:.2g}: {ranking.cd:.2f} ranks, so {said}")
    if ranking.left_out:
        parts.append("not ranked (no score at every setting): " + ", ".join(ranking.left_out))
    out = ["; ".join(parts) + ".", ""]
    if plot_link is not None:
        out += [f"![critical-difference diagram]({plot_link})", ""]
    return out


def section_plot_name(dataset: str, kind: str, section: str | None) -> str:
    """The file name of a section's ``kind`` of plot, beside the board (``section=None``: the glob
    pattern that matches every section's)."""
    slug = "*" if section is None else re.sub(r"[^a-z0-9]+", "-", section.lower()).strip("-")
    return f"{dataset}_{kind}_{slug}.png"


def cd_plot_name(dataset: str, section: str | None) -> str:
    """The file name of a section's critical-difference diagram (``section=None``: every section's)."""
    return section_plot_name(dataset, "cd", section)
