"""Each method of a board section against the section's reference baseline, on the same seeds.

A plan compares its methods with one baseline, its FedAvg variant (``BenchPlan.reference``: fedavg
for MAP's, FedPrime's and FedMVP's plans, fedavg-pt for PPT's). Runs of two methods with the same
seed at the same setting share their data, missingness, partition and client sampling (the seed
tree), so their difference is *paired*: the seed's luck cancels, and the difference's spread is
what decides whether a method is ahead. Per method this module gives:

- the paired differences (method - reference) per setting, one per seed both have finished;
- their mean and 95% stratified-bootstrap CI (seeds resampled within each setting; none when a
  setting has fewer than two paired seeds) and the probability of improvement
  (:mod:`~fedbench.tracking.seed_stats`);
- at one setting, the bold rule of the tables (:func:`~fedbench.tracking.board_stats.ahead`);
- for the section, the minimum detectable difference at its seed count, from the paired
  differences' std pooled over its methods and settings.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fedbench.tracking.board_model import Section, Setting
from fedbench.tracking.board_ranks import Ranking, ranking_text
from fedbench.tracking.board_stats import DASH, ahead, table_head, table_row
from fedbench.tracking.records import is_diverged
from fedbench.tracking.seed_stats import (
    CI_LABEL,
    bootstrap_ci,
    minimum_detectable_difference,
    pooled_std,
    probability_of_improvement,
)

__all__ = [
    "PLANNING_SEEDS",
    "Paired",
    "ahead_at",
    "ci_text",
    "comparison_block",
    "detectable_text",
    "paired",
    "paired_all",
    "seed_count",
    "signed",
    "winner",
]

Measure = Callable[[dict[str, Any]], float | None]
PLANNING_SEEDS = (
    5  # the board of record's seed count (issue 19): the detectable difference is also given there
)


@dataclass(frozen=True)
class Paired:
    """``method`` minus ``reference``: per setting (stratum), the (method, reference) values of each
    seed both finished, in seed order."""

    method: str
    reference: str
    strata: tuple[tuple[tuple[float, float], ...], ...]

    @property
    def differences(self) -> list[list[float]]:
        return [[x - y for x, y in stratum] for stratum in self.strata]

    @property
    def n(self) -> int:
        return sum(len(s) for s in self.strata)

    @property
    def mean(self) -> float | None:
        flat = [d for s in self.differences for d in s]
        return statistics.fmean(flat) if flat else None

    @property
    def ci(self) -> tuple[float, float] | None:
        return bootstrap_ci(self.differences) if self.strata else None

    @property
    def p_improvement(self) -> float | None:
        return probability_of_improvement([([x for x, _ in s], [y for _, y in s]) for s in self.strata])

    @property
    def is_ahead(self) -> bool:
        return ahead(self.ci)


def _by_seed(runs: list[dict[str, Any]], measure: Measure) -> dict[Any, float]:
    """Finished runs' values by seed (diverged and silent runs pair with nothing)."""
    out = {}
    for run in runs:
        value = None if is_diverged(run) else measure(run)
        if value is not None and value == value and abs(value) != float("inf"):
            out[run.get("seed")] = value
    return out


def paired(
    section: Section, method: str, reference: str, measure: Measure, settings: list[Setting] | None = None
) -> Paired:
    """``method`` against ``reference`` over ``settings`` (default: all of the section's)."""
    strata = []
    for setting in section.settings if settings is None else settings:
        mine = _by_seed(section.cells.get((method, setting), []), measure)
        theirs = _by_seed(section.cells.get((reference, setting), []), measure)
        common = sorted(set(mine) & set(theirs), key=str)
        if common:
            strata.append(tuple((mine[s], theirs[s]) for s in common))
    return Paired(method, reference, tuple(strata))


def paired_all(section: Section, reference: str | None, measure: Measure) -> list[Paired]:
    """Every other method of the section against ``reference``; [] when the section has no
    ``reference`` row."""
    if reference is None or reference not in section.methods:
        return []
    return [paired(section, m, reference, measure) for m in section.methods if m != reference]


