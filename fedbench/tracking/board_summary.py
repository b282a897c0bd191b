"""What a board says around its tables: the header, the summary across plans, the notes.

- **Header**: which runs count (provenance, what was left out) and how to read the statistics.
- **At a glance**: one row per section (bench plan) with a reference baseline: the method with the
  largest mean paired difference to it, that difference with its 95% CI, and whether it is
  significant (the CI lies above zero: the same rule as bold, :func:`~fedbench.tracking.board_stats.ahead`).
- **Notes**: one note per method on the board, each in full. A note is never replaced by a
  pointer to another method's note: two methods that share a text (FedMVP and its FedAvg variant)
  each show it, so every row of the board can be read from its own note.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fedbench.tracking.board_foreign import TITLE as FOREIGN_TITLE
from fedbench.tracking.board_paired import PLANNING_SEEDS, Paired, ci_text, signed, winner
from fedbench.tracking.board_stats import DASH, table_head, table_row
from fedbench.tracking.record_file import Foreign
from fedbench.tracking.records import is_diverged
from fedbench.tracking.seed_stats import ALPHA, BOOTSTRAP_REPS, BOOTSTRAP_SEED, CI_LABEL, POWER

__all__ = ["STATISTICS_HELP", "PlanResult", "notes_block", "not_counted", "provenance_lines", "summary_block"]

STATISTICS_HELP = (
    f"Statistics, on each section's at-a-glance measure. At-a-glance cells: mean [{CI_LABEL}] over seeds, a "
    f"percentile bootstrap ({BOOTSTRAP_REPS:,} resamples from a generator seeded {BOOTSTRAP_SEED}, so the "
    "board regenerates byte for byte); detail tables: mean ± sample std. A cell from one seed has no CI and "
    "is never bold. Each method is compared with its section's reference baseline (the plan's FedAvg "
    "variant) on the same seeds and settings: `Δ` = the mean paired difference (method - reference, points "
    f"×100) with its stratified-bootstrap {CI_LABEL} (seeds resampled within each setting; none when a "
    "setting has fewer than 2 paired seeds; with 2 or 3 seeds its lower end is the smallest observed "
    "difference, so it clears zero whenever every seed favours the method, a quarter or an eighth of the "
    "time when nothing differs: read such bold with the minimum detectable difference); `P(improvement)` = "
    "the chance that a run of the method beats a run of the reference at the same setting (Mann-Whitney, "
    "ties count half), averaged over settings; `pairs` = (setting, seed) pairs both finished; `mean rank` = "
    "rank by seed mean at each setting (1 = best), averaged over the settings, with Friedman's test, "
    f"Nemenyi's critical difference (alpha {ALPHA:.2g}) and its diagram. Minimum detectable difference = "
    f"(t[{1 - ALPHA / 2:.3g}, n-1] + t[{POWER:g}, n-1]) × s_d / √n: the true paired difference at one "
    f"setting that a two-sided paired t-test over the section's n seeds finds with power {POWER:g} at alpha "
    f"{ALPHA:.2g}, s_d the paired differences' sample std pooled over the section's methods and settings "
    f"(also given at {PLANNING_SEEDS} seeds)."
)


@dataclass(frozen=True)
class PlanResult:
    """One section's comparison with its reference (``results``: [] when it has no reference run)."""

    section: str
    reference: str | None
    headline: str
    seeds: int
    results: list[Paired]


def summary_block(plans: list[PlanResult]) -> list[str]:
    """The at-a-glance table across plans: per plan the best method against its reference."""
    if not plans:
        return []
    out = ["## At a glance", ""]
    out.append(
        f"Per section: the method with the largest mean paired difference to the reference, and whether its "
        f"{CI_LABEL} lies above zero."
    )
    out += [
        "",
        *table_head(
            ["section", "measure", "reference", "best", "Δ", CI_LABEL, "P(improvement)", "ahead", "seeds"]
        ),
    ]
    for plan in plans:
        best = winner(plan.results)
        if plan.reference is None or not plan.results:
            why = "no reference baseline" if plan.reference is None else f"no {plan.reference} run"
            row = [DASH, why, DASH, DASH, DASH]
        elif best is None:
            row = [f"none ahead of {plan.reference}", DASH, DASH, DASH, "no"]
        else:
            verdict = (
                "no CI (fewer than 2 paired seeds in a setting)"
                if best.ci is None
                else "yes (CI above 0)"
                if best.is_ahead
                else "no (CI includes 0)"
            )
            row = [best.method, signed(best.mean), ci_text(best.ci), f"{best.p_improvement:.2f}", verdict]
        out.append(
            table_row([plan.section, f"final {plan.headline}", plan.reference or DASH, *row, str(plan.seeds)])
        )
    return [*out, ""]


def notes_block(shown: list[str], notes: dict[str, str]) -> list[str]:
    """One full note per method on the board (in ``shown`` order) that has one."""
    kept = {m: notes[m].strip() for m in shown if notes.get(m, "").strip()}
    if not kept:
        return []
    return ["## Notes", "", *(f"- **{method}**: {note}" for method, note in kept.items()), ""]


def provenance_lines(runs: list[dict[str, Any]]) -> list[str]:
    commits = sorted({str(r.get("git_commit", "unknown")) for r in runs})
    seeds = sorted({r.get("seed") for r in runs}, key=str)
    rates = sorted({float(r["majority_rate"]) for r in runs if r.get("majority_rate") is not None})
    majority = DASH if not rates else f"{100 * rates[0]:.1f}"
    if len(rates) > 1:
        majority += f"–{100 * rates[-1]:.1f} (differs between runs)"
    diverged = sum(is_diverged(r) for r in runs)
    return [
        f"- Runs: {len(runs)} (after keeping the newest of duplicate runs), {diverged} diverged; "
        f"seeds: {', '.join(str(s) for s in seeds)}; "
        f"majority-class rate: {majority} (always predicting the most frequent class)",
        f"- Git commit(s): {', '.join(f'`{c}`' for c in commits)}",
        "",
    ]


def not_counted(skipped: int, foreign: list[Foreign]) -> list[str]:
    """The header line that says which records the board leaves out, and where they went."""
    if not skipped and not foreign:
        return [""]
    parts = []
    if skipped:
        parts.append(
            f"{skipped} invalid record{'s' if skipped != 1 else ''} skipped (each named in a warning)"
        )
    if foreign:
        parts.append(
            f"{len(foreign)} record{'s' if len(foreign) != 1 else ''} not produced here "
            f'(listed under "{FOREIGN_TITLE}", never averaged in)'
        )
    return [f"- Not counted: {'; '.join(parts)}", ""]
