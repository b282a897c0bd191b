"""Leaderboard figures: the at-a-glance numbers, one panel per section (bench plan), a value
logged per round (PPT's pool size) for the sections whose runs log it, and one critical-difference
diagram per section that can be ranked (drawn by scikit-posthocs on an axes of ours).

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
from fedbench.tracking.board_ranks import Ranking, cd_plot_name, rank_section, section_plot_name
from fedbench.tracking.board_stats import collect
from fedbench.tracking.curves import val_key
from fedbench.tracking.records import atomic_write
from fedbench.tracking.seed_stats import ALPHA

__all__ = ["plot_cd_diagram", "plot_cd_diagrams", "plot_metric_vs_rate", "plot_round_series"]


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


def plot_round_series(
    records: list[dict[str, Any]], path: Path, dataset: str, key: str = POOL_KEY
) -> Path | None:
    """Save ``key`` against the round (seed mean), one panel per section whose runs log it, one line per
    (setting, method): colour by method, line style by setting. None (and nothing written) when no
    run of ``dataset`` logs ``key``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    panels = [
        (s, series) for s in build_sections(board_runs(records, dataset)) if (series := round_series(s, key))
    ]
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
            ax.plot(
                [x for x, _ in points],
                [y for _, y in points],
                marker="o",
                markersize=3,
                color=f"C{methods.index(method) % 10}",
                linestyle=styles[settings.index(setting) % len(styles)],
                label=method if len(settings) == 1 else f"{method}, {setting.label}",
            )
        ax.set_title(section.name)
        ax.set_xlabel("round")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(key.replace("_", " "))
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small")
    fig.suptitle(f"{dataset}: {key.replace('_', ' ')} per round (mean over seeds)")
    return _save(fig, path)


def curves_plot_name(dataset: str, section: str | None) -> str:
    """A section's validation learning-curve plot (``section=None``: every section's)."""
    return section_plot_name(dataset, "curves", section)


def plot_learning_curves(records: list[dict[str, Any]], out_dir: Path, dataset: str) -> dict[str, Path]:
    """One plot per section of ``dataset``: the seed-mean validation value of the board's primary
    metric against the round, one panel per setting, one line per method. {section name: path}."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    runs = board_runs(records, dataset)
    if not runs:
        return {}
    key = val_key(runs, dataset)
    written = {}
    for section in build_sections(runs):
        series = round_series(section, key)
        if not series:
            continue
        drawn_settings, drawn_methods = {t for t, _ in series}, {n for _, n in series}
        settings = [s for s in section.settings if s in drawn_settings]
        methods = [m for m in section.methods if m in drawn_methods]
        cols = min(3, len(settings))
        rows = -(-len(settings) // cols)
        fig = Figure(figsize=(4.6 * cols, 3.4 * rows), layout="constrained")
        FigureCanvasAgg(fig)
        axes = fig.subplots(rows, cols, squeeze=False).ravel()
        for ax, setting in zip(axes, settings, strict=False):
            for method in methods:
                if (setting, method) not in series:
                    continue
                runs_n, means = series[setting, method]
                points = [(i + 1, v) for i, v in enumerate(means) if v is not None]
                ax.plot(
                    [x for x, _ in points],
                    [y for _, y in points],
                    color=f"C{methods.index(method) % 10}",
                    linestyle="-" if methods.index(method) < 10 else "--",
                    linewidth=1.2,
                    label=f"{method} ({runs_n})",
                )
            ax.set_title(setting.label, fontsize="medium")
            ax.set_xlabel("round")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_ylabel(key.replace("_", " "))
            ax.grid(True, alpha=0.3)
        for ax in axes[len(settings) :]:
            ax.set_visible(False)
        axes[0].legend(fontsize="x-small", title="method (seeds)", title_fontsize="x-small")
        fig.suptitle(f"{section.name}: {key} per round, mean over seeds")
        written[section.name] = _save(fig, Path(out_dir) / curves_plot_name(dataset, section.name))
    return written


def plot_cd_diagrams(
    records: list[dict[str, Any]], out_dir: Path, dataset: str, headlines: dict[str, str] | None = None
) -> dict[str, Path]:
    """Draw the critical-difference diagram of every section of ``dataset`` whose ranking has a
    rank test (two methods scored at two settings or more), on its at-a-glance measure
    (``headlines``: section -> test condition, default ``as_train``). Returns {section name: path}."""
    runs = board_runs(records, dataset)
    if not runs:
        return {}
    metric = primary_metric(runs, dataset)
    written = {}
    for section in build_sections(runs):
        headline = (headlines or {}).get(section.name, "as_train")
        ranking = rank_section(section, metric_measure(metric, headline))
        if ranking is not None and ranking.cd is not None:
            title = f"{section.name}: mean rank over {ranking.blocks} settings ({metric}, final {headline})"
            written[section.name] = plot_cd_diagram(
                ranking, Path(out_dir) / cd_plot_name(dataset, section.name), title
            )
    return written


def plot_cd_diagram(ranking: Ranking, path: Path, title: str) -> Path:
    """Save ``ranking``'s critical-difference diagram: mean ranks on an axis (1 = best, left), bars
    joining the methods Nemenyi's test cannot tell apart, and the critical difference above."""
    import pandas as pd
    import scikit_posthocs
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    assert ranking.nemenyi_p is not None and ranking.cd is not None, (
        "a ranking without a rank test has no diagram"
    )
    names = list(ranking.methods)
    fig = Figure(figsize=(7.0, 1.4 + 0.3 * len(names)), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    artists = scikit_posthocs.critical_difference_diagram(
        dict(zip(names, ranking.mean_ranks, strict=True)),
        pd.DataFrame(ranking.nemenyi_p, index=names, columns=names),
        ax=ax,
        alpha=ALPHA,
        label_fmt_left="{label} ({rank:.2f})",
        label_fmt_right="({rank:.2f}) {label}",
        color_palette={n: f"C{i % 10}" for i, n in enumerate(names)},
    )
    for bar in (line for lines in artists["crossbars"] for line in lines):
        # a crossbar visits its methods in set order, which changes with the hash seed, and so would
        # the PNG's bytes: draw it left to right
        xs, ys = bar.get_data()
        bar.set_data(sorted(xs), ys)
    # the critical difference as a bar above the rank axis's labels, from the best rank
    start = min(ranking.mean_ranks)
    ax.plot([start, start + ranking.cd], [1.4, 1.4], color="k", linewidth=2)
    ax.text(
        start + ranking.cd / 2,
        1.6,
        f"CD = {ranking.cd:.2f} (Nemenyi, alpha {ALPHA:.2g})",
        ha="center",
        va="bottom",
        fontsize="small",
    )
    ax.set_ylim(top=2.4)
    ax.set_xlim(0.9, max(len(names), start + ranking.cd) + 0.1)  # the whole rank scale, 1 to k
    ax.set_title(title, fontsize="small")
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
