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
- Cells are ``mean ± std`` over seeds; bold only where the lead is larger than the noise
  (:func:`~fedbench.tracking.board_stats.best_index`); diverged runs are counted, never averaged.
- Where a section's runs log them: completion-quality columns, the pool size per round (table and
  plot), see :mod:`~fedbench.tracking.board_extras`; and the paper's number beside fedbench's
  where a paper reports the same method in the same setting (:mod:`~fedbench.tracking.paper_numbers`).
- Only records produced here count (signed with this user's key, or committed and unchanged);
  other valid records are listed in a last, marked section (:mod:`~fedbench.tracking.board_foreign`)
  and invalid ones are skipped with a warning each. The header counts all three.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from fedbench.batch import CONDITION_HELP, TEST_CONDITIONS
from fedbench.errors import DataError
from fedbench.tracking.board_defaults import method_option_notes, unusual_shared
from fedbench.tracking.board_extras import COMPLETION_HELP, completion_columns, pool_block
from fedbench.tracking.board_foreign import TITLE as FOREIGN_TITLE
from fedbench.tracking.board_foreign import foreign_block
from fedbench.tracking.board_model import (
    Section,
    Setting,
    build_sections,
    bytes_up_mb,
    metric_measure,
    primary_metric,
    valid_runs,
)
from fedbench.tracking.board_stats import (
    BOLD_RULE,
    DASH,
    best_index,
    cell_text,
    collect,
    table_head,
    table_row,
)
from fedbench.tracking.paper_numbers import PaperNumber, load_paper_numbers, paper_block
from fedbench.tracking.record_file import Foreign, read_records
from fedbench.tracking.records import atomic_write_text, is_diverged

__all__ = ["render_leaderboard", "write_leaderboard"]

SELECTED, PERSONALIZED, UPLOAD, SEEDS = "val-selected", "personalized", "MB up/round", "seeds"
COLUMN_HELP = {
    SELECTED: "`as_train` at the round with the best validation score (the test set never picks a round)",
    PERSONALIZED: "each client's own model on the test set reweighted to its labels, mean over clients",
    UPLOAD: "MB all sampled clients sent up per round, mean over rounds and seeds",
    SEEDS: "runs per cell (finished + diverged)",
}
Column = tuple[str, Callable[[dict[str, Any]], float | None]]


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
) -> str:
    """Render the markdown leaderboard of ``dataset`` from ``records`` (other datasets ignored).

    ``command`` (one or more lines) is shown with the commands stored in the records
    (``config.tracking.command``, one per section) as the way to regenerate the board.
    ``plot_path`` and ``pool_plot_path`` are written verbatim as image links, so pass them relative
    to the markdown file. ``paper_numbers`` are shown beside the runs they match. ``headlines``:
    section (sweep) name -> the test condition of its at-a-glance table (default ``as_train``).
    Duplicate runs are collapsed to the newest (see :func:`~fedbench.tracking.records.dedupe_records`);
    invalid records are skipped with a warning. ``records`` are the caller's own runs; ``foreign``
    (valid records not produced here) are only listed in their own last section, and
    ``skipped_files`` (invalid files the caller already skipped) is counted in the header.
    """
    runs, skipped = valid_runs(records, dataset)
    foreign = [f for f in foreign or [] if f.record.get("dataset") == dataset]
    sections = build_sections(runs)
    commands = [c for s in sections for c in s.commands] + [ln for ln in command.splitlines() if ln.strip()]
    out = [f"# fedbench leaderboard: {dataset}", ""]
    out += ["_Generated from the run records in `results/`; never edit by hand. Regenerate with:_", ""]
    out += ["```bash", *dict.fromkeys(commands), "```", ""]
    if not runs:
        return "\n".join([*out, *_not_counted(skipped + skipped_files, foreign), "_No runs recorded yet._", "",
                          *foreign_block(foreign)])
    metric = primary_metric(runs, dataset)
    out += _provenance_lines(runs)[:-1] + _not_counted(skipped + skipped_files, foreign)
    out += [
        f"{metric} ×100, mean ± std over seeds (sample std); {BOLD_RULE}; `{DASH}` = no run; "
        "`diverged` = a run whose loss or weights became non-finite, never averaged in.",
        "",
        "Columns: " + "; ".join(f"`{name}`: {text}" for name, text in _column_help(runs)) + ".",
        "",
    ]
    if plot_path is not None:
        out += [f"![{metric} per setting]({Path(plot_path).as_posix()})", ""]
    pool_link = None if pool_plot_path is None else Path(pool_plot_path).as_posix()
    for section in sections:
        out += _section(section, metric, (headlines or {}).get(section.name, "as_train"))
        out += pool_block(section, pool_link)
        out += paper_block(section, paper_numbers or [], dataset, metric)
    shown = sorted({str(r.get("method")) for r in runs})
    return "\n".join([*out, *_notes(shown, method_notes or {}), *foreign_block(foreign)])


