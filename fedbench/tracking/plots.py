"""Leaderboard figure: primary metric against missing rate, one panel per missing-modality setting.

Drawn with matplotlib's Agg canvas on a private ``Figure`` (never ``pyplot``), so it works headless,
does not switch the process-wide backend, and leaks no global figures in long sweeps. matplotlib
is imported inside the function so importing :mod:`fedbench.tracking` stays cheap.
"""

from __future__ import annotations

import io
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

from fedbench.tracking.records import (
    atomic_write,
    dedupe_records,
    metric_value,
    partition_label,
    section_of,
    section_title,
)

__all__ = ["plot_metric_vs_rate"]


def plot_metric_vs_rate(records: list[dict[str, Any]], path: Path, dataset: str) -> Path:
    """Save a PNG of the final ``as_train`` primary metric (×100) against missing rate.

    One line per method (and partition, when a panel mixes partitions) at the seed mean, with
    ±1 sample-std error bars where there are several seeds, and a dashed line at the majority-class rate
    as the floor any method must beat. Written atomically; returns ``path``.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    runs = dedupe_records([r for r in records if r.get("dataset") == dataset])
    metric = str(runs[0].get("metric", "metric")) if runs else "metric"
    sections: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for run in runs:
        sections[section_of(run)].append(run)
    keys = sorted(sections) or [("none", "per_sample")]

    fig = Figure(figsize=(4.5 * len(keys), 3.6), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(keys), squeeze=False)[0]
    for ax, key in zip(axes, keys, strict=True):
        _draw_panel(ax, sections.get(key, []), metric)
        ax.set_title(section_title(key))
    fig.suptitle(f"{dataset}: {metric} (final round, as_train)")

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    data = buffer.getvalue()
    return atomic_write(Path(path), lambda fh: fh.write(data))


def _draw_panel(ax: Any, runs: list[dict[str, Any]], metric: str) -> None:
    if not runs:
        ax.text(0.5, 0.5, "no runs", ha="center", va="center", transform=ax.transAxes)
        return
    several_partitions = len({partition_label(r.get("partition")) for r in runs}) > 1
    series: dict[str, dict[float, list[float]]] = defaultdict(lambda: defaultdict(list))
    for run in runs:
        rate = (run.get("missing") or {}).get("rate")
        value = metric_value(run, metric, "as_train")
        if rate is None or value is None:
            continue
        label = str(run.get("method"))
        if several_partitions:
            label += f" [{partition_label(run.get('partition'))}]"
        series[label][float(rate)].append(100.0 * value)

    for label in sorted(series):
        rates = sorted(series[label])
        means = [_mean(series[label][x]) for x in rates]
        stds = [_sample_std(series[label][x]) for x in rates]
        # error bars rather than a band: a band is invisible where a method has a single rate
        ax.errorbar(rates, means, yerr=stds, marker="o", capsize=3, label=label)

    majority = [float(r["majority_rate"]) for r in runs if r.get("majority_rate") is not None]
    if majority:
        ax.axhline(100.0 * _mean(majority), color="grey", linestyle="--", linewidth=1, label="majority class")
    ax.set_xlabel("missing rate")
    ax.set_ylabel(f"{metric} ×100")
    ax.grid(True, alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize="small")


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def _sample_std(values: list[float]) -> float:
    """Sample std (ddof=1) as in the tables; 0 for a single seed, which draws no error bar."""
    if len(values) < 2:
        return 0.0
    mean = _mean(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
