"""PPT's global pool size per round, for the leaderboard: a table and a plot from run records.

PFPT tracks the number of summarising prompts over the rounds (its CIFAR-100 figure: the pool
shrinks more slowly at lower alpha), because the matcher decides it: a pool that grows with
clients x prompts means the matcher is not merging, one stuck at kappa means retrieval collapsed
onto the same prompts. ``PPTAggregator.metadata()`` puts ``pool_size`` into every round of a
record; these functions read it back. They work on any per-round numeric key, so they belong in
fedbench.tracking eventually; they live here until the leaderboard calls them.
"""

from __future__ import annotations

import io
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

KEY = "pool_size"


def _partition(record: dict[str, Any]) -> str:
    part = record.get("partition") or {}
    name = str(part.get("name", "?"))
    return f"{name}(alpha={part.get('alpha'):g})" if name == "dirichlet" and part.get("alpha") is not None else name


def round_series(records: list[dict[str, Any]], key: str = KEY) -> dict[tuple[str, str], list[list[float]]]:
    """{(method, partition): one list per run of ``key`` per round}, for runs that logged ``key``."""
    out: dict[tuple[str, str], list[list[float]]] = defaultdict(list)
    for record in records:
        values = [e.get(key) for e in record.get("rounds") or []]
        if values and all(isinstance(v, int | float) for v in values):
            out[str(record.get("method")), _partition(record)].append([float(v) for v in values])
    return dict(sorted(out.items()))


def _mean_by_round(runs: list[list[float]]) -> np.ndarray:
    """Mean over runs per round, over the rounds every run reached."""
    n = min(len(r) for r in runs)
    return np.mean([r[:n] for r in runs], axis=0)


def series_table(records: list[dict[str, Any]], key: str = KEY) -> list[str]:
    """Markdown: one row per (method, partition) with the seed-mean ``key`` at every round."""
    series = round_series(records, key)
    if not series:
        return []
    rounds = max(len(_mean_by_round(runs)) for runs in series.values())
    out = [f"| method | partition | runs | {key} by round (1..{rounds}, mean over runs) |", "|---|---|---|---|"]
    for (method, partition), runs in series.items():
        means = " ".join(f"{v:.0f}" if float(v).is_integer() else f"{v:.1f}" for v in _mean_by_round(runs))
        out.append(f"| {method} | {partition} | {len(runs)} | {means} |")
    return out


def plot_series(records: list[dict[str, Any]], path: Path, key: str = KEY, title: str = "global prompt pool size") -> Path | None:
    """PNG: ``key`` against the round, one line per (method, partition), seed mean; None if no run
    logged ``key``. Agg canvas on a private Figure, written atomically, as tracking/plots.py."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from fedbench.tracking.records import atomic_write

    series = round_series(records, key)
    if not series:
        return None
    fig = Figure(figsize=(6.4, 3.8), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    styles = ["-", "--", ":", "-."]
    partitions = sorted({p for _, p in series})
    methods = sorted({m for m, _ in series})
    for (method, partition), runs in series.items():
        means = _mean_by_round(runs)
        ax.plot(np.arange(1, len(means) + 1), means, marker="o", color=f"C{methods.index(method) % 10}",
                linestyle=styles[partitions.index(partition) % len(styles)], label=f"{method}, {partition}")
    ax.set_xlabel("round")
    ax.set_ylabel(key.replace("_", " "))
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    data = buffer.getvalue()
    return atomic_write(Path(path), lambda fh: fh.write(data))
