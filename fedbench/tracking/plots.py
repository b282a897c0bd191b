"""Leaderboard figures: the at-a-glance numbers, one panel per section (bench plan), and a value
logged per round (PPT's pool size) for the sections whose runs log it.

Each panel shows the final ``as_train`` primary metric (×100) of every method at every setting of
its section, at the seed mean with ±1 sample-std error bars. Where the settings differ only in the
missing rate, the x axis is the missing rate and each method is a line; otherwise the settings are
categories and each method a row of markers (lines between unrelated settings would suggest a
trend that is not there). Diverged runs are left out and counted in the legend.

Drawn with matplotlib's Agg canvas on a private ``Figure`` (never ``pyplot``), so it works headless,
does not switch the process-wide backend, and leaks no global figures in long sweeps. matplotlib
is imported inside the function so importing :mod:`fedbench.tracking` stays cheap.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from fedbench.tracking.board_extras import POOL_KEY, round_series
from fedbench.tracking.board_model import Section, board_runs, build_sections, metric_measure, primary_metric
from fedbench.tracking.board_stats import collect
from fedbench.tracking.records import atomic_write

__all__ = ["plot_metric_vs_rate", "plot_round_series"]


def plot_metric_vs_rate(records: list[dict[str, Any]], path: Path, dataset: str) -> Path:
    """Save the leaderboard's PNG for ``dataset``'s ``records``; written atomically, returns ``path``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    runs = board_runs(records, dataset)
    metric = primary_metric(runs, dataset) if runs else "metric"
    sections = build_sections(runs)

    fig = Figure(figsize=(max(6.4, 4.8 * len(sections)), 3.8), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, max(1, len(sections)), squeeze=False)[0]
    methods = sorted({m for section in sections for m in section.methods})
    colors = {m: f"C{i % 10}" for i, m in enumerate(methods)}  # one colour per method across panels
    for ax, section in zip(axes, sections, strict=False):
        _draw_panel(ax, section, metric, colors)
        ax.set_title(section.name)
    if not sections:
        axes[0].text(0.5, 0.5, "no runs", ha="center", va="center", transform=axes[0].transAxes)
    fig.suptitle(f"{dataset}: {metric} ×100 (final round, as_train; mean ± std over seeds)")
    return _save(fig, path)


def plot_round_series(records: list[dict[str, Any]], path: Path, dataset: str, key: str = POOL_KEY) -> Path | None:
    """Save ``key`` against the round (seed mean), one panel per section whose runs log it, one line per
    (setting, method): colour by method, line style by setting. None (and nothing written) when no
    run of ``dataset`` logs ``key``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    panels = [(s, series) for s in build_sections(board_runs(records, dataset)) if (series := round_series(s, key))]
    if not panels:
        return None
    fig = Figure(figsize=(max(6.4, 4.8 * len(panels)), 3.8), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    methods = sorted({m for _, series in panels for _, m in series})
    styles = ["-", "--", ":", "-."]
    for ax, (section, series) in zip(axes, panels, strict=True):
        settings = sorted({s for s, _ in series}, key=section.settings.index)
        for (setting, method), (_, means) in series.items():
            points = [(i + 1, v) for i, v in enumerate(means) if v is not None]
            ax.plot([x for x, _ in points], [y for _, y in points], marker="o", markersize=3,
                    color=f"C{methods.index(method) % 10}", linestyle=styles[settings.index(setting) % len(styles)],
                    label=method if len(settings) == 1 else f"{method}, {setting.label}")
        ax.set_title(section.name)
        ax.set_xlabel("round")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(key.replace("_", " "))
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small")
    fig.suptitle(f"{dataset}: {key.replace('_', ' ')} per round (mean over seeds)")
    return _save(fig, path)


def _save(fig: Any, path: Path) -> Path:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    data = buffer.getvalue()
    return atomic_write(Path(path), lambda fh: fh.write(data))


def _draw_panel(ax: Any, section: Section, metric: str, colors: dict[str, str]) -> None:
    settings = section.settings
    by_rate = len(section.groups()) == 1 and len(settings) > 1 and all(s.rate is not None for s in settings)
    as_train = metric_measure(metric, "as_train")
    width = 0.6 / max(1, len(section.methods))
    for i, method in enumerate(section.methods):
        xs, means, stds, diverged = [], [], [], 0
        for j, setting in enumerate(settings):
            stat = collect(section.cells.get((method, setting), []), as_train)
            if stat is None:
                continue
            diverged += stat.diverged
            if stat.mean is None:
                continue
            xs.append(setting.rate if by_rate else j + (i - (len(section.methods) - 1) / 2) * width)
            means.append(stat.mean)
            stds.append(stat.std or 0.0)  # a single seed draws no error bar
        label = method + (f" ({diverged} diverged)" if diverged else "")
        style = {"color": colors[method]} | ({} if by_rate else {"linestyle": "none"})
        if xs:
            ax.errorbar(xs, means, yerr=stds, marker="o", capsize=3, label=label, **style)
        elif diverged:
            ax.plot([], [], marker="x", linestyle="none", label=label, color=colors[method])

    majority = [float(r["majority_rate"]) for r in section.runs if r.get("majority_rate") is not None]
    if majority:
        level = 100.0 * sum(majority) / len(majority)
        ax.axhline(level, color="grey", linestyle="--", linewidth=1, label="majority class")
    if by_rate:
        ax.set_xlabel("missing rate")
    else:
        ax.set_xticks(range(len(settings)), [s.label.replace(", ", "\n") for s in settings], fontsize="small")
        ax.set_xlim(-0.5, len(settings) - 0.5)
        ax.set_xlabel("setting")
    ax.set_ylabel(f"{metric} ×100")
    ax.grid(True, alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize="small")