def ahead_at(section: Section, reference: str | None, measure: Measure, setting: Setting) -> set[str]:
    """The methods to bold at ``setting`` on ``measure``: ahead of ``reference`` by the paired rule."""
    if reference is None or reference not in section.methods:
        return set()
    return {
        m
        for m in section.methods
        if m != reference and paired(section, m, reference, measure, [setting]).is_ahead
    }


def winner(results: list[Paired]) -> Paired | None:
    """The method with the largest mean paired difference, when it is above zero (None: no method
    is ahead of the reference on average, or nothing is paired)."""
    scored = [p for p in results if p.mean is not None]
    best = max(scored, key=lambda p: p.mean, default=None)  # type: ignore[arg-type,return-value]
    return best if best is not None and best.mean > 0 else None  # type: ignore[operator]


def signed(value: float | None, digits: int = 1) -> str:
    return DASH if value is None else f"{value:+.{digits}f}"


def ci_text(ci: tuple[float, float] | None, digits: int = 1) -> str:
    return DASH if ci is None else f"[{ci[0]:+.{digits}f}, {ci[1]:+.{digits}f}]"


def seed_count(section: Section) -> int:
    """The section's seed count: how many seeds its runs use."""
    return len({r.get("seed") for r in section.runs})


def detectable_text(section: Section, results: list[Paired]) -> str:
    """One sentence: the minimum detectable difference at the section's seed count (and at
    :data:`PLANNING_SEEDS`), or why it cannot be estimated."""
    seeds = seed_count(section)
    groups = [d for p in results for d in p.differences]
    std = pooled_std(groups)
    if std is None:
        return (
            f"Minimum detectable difference: not estimable here, as no method has two paired seeds at one "
            f"setting (with {seeds} seed{'s' if seeds != 1 else ''} "
            "there is no spread of paired differences)."
        )
    mdd = minimum_detectable_difference(std, seeds)
    at_seeds = "not defined with one seed" if mdd is None else f"{mdd:.1f} points"
    planning = minimum_detectable_difference(std, PLANNING_SEEDS)
    at_planning = "" if seeds == PLANNING_SEEDS else f"; at {PLANNING_SEEDS} seeds it would be {planning:.1f}"
    return (
        "Minimum detectable difference at one setting with this section's "
        f"{seeds} seed{'s' if seeds != 1 else ''}: "
        f"{at_seeds} (paired-difference std {std:.2f}, pooled over {len([g for g in groups if len(g) > 1])} "
        f"method x setting cells){at_planning}."
    )


def comparison_block(
    section: Section,
    reference: str | None,
    results: list[Paired],
    ranking: Ranking | None,
    cd_link: str | None = None,
) -> list[str]:
    """Markdown: every method against ``reference`` (paired Δ, CI, P(improvement), pairs) and its
    mean rank, the minimum detectable difference, and the ranking's tests with the CD diagram."""
    if reference is None:
        title, why = (
            "Ranking",
            "No reference baseline is named for this section: no paired differences, nothing bold.",
        )
    elif not results:
        title, why = "Ranking", f"This section has no {reference} run: no paired differences, nothing bold."
    else:
        title, why = f"Compared with {reference}", None
    out = [f"### {title}", ""]
    if why is not None:
        out += [why, ""]

    def rank(method: str) -> str:
        value = None if ranking is None else ranking.rank_of(method)
        return DASH if value is None else f"{value:.2f}"

    by_method = {p.method: p for p in results}
    if results:
        out += table_head(["method", f"Δ vs {reference}", CI_LABEL, "P(improvement)", "pairs", "mean rank"])
    else:
        out += table_head(["method", "mean rank"])
    for method in section.methods:
        if not results:
            out.append(table_row([method, rank(method)]))
        elif method == reference:
            out.append(table_row([f"{method} (reference)", DASH, DASH, DASH, DASH, rank(method)]))
        else:
            p = by_method[method]
            delta = signed(p.mean)
            poi = DASH if p.p_improvement is None else f"{p.p_improvement:.2f}"
            out.append(
                table_row(
                    [
                        method,
                        f"**{delta}**" if p.is_ahead else delta,
                        ci_text(p.ci),
                        poi,
                        str(p.n),
                        rank(method),
                    ]
                )
            )
    out.append("")
    if results:
        out += [detectable_text(section, results), ""]
    return out + ranking_text(ranking, cd_link)
