"""Markdown leaderboard regenerated from run records alone.

The leaderboard is a pure function of ``results/<dataset>/*.json``: nothing in it is edited by hand,
so any number on it can be traced to run files (and their git commit and config). It reports the
final-round metrics and, separately, the validation-selected round, never a round picked on test.

Layout: one section per missing-modality setting (type, plus protocol when not per-sample), since
numbers from different settings are not comparable; inside it one table per test condition with
methods as rows and missing rates as columns; cells are ``mean ± std`` over seeds (sample std).
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fedbench.errors import DataError
from fedbench.tracking.records import (
    atomic_write_text,
    dedupe_records,
    load_records,
    metric_value,
    partition_label,
    section_of,
    section_title,
)

__all__ = ["CONDITION_HELP", "CONDITION_ORDER", "Cell", "render_leaderboard", "summarize", "write_leaderboard"]

CONDITION_ORDER = ("as_train", "both_missing", "complete", "text_only", "image_only")
CONDITION_HELP = {
    "as_train": "test samples miss modalities at the same rate and type as in training",
    "both_missing": "a 0.7 missing rate split between text-missing and image-missing samples",
    "complete": "every test sample has both image and text",
    "text_only": "every image is missing (text only)",
    "image_only": "every text is missing (image only)",
}
DASH = "–"

Row = tuple[str, str]  # (method, partition identity)


@dataclass(frozen=True)
class Cell:
    """Seed statistics of one table cell, already scaled ×100."""

    mean: float
    std: float | None  # None with a single seed: a std of one sample is undefined, not 0
    n: int

    def text(self) -> str:
        return f"{self.mean:.1f}" if self.std is None else f"{self.mean:.1f} ± {self.std:.1f}"


def summarize(values: list[float]) -> Cell | None:
    """Mean and sample standard deviation (ddof=1) of fractions in [0, 1], reported ×100."""
    if not values:
        return None
    scaled = [100.0 * v for v in values]
    std = statistics.stdev(scaled) if len(scaled) > 1 else None
    return Cell(statistics.fmean(scaled), std, len(scaled))


def render_leaderboard(
    records: list[dict[str, Any]],
    *,
    dataset: str,
    command: str,
    method_notes: dict[str, str] | None = None,
    plot_path: Path | None = None,
) -> str:
    """Render the markdown leaderboard of ``dataset`` from ``records`` (other datasets ignored).

    ``plot_path`` is written verbatim as the image link, so pass it relative to the markdown file.
    Duplicate runs are collapsed to the newest (see :func:`~fedbench.tracking.records.dedupe_records`).
    """
    runs = dedupe_records([r for r in records if r.get("dataset") == dataset])
    out = [f"# fedbench leaderboard: {dataset}", ""]
    out += [
        "_Generated from the run records in `results/`; never edit by hand. Regenerate with:_",
        "",
        "```bash",
        command,
        "```",
        "",
    ]
    if not runs:
        return "\n".join([*out, "_No runs recorded yet._", ""])
    metric = _primary_metric(runs, dataset)
    out += _provenance_lines(runs)
    if plot_path is not None:
        out += [f"![{metric} vs missing rate]({Path(plot_path).as_posix()})", ""]

    sections: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for run in runs:
        sections[section_of(run)].append(run)
    for section in sorted(sections):
        out += _render_section(section, sections[section], metric)

    if method_notes:
        out += ["## Notes", ""]
        out += [f"- **{name}**: {note}" for name, note in sorted(method_notes.items())]
        out.append("")
    out += ["## Test conditions", ""]
    out += [f"- `{name}`: {text}." for name, text in CONDITION_HELP.items()]
    out += [
        "",
        "Final = metrics after the last round. Validation-selected = the round with the best validation "
        "score; the test set is never used to pick a round.",
        "",
    ]
    return "\n".join(out)


def write_leaderboard(
    results_dir: Path,
    out_dir: Path,
    dataset: str,
    command: str,
    method_notes: dict[str, str] | None = None,
) -> Path:
    """Regenerate ``out_dir/<dataset>.md`` and ``out_dir/<dataset>.png`` from ``results_dir`` only.

    Both files are replaced atomically, so a crash leaves the previous leaderboard readable.
    Returns the markdown path.
    """
    from fedbench.tracking.plots import plot_metric_vs_rate  # matplotlib only when a plot is made

    records = [r for r in load_records(results_dir, dataset) if r.get("dataset") == dataset]
    if not records:
        raise DataError(
            f"no run records for dataset {dataset!r} under {Path(results_dir) / dataset}; run a benchmark first"
        )
    out_dir = Path(out_dir)
    png = plot_metric_vs_rate(records, out_dir / f"{dataset}.png", dataset)
    text = render_leaderboard(
        records, dataset=dataset, command=command, method_notes=method_notes, plot_path=Path(png.name)
    )
    return atomic_write_text(out_dir / f"{dataset}.md", text)


def _primary_metric(runs: list[dict[str, Any]], dataset: str) -> str:
    metrics = sorted({str(r.get("metric")) for r in runs})
    if len(metrics) != 1:
        raise DataError(
            f"records of {dataset!r} use different primary metrics {metrics}; move the stale runs out of results/"
        )
    return metrics[0]


def _provenance_lines(runs: list[dict[str, Any]]) -> list[str]:
    commits = sorted({str(r.get("git_commit", "unknown")) for r in runs})
    seeds = sorted({r.get("seed") for r in runs}, key=str)
    rates = sorted({float(r["majority_rate"]) for r in runs if r.get("majority_rate") is not None})
    majority = DASH if not rates else f"{100 * rates[0]:.1f}"
    if len(rates) > 1:
        majority += f"–{100 * rates[-1]:.1f} (differs between runs)"
    return [
        f"- Runs: {len(runs)} (after keeping the newest of duplicate runs)",
        f"- Git commit(s): {', '.join(f'`{c}`' for c in commits)}",
        f"- Seeds: {', '.join(str(s) for s in seeds)}",
        f"- Majority-class rate: {majority} (always predicting the most frequent class)",
        "",
    ]


def _render_section(section: tuple[str, str], runs: list[dict[str, Any]], metric: str) -> list[str]:
    partitions = {_partition_key(r): partition_label(r.get("partition")) for r in runs}
    out = [f"## {section_title(section)}", ""]
    if len(partitions) == 1:
        out += [f"Partition: {next(iter(partitions.values()))}.", ""]
    out += [
        f"{metric} ×100, mean ± std over seeds (sample std, ddof=1); **bold** = best mean in the column; "
        f"`{DASH}` = no run; seeds = runs per cell (min–max along the row).",
        "",
    ]

    conditions = {c for r in runs for c in (r.get("final") or {})}
    ordered = [c for c in CONDITION_ORDER if c in conditions] + sorted(conditions - set(CONDITION_ORDER))
    for condition in ordered:
        out += _table(f"final, {condition}", runs, partitions, lambda r, c=condition: metric_value(r, metric, c))
    if any(r.get("selected") for r in runs):
        title = "validation-selected round, as_train"
        out += _table(title, runs, partitions, lambda r: metric_value(r, metric, "as_train", "selected"))
    if any(r.get("personalized") for r in runs):
        title = "personalized (mean over clients of per-client evaluation)"
        out += _table(title, runs, partitions, lambda r: metric_value(r, metric, None, "personalized"))
    return out


def _table(
    title: str,
    runs: list[dict[str, Any]],
    partitions: dict[str, str],
    value_of: Callable[[dict[str, Any]], float | None],
) -> list[str]:
    """One markdown table: rows = (method, partition), columns = missing rates, best mean bold."""
    values: dict[tuple[Row, float | None], list[float]] = defaultdict(list)
    rows: set[Row] = set()
    rate_set: set[float | None] = set()
    for run in runs:
        row: Row = (str(run.get("method")), _partition_key(run))
        rate = (run.get("missing") or {}).get("rate")
        rate = None if rate is None else float(rate)
        rows.add(row)
        rate_set.add(rate)
        value = value_of(run)
        if value is not None:
            values[row, rate].append(value)
    rates = sorted(rate_set, key=lambda r: (r is None, r or 0.0))
    cells = {key: summarize(v) for key, v in values.items()}
    best: dict[float | None, float | None] = {}
    for rate in rates:
        means = [round(c.mean, 1) for (_, r), c in cells.items() if r == rate and not math.isnan(c.mean)]
        best[rate] = max(means) if means else None

    header = ["method", *(f"rate {_fmt_rate(r)}" for r in rates), "seeds"]
    out = [f"### {title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in sorted(rows):
        if not any((row, rate) in cells for rate in rates):
            continue  # e.g. a method without client state in the personalized table
        label = row[0] if len(partitions) == 1 else f"{row[0]} [{partitions[row[1]]}]"
        texts, counts = [], []
        for rate in rates:
            cell = cells.get((row, rate))
            if cell is None:
                texts.append(DASH)
                continue
            counts.append(cell.n)
            bold = best[rate] is not None and round(cell.mean, 1) == best[rate]
            texts.append(f"**{cell.text()}**" if bold else cell.text())
        seeds = DASH if not counts else str(min(counts))
        if counts and min(counts) != max(counts):
            seeds = f"{min(counts)}–{max(counts)}"
        out.append("| " + " | ".join([label, *texts, seeds]) + " |")
    return [*out, ""]


def _partition_key(run: dict[str, Any]) -> str:
    partition = run.get("partition") or {}
    return ",".join(f"{k}={partition[k]}" for k in sorted(partition))


def _fmt_rate(rate: float | None) -> str:
    return "mixed" if rate is None else f"{rate:g}"