def write_leaderboard(
    results_dir: Path,
    out_dir: Path,
    dataset: str,
    command: str,
    method_notes: dict[str, str] | None = None,
    paper_numbers: Path | None = None,
    headlines: dict[str, str] | None = None,
) -> Path:
    """Regenerate ``out_dir/<dataset>.md`` and ``out_dir/<dataset>.png`` from ``results_dir`` only,
    with ``out_dir/<dataset>_pool.png`` when runs log a pool size per round (a stale one is removed
    when none do) and the papers' numbers from the file ``paper_numbers`` (default
    :data:`~fedbench.tracking.paper_numbers.PAPER_NUMBERS`), which is checked before anything is written.

    Files are replaced atomically (mode 0644), so a crash leaves the previous leaderboard
    readable. A malformed record is skipped with one warning naming its file. Returns the markdown path.
    """
    from fedbench.tracking.plots import (  # matplotlib only when plotting
        plot_metric_vs_rate,
        plot_round_series,
    )

    found = read_records(results_dir, dataset)
    records = found.own
    if not records and not found.foreign:
        invalid = f" ({len(found.skipped)} invalid, named in the warnings above)" if found.skipped else ""
        raise DataError(
            f"no run records for dataset {dataset!r} under {Path(results_dir) / dataset}{invalid}; run a benchmark first"
        )
    numbers = load_paper_numbers(paper_numbers)
    out_dir = Path(out_dir)
    png = plot_metric_vs_rate(records, out_dir / f"{dataset}.png", dataset)
    pool = plot_round_series(records, out_dir / f"{dataset}_pool.png", dataset)
    if pool is None:
        (out_dir / f"{dataset}_pool.png").unlink(missing_ok=True)  # no run logs a pool size any more
    text = render_leaderboard(
        records, dataset=dataset, command=command, method_notes=method_notes, plot_path=Path(png.name),
        pool_plot_path=None if pool is None else Path(pool.name), paper_numbers=numbers,
        foreign=found.foreign, skipped_files=len(found.skipped), headlines=headlines,
    )
    return atomic_write_text(out_dir / f"{dataset}.md", text)


