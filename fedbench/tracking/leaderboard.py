"""Markdown leaderboard regenerated from run records alone.

The leaderboard is a pure function of ``results/<dataset>/*.json``: nothing in it is edited by hand,
so any number on it can be traced to run files (and their git commit and config). It reads like a
paper's table: the headline first, then the detail.

- One section per bench plan (sweep): numbers from different plans are never mixed in one table.
  The section states what its runs share and what varies (see :mod:`fedbench.tracking.board_model`).
- An at-a-glance table: methods x settings, the primary metric of the final round under ``as_train``
  (or the condition the plan's paper reports: FedMVP's ``complete``, ``BenchPlan.headline``).
- One detail table per setting group (e.g. per missing type): every test condition, the
  validation-selected round (never a round picked on test), personalized score, upload per round.
- At a glance, cells are the mean and its 95% bootstrap CI over seeds; in the detail tables, mean ±
  std. Every method is compared with the section's reference baseline (``BenchPlan.reference``, the
  plan's FedAvg variant) on the same seeds and settings: paired difference, CI, probability of
  improvement, the minimum detectable difference, and a ranking with a critical-difference diagram
  (:mod:`~fedbench.tracking.board_paired`, :mod:`~fedbench.tracking.board_ranks`). Bold only where
  the paired CI lies above zero (:func:`~fedbench.tracking.board_stats.ahead`). Diverged runs are
  counted, never averaged.
- On top, a summary across plans; at the end, one full note per method on the board
  (:mod:`~fedbench.tracking.board_summary`).
- Where a section's runs log them: completion-quality columns, the pool size per round (table and
  plot), see :mod:`~fedbench.tracking.board_extras`; and the paper's number beside fedbench's
  where a paper reports the same method in the same setting (:mod:`~fedbench.tracking.paper_numbers`).
- Only records produced here count (signed with this user's key, or committed and unchanged);
  other valid records are listed in a last, marked section (:mod:`~fedbench.tracking.board_foreign`)
  and invalid ones are skipped with a warning each. The header counts all three.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import Any

from fedbench.batch import CONDITION_HELP
from fedbench.errors import DataError
from fedbench.tracking.board_defaults import method_option_notes, unusual_shared
from fedbench.tracking.board_details import COLUMN_HELP, details_block
from fedbench.tracking.board_extras import COMPLETION_HELP, completion_columns, pool_block
from fedbench.tracking.board_foreign import foreign_block
from fedbench.tracking.board_model import (
    Section,
    build_sections,
    metric_measure,
    primary_metric,
    valid_runs,
)
from fedbench.tracking.board_paired import ahead_at, comparison_block, paired_all, seed_count
from fedbench.tracking.board_ranks import cd_plot_name, rank_section
from fedbench.tracking.board_stats import BOLD_RULE, DASH, cell_text, collect, table_head, table_row
from fedbench.tracking.board_summary import (
    STATISTICS_HELP,
    PlanResult,
    not_counted,
    notes_block,
    provenance_lines,
    summary_block,
)
from fedbench.tracking.paper_numbers import PaperNumber, load_paper_numbers, paper_block
from fedbench.tracking.record_file import Foreign, read_records
from fedbench.tracking.records import atomic_write_text

__all__ = ["render_leaderboard", "write_leaderboard"]


def render_leaderboard(
    records: list[dict[str, Any]],
    *,
    dataset: str,
    command: str,
    method_notes: dict[str, str] | None = None,
    plot_path: Path | None = None,
    pool_plot_path: Path | None = None,
    paper_numbers: list[PaperNumber] | None = None,
    foreign: list[Foreign] | None = None,
    skipped_files: int = 0,
    headlines: dict[str, str] | None = None,
    references: dict[str, str] | None = None,
    cd_plots: dict[str, Path] | None = None,
    curve_plots: dict[str, Path] | None = None,
    roles: dict[str, str] | None = None,
    in_progress: Collection[str] = (),
) -> str:
    """Render the markdown leaderboard of ``dataset`` from ``records`` (other datasets ignored).

    ``command`` (one or more lines) is shown with the commands stored in the records
    (``config.tracking.command``, one per section) as the way to regenerate the board.
    ``plot_path`` and ``pool_plot_path`` are written verbatim as image links, so pass them relative
    to the markdown file, as the values of ``cd_plots`` (section name -> its critical-difference
    diagram) and of ``curve_plots`` (section name -> its validation learning curves). ``roles``:
    section name -> one line on what the section is for (e.g. a smoke benchmark, the board of
    record), shown under its heading; ``in_progress``: sections not yet complete (an unfinished board of
    record), marked so in the at-a-glance table. ``paper_numbers`` are shown beside the runs they match.
    ``headlines``: section (sweep) name -> the test condition of its at-a-glance table (default
    ``as_train``); ``references``: section name -> the baseline its methods are compared with
    (none: no paired statistics, nothing bold). Duplicate runs are collapsed to the newest (see
    :func:`~fedbench.tracking.records.dedupe_records`); invalid records are skipped with a
    warning. ``records`` are the caller's own runs; ``foreign`` (valid records not produced here)
    are only listed in their own last section, and ``skipped_files`` (invalid files the caller
    already skipped) is counted in the header.
    """
    runs, skipped = valid_runs(records, dataset)
    foreign = [f for f in foreign or [] if f.record.get("dataset") == dataset]
    sections = build_sections(runs)
    commands = [c for s in sections for c in s.commands] + [ln for ln in command.splitlines() if ln.strip()]
    out = [f"# fedbench leaderboard: {dataset}", ""]
    out += ["_Generated from the run records in `results/`; never edit by hand. Regenerate with:_", ""]
    out += ["```bash", *dict.fromkeys(commands), "```", ""]
    if not runs:
        return "\n".join(
            [
                *out,
                *not_counted(skipped + skipped_files, foreign),
                "_No runs recorded yet._",
                "",
                *foreign_block(foreign),
            ]
        )
    metric = primary_metric(runs, dataset)
    out += provenance_lines(runs)[:-1] + not_counted(skipped + skipped_files, foreign)
    out += [
        f"{metric} ×100; {BOLD_RULE}; `{DASH}` = no run; "
        "`diverged` = a run whose loss or weights became non-finite, never averaged in.",
        "",
        STATISTICS_HELP,
        "",
        "Columns: " + "; ".join(f"`{name}`: {text}" for name, text in _column_help(runs)) + ".",
        "",
    ]
    if plot_path is not None:
        out += [f"![{metric} per setting]({Path(plot_path).as_posix()})", ""]
    pool_link = None if pool_plot_path is None else Path(pool_plot_path).as_posix()
    body, plans = [], []
    for section in sections:
        headline = (headlines or {}).get(section.name, "as_train")
        reference = (references or {}).get(section.name)
        measure = metric_measure(metric, headline)
        results = paired_all(section, reference, measure)
        label = f"{section.name} (in progress)" if section.name in in_progress else section.name
        plans.append(PlanResult(label, reference, headline, seed_count(section), results))
        cd_link = None if section.name not in (cd_plots or {}) else Path(cd_plots[section.name]).as_posix()
        body += _section(section, metric, headline, reference, (roles or {}).get(section.name))
        body += comparison_block(section, reference, results, rank_section(section, measure), cd_link)
        if section.name in (curve_plots or {}):
            link = Path(curve_plots[section.name]).as_posix()
            body += [f"![validation {metric} per round, mean over seeds]({link})", ""]
        body += details_block(section, metric, reference)
        body += pool_block(section, pool_link)
        body += paper_block(section, paper_numbers or [], dataset, metric)
    shown = sorted({str(r.get("method")) for r in runs})
    return "\n".join(
        [*out, *summary_block(plans), *body, *notes_block(shown, method_notes or {}), *foreign_block(foreign)]
    )


def write_leaderboard(
    results_dir: Path,
    out_dir: Path,
    dataset: str,
    command: str,
    method_notes: dict[str, str] | None = None,
    paper_numbers: Path | None = None,
    headlines: dict[str, str] | None = None,
    references: dict[str, str] | None = None,
    roles: dict[str, str] | None = None,
    in_progress: Collection[str] = (),
) -> Path:
    """Regenerate ``out_dir/<dataset>.md`` and ``out_dir/<dataset>.png`` from ``results_dir`` only,
    with ``out_dir/<dataset>_pool.png`` when runs log a pool size per round (a stale one is removed
    when none do), one critical-difference diagram per section that can be ranked,
    ``out_dir/<dataset>_cd_<section>.png`` (stale ones removed), and the papers' numbers from the
    file ``paper_numbers`` (default :data:`~fedbench.tracking.paper_numbers.PAPER_NUMBERS`), which is
    checked before anything is written, and one validation learning-curve plot per section,
    ``out_dir/<dataset>_curves_<section>.png`` (stale ones removed). ``headlines``, ``references``,
    ``roles`` and ``in_progress`` as in :func:`render_leaderboard`.

    Files are replaced atomically (mode 0644), so a crash leaves the previous leaderboard
    readable. A malformed record is skipped with one warning naming its file. Returns the markdown path.
    """
    from fedbench.tracking.plots import (  # matplotlib only when plotting
        curves_plot_name,
        plot_cd_diagrams,
        plot_learning_curves,
        plot_metric_vs_rate,
        plot_round_series,
    )

    found = read_records(results_dir, dataset)
    records = found.own
    if not records and not found.foreign:
        invalid = f" ({len(found.skipped)} invalid, named in the warnings above)" if found.skipped else ""
        raise DataError(
            f"no run records for dataset {dataset!r} under {Path(results_dir) / dataset}{invalid}; "
            "run a benchmark first"
        )
    numbers = load_paper_numbers(paper_numbers)
    out_dir = Path(out_dir)
    png = plot_metric_vs_rate(records, out_dir / f"{dataset}.png", dataset)
    pool = plot_round_series(records, out_dir / f"{dataset}_pool.png", dataset)
    if pool is None:
        (out_dir / f"{dataset}_pool.png").unlink(missing_ok=True)  # no run logs a pool size any more
    cd_plots = plot_cd_diagrams(records, out_dir, dataset, headlines)
    curve_plots = plot_learning_curves(records, out_dir, dataset)
    for stale in set(out_dir.glob(cd_plot_name(dataset, None))) - set(cd_plots.values()):
        stale.unlink()
    for stale in set(out_dir.glob(curves_plot_name(dataset, None))) - set(curve_plots.values()):
        stale.unlink()
    text = render_leaderboard(
        records,
        dataset=dataset,
        command=command,
        method_notes=method_notes,
        plot_path=Path(png.name),
        pool_plot_path=None if pool is None else Path(pool.name),
        paper_numbers=numbers,
        foreign=found.foreign,
        skipped_files=len(found.skipped),
        headlines=headlines,
        references=references,
        cd_plots={name: Path(path.name) for name, path in cd_plots.items()},
        curve_plots={name: Path(path.name) for name, path in curve_plots.items()},
        roles=roles,
        in_progress=in_progress,
    )
    return atomic_write_text(out_dir / f"{dataset}.md", text)


def _column_help(runs: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """Help for every column the board can show; the completion columns only where runs report them."""
    completion = {name for name, _ in completion_columns(runs)}
    extra = [(name, text) for name, text in COMPLETION_HELP.items() if name in completion]
    return [*CONDITION_HELP.items(), *COLUMN_HELP.items(), *extra]


def _section(
    section: Section, metric: str, headline: str, reference: str | None, role: str | None = None
) -> list[str]:
    """The section's heading, its role, what its runs share, and its at-a-glance table (mean [95% CI])."""
    varies = [p for p in section.varying if p != "seed"]
    shared = [t for t in (section.shared_text(), *(f"`{p}`" for p in unusual_shared(section))) if t]
    intro = [f"Shared: {', '.join(shared) or 'nothing'}."]
    if varies:
        intro.append("Varies: " + ", ".join(f"`{p}`" for p in varies) + ".")
    if options := method_option_notes(section):
        intro.append("Method options set away from their defaults: " + "; ".join(options) + ".")
    if section.commands:
        intro.insert(0, "From " + " and ".join(f"`{c}`" for c in section.commands) + ".")
    out = [f"## {section.name}", "", *([f"**{role}**", ""] if role else []), " ".join(intro), ""]

    measure = metric_measure(metric, headline)
    header = [f"{metric}, final {headline}", *(s.label for s in section.settings)]
    bold = {s: ahead_at(section, reference, measure, s) for s in section.settings}
    out += table_head(header)
    for method in section.methods:
        cells = [
            cell_text(collect(section.cells.get((method, s), []), measure), method in bold[s], "ci")
            for s in section.settings
        ]
        out.append(table_row([method, *cells]))
    return [*out, ""]
