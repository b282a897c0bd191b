"""The board's detail tables: per setting group, one row per (rate, method) with every test
condition and the extra measures as columns, mean ± std over seeds, bold where the paired CI to the
section's reference lies above zero."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fedbench.batch import TEST_CONDITIONS
from fedbench.tracking.board_extras import COMPLETION_HELP, completion_columns
from fedbench.tracking.board_model import Section, Setting, bytes_up_mb, metric_measure
from fedbench.tracking.board_paired import ahead_at
from fedbench.tracking.board_stats import cell_text, collect, table_head, table_row
from fedbench.tracking.records import is_diverged

SELECTED, PERSONALIZED, UPLOAD, SEEDS = "val-selected", "personalized", "MB up/round", "seeds"
COLUMN_HELP = {
    SELECTED: "`as_train` at the round with the best validation score (the test set never picks a round)",
    PERSONALIZED: "each client's own model on the test set reweighted to its labels, mean over clients",
    UPLOAD: "MB all sampled clients sent up per round, mean over rounds and seeds",
    SEEDS: "runs per cell (finished + diverged)",
}
Column = tuple[str, Callable[[dict[str, Any]], float | None]]


def details_block(section: Section, metric: str, reference: str | None) -> list[str]:
    return [
        line
        for title, settings in section.groups()
        for line in _detail(section, title, settings, metric, reference)
    ]


def _detail(
    section: Section, title: str, settings: list[Setting], metric: str, reference: str | None
) -> list[str]:
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
    # fewer bytes is not "ahead"; completion quality describes the input, not the result
    bold = {
        (s, name): ahead_at(section, reference, value, s)
        for name, value in columns
        if name != UPLOAD and name not in COMPLETION_HELP
        for s in settings
    }
    for setting, method in rows:
        runs = section.cells[method, setting]
        diverged = sum(is_diverged(r) for r in runs)  # said once, in the seeds column
        cells = [
            cell_text(
                stats[setting, method, name],
                method in bold.get((setting, name), ()),
                "std" if name != UPLOAD else None,
                diverged,
            )
            for name, _ in columns
        ]
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