def _column_help(runs: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """Help for every column the board can show; the completion columns only where runs report them."""
    completion = {name for name, _ in completion_columns(runs)}
    extra = [(name, text) for name, text in COMPLETION_HELP.items() if name in completion]
    return [*CONDITION_HELP.items(), *COLUMN_HELP.items(), *extra]


def _provenance_lines(runs: list[dict[str, Any]]) -> list[str]:
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


def _not_counted(skipped: int, foreign: list[Foreign]) -> list[str]:
    """The header line that says which records the board leaves out, and where they went."""
    if not skipped and not foreign:
        return [""]
    parts = []
    if skipped:
        parts.append(f"{skipped} invalid record{'s' if skipped != 1 else ''} skipped (each named in a warning)")
    if foreign:
        parts.append(f"{len(foreign)} record{'s' if len(foreign) != 1 else ''} not produced here "
                     f"(listed under \"{FOREIGN_TITLE}\", never averaged in)")
    return [f"- Not counted: {'; '.join(parts)}", ""]


def _section(section: Section, metric: str, headline: str = "as_train") -> list[str]:
    varies = [p for p in section.varying if p != "seed"]
    shared = [t for t in (section.shared_text(), *(f"`{p}`" for p in unusual_shared(section))) if t]
    intro = [f"Shared: {', '.join(shared) or 'nothing'}."]
    if varies:
        intro.append("Varies: " + ", ".join(f"`{p}`" for p in varies) + ".")
    if options := method_option_notes(section):
        intro.append("Method options set away from their defaults: " + "; ".join(options) + ".")
    if section.commands:
        intro.insert(0, "From " + " and ".join(f"`{c}`" for c in section.commands) + ".")
    out = [f"## {section.name}", "", " ".join(intro), ""]

    measure = metric_measure(metric, headline)
    header = [f"{metric}, final {headline}", *(s.label for s in section.settings)]
    stats = {(m, s): collect(section.cells.get((m, s), []), measure) for m in section.methods for s in section.settings}
    bold = {s: best_index([stats[m, s] for m in section.methods]) for s in section.settings}
    out += table_head(header)
    for i, method in enumerate(section.methods):
        out.append(table_row([method, *(cell_text(stats[method, s], bold[s] == i) for s in section.settings)]))
    out.append("")
    for title, settings in section.groups():
        out += _detail(section, title, settings, metric)
    return out


def _detail(section: Section, title: str, settings: list[Setting], metric: str) -> list[str]:
    """Rows = (rate, method) present in the group; columns = test conditions and the extra measures."""
    rows = [(s, m) for s in settings for m in section.methods if (m, s) in section.cells]
    runs = [r for s, m in rows for r in section.cells[m, s]]
    columns = _columns(runs, metric)
    by_rate = len(settings) > 1
    if not by_rate and settings[0].rate is not None:
        title += f" at rate {settings[0].rate:g}"
    out = [f"### {title}", ""]
    out += table_head([*(["rate"] if by_rate else []), "method", *(name for name, _ in columns), SEEDS])
    stats = {(s, m, name): collect(section.cells[m, s], value) for s, m in rows for name, value in columns}
    bold: dict[tuple[Setting, str], str] = {}
    for name, _ in columns:
        if name == UPLOAD or name in COMPLETION_HELP:
            continue  # fewer bytes is not "ahead"; completion quality describes the input, not the result
        for setting in settings:
            peers = [m for s, m in rows if s == setting]
            best = best_index([stats[setting, m, name] for m in peers])
            if best is not None:
                bold[setting, name] = peers[best]
    for setting, method in rows:
        runs = section.cells[method, setting]
        diverged = sum(is_diverged(r) for r in runs)  # said once, in the seeds column
        cells = [cell_text(stats[setting, method, name], bold.get((setting, name)) == method, name != UPLOAD, diverged)
                 for name, _ in columns]
        lead = [f"{setting.rate:g}" if setting.rate is not None else setting.label] if by_rate else []
        seeds = f"{len(runs) - diverged} + {diverged} diverged" if diverged else str(len(runs))
        out.append(table_row([*lead, method, *cells, seeds]))
    return [*out, ""]


def _columns(runs: list[dict[str, Any]], metric: str) -> list[Column]:
    """Test conditions any run reports (in TEST_CONDITIONS order, unknown ones after), then extras."""
    reported = {c for r in runs for c in (r.get("final") or {})}
    conditions = [c for c in TEST_CONDITIONS if c in reported] + sorted(reported - set(TEST_CONDITIONS))
    columns: list[Column] = [(c, metric_measure(metric, c)) for c in conditions]
    extras: list[Column] = [
        (SELECTED, metric_measure(metric, "as_train", "selected")),
        (PERSONALIZED, metric_measure(metric, None, "personalized")),
        (UPLOAD, bytes_up_mb),
        *completion_columns(runs),
    ]
    return columns + [(name, value) for name, value in extras if any(value(r) is not None for r in runs)]


def _notes(shown: list[str], notes: dict[str, str]) -> list[str]:
    """One note per method on the board; a note that repeats another shown note says so instead."""
    kept = {m: notes[m].strip() for m in shown if notes.get(m, "").strip()}
    if not kept:
        return []
    out = ["## Notes", ""]
    for method, note in kept.items():
        for other, text in kept.items():
            if other != method and len(text) >= 40 and text in note:
                note = note.replace(text, f"Otherwise as **{other}**.").strip()
        out.append(f"- **{method}**: {note}")
    return [*out, ""]
