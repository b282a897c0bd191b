"""The measured tables of docs/ppt.md and docs/fedmvp.md, from one bench sweep's committed records
(benchmarks/doc_blocks.py: ``ppt-tables SWEEP``, ``fedmvp-tables SWEEP``).

PPT: the prompt pool's size and use per round (the server's matching sets the size), PPT and
``ppt-official`` against FedAvg-PT. FedMVP: how far the CKA aggregation weights are from uniform,
what the retrieval completion recovers, and FedMVP against its sample-count twin and its ablations.
Paired differences are per seed at the same setting (method - other, points ×100).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from benchmarks.run_files import run_files
from fedbench.tracking.board_stats import table_head, table_row

RESULTS = Path(__file__).resolve().parent.parent / "results"


def sweep_runs(sweep: str, results: Path = RESULTS) -> list[dict]:
    runs = run_files(results / "emoji", sweep)
    if not runs:
        raise SystemExit(f"method_pages: no committed {sweep} runs in {results}/emoji")
    return runs


def setting(rec: dict) -> str:
    """The cell's setting as the board names it: missing rate, partition (and its alpha)."""
    p = rec["config"]["partition"]
    part = p["name"] + (f" alpha={p['alpha']:g}" if p["name"] == "dirichlet" else "")
    return f"{rec['config']['missing']['type']}@{rec['config']['missing']['rate']:g}, {part}"


def by_cell(runs: list[dict]) -> dict[tuple[str, str], dict[int, dict]]:
    """{(setting, method): {seed: record}} (default method options only)."""
    out: dict[tuple[str, str], dict[int, dict]] = defaultdict(dict)
    for r in runs:
        out[setting(r), r["method"]][r["seed"]] = r
    return out


def mean_std(values: list[float], digits: int = 1) -> str:
    if not values:
        return "–"
    v = np.asarray(values, dtype=float)
    return f"{v.mean():.{digits}f} ± {v.std(ddof=1):.{digits}f}" if len(v) > 1 else f"{v.mean():.{digits}f}"


def across(a: dict, b: dict, at: str, method_a: str, method_b: str, condition: str, key=None) -> str:
    """Mean ± std over the seeds both ran of (a's method_a - b's method_b) at setting ``at``: on
    ``condition``'s accuracy in points ×100, or on ``key(record)``; (n) = the seeds paired."""
    ra, rb = a.get((at, method_a), {}), b.get((at, method_b), {})

    def value(rec):
        return key(rec) if key else 100 * rec["final"][condition]["accuracy"]

    diffs = [value(ra[s]) - value(rb[s]) for s in ra if s in rb]
    return f"{mean_std(diffs)} ({len(diffs)})" if diffs else "–"


def paired(cells, at: str, method: str, other: str, condition: str) -> str:
    """``across`` within one sweep's cells: (method - other) on ``condition``."""
    return across(cells, cells, at, method, other, condition)


def table(head: list[str], rows: list[list[str]]) -> list[str]:
    return [*table_head(head), *map(table_row, rows)]


def caption(runs: list[dict], sweep: str) -> str:
    seeds = sorted({r["seed"] for r in runs})
    rounds = sorted({r["config"]["federation"]["rounds"] for r in runs})
    precision = sorted({r["config"]["train"]["precision"] for r in runs})
    return (
        f"From the committed `{sweep}` runs: seeds {', '.join(map(str, seeds))}, "
        f"{'/'.join(map(str, rounds))} rounds, {'/'.join(precision)}."
    )


def ppt_tables(sweep: str, results: Path = RESULTS) -> str:
    runs = sweep_runs(sweep, results)
    cells = by_cell(runs)
    settings = sorted({s for s, _ in cells})
    out = [
        caption(runs, sweep),
        "",
        "**Pool size per round** (mean over seeds; round 0 is the initial 20):",
        "",
    ]
    rounds = max(len(r["rounds"]) for r in runs)
    shown = sorted({0, 1, 2, 3, rounds // 2, rounds - 1})
    rows = []
    for at in settings:
        for method in ("ppt", "ppt-official"):
            recs = list(cells.get((at, method), {}).values())
            if not recs:
                continue
            sizes = [np.mean([r["rounds"][i]["pool_size"] for r in recs]) for i in shown]
            used = np.mean([np.mean([x["pool_used"] for x in r["rounds"]]) for r in recs])
            rows.append([at, method, *(f"{v:.1f}" for v in sizes), f"{used:.1f}"])
    out += table(["setting", "method", *(f"r{i + 1}" for i in shown), "used, mean over rounds"], rows)
    out += ["", "**Against FedAvg-PT** (final `as_train` accuracy, paired by seed, points ×100 (seeds)):", ""]
    rows = []
    for at in settings:
        ref = [100 * r["final"]["as_train"]["accuracy"] for r in cells.get((at, "fedavg-pt"), {}).values()]
        rows.append(
            [
                at,
                mean_std(ref),
                paired(cells, at, "ppt", "fedavg-pt", "as_train"),
                paired(cells, at, "ppt-official", "fedavg-pt", "as_train"),
                paired(cells, at, "ppt", "ppt-official", "as_train"),
            ]
        )
    out += table(
        ["setting", "fedavg-pt", "ppt - fedavg-pt", "ppt-official - fedavg-pt", "ppt - ppt-official"], rows
    )
    return "\n".join(out)


def weight_spread(rec: dict) -> tuple[float, float, float]:
    """Mean over rounds of: the largest over the smallest aggregation weight, the weights' L1
    distance from uniform (sum |w - 1/k|), and the mean off-diagonal CKA."""
    ratios, l1s, ckas = [], [], []
    for x in rec["rounds"]:
        w = np.asarray(x.get("aggregation_weights") or [], dtype=float)
        if len(w) < 2:
            continue
        ratios.append(w.max() / w.min() if w.min() > 0 else float("inf"))
        l1s.append(np.abs(w - 1 / len(w)).sum())
        if "cka" in x:
            c = np.asarray(x["cka"], dtype=float)
            ckas.append(c[~np.eye(len(c), dtype=bool)].mean())
    return float(np.mean(ratios)), float(np.mean(l1s)), float(np.mean(ckas)) if ckas else float("nan")


def fedmvp_tables(sweep: str, results: Path = RESULTS) -> str:
    runs = sweep_runs(sweep, results)
    cells = by_cell(runs)
    settings = sorted({s for s, _ in cells})
    out = [caption(runs, sweep), "", "**Aggregation weights** (mean over rounds, then over seeds):", ""]
    rows = []
    for at in settings:
        spread = {
            m: [weight_spread(r) for r in cells.get((at, m), {}).values()]
            for m in ("fedmvp", "fedmvp-fedavg")
        }
        row = [at]
        for method in ("fedmvp", "fedmvp-fedavg"):
            row += [mean_std([s[0] for s in spread[method]], 2), mean_std([s[1] for s in spread[method]], 3)]
        row.append(mean_std([s[2] for s in spread["fedmvp"]], 2))
        row.append(paired(cells, at, "fedmvp", "fedmvp-fedavg", "complete"))
        rows.append(row)
    out += table(
        [
            "setting",
            "fedmvp max/min w",
            "fedmvp L1 from uniform",
            "fedmvp-fedavg max/min w",
            "fedmvp-fedavg L1 from uniform",
            "mean CKA between clients",
            "fedmvp - fedmvp-fedavg (complete)",
        ],
        rows,
    )
    out += [
        "",
        "**Completion** (fedmvp's records; the filled-in modality against the held-back true one, ×100):",
        "",
    ]
    keys = ("label_agreement", "cosine", "partner_top1")
    rows_of: dict[tuple[str, ...], list[str]] = defaultdict(list)  # identical rows share one line
    for at in settings:
        recs = list(cells.get((at, "fedmvp"), {}).values())
        if recs:
            comp = [r["rounds"][0]["completion"] for r in recs]
            row = tuple(
                mean_std([100 * c[f"{side}/{k}"] for c in comp]) for side in ("text", "image") for k in keys
            )
            rows_of[row].append(at)
    rows = [
        ["every setting" if len(ats) == len(settings) else "; ".join(ats), *row]
        for row, ats in rows_of.items()
    ]
    out += table(
        ["setting", *(f"{side} {k.replace('_', ' ')}" for side in ("text", "image") for k in keys)], rows
    )
    out += [
        "",
        "**FedMVP against its ablations and the baselines** (final `complete` accuracy, paired by seed):",
        "",
    ]
    others = ("fedmvp-nomcm", "fedmvp-noram", "fedavg", "fedprox")
    rows = [[at, *(paired(cells, at, "fedmvp", o, "complete") for o in others)] for at in settings]
    out += table(["setting", *(f"fedmvp - {o}" for o in others)], rows)
    return "\n".join(out)


PROBES = RESULTS / "probes"


def probe_cells(probe: str, probes: Path = PROBES) -> dict[tuple[str, str], dict[int, dict]]:
    """{(setting, method): {seed: record}} of one probe sweep (benchmarks/probes.py)."""
    return by_cell(sweep_runs(f"probe-{probe}", probes))


def last_val(rec: dict) -> float:
    return 100 * rec["rounds"][-1]["val"][rec["metric"]]


def mean_pool(rec: dict) -> float:
    return float(np.mean([x["pool_size"] for x in rec["rounds"]]))


def probe_intro(base: dict, where: str, units: str) -> tuple[list[str], list[str]]:
    """A probe table's settings and its opening line (the base sweep's seeds, what it measures)."""
    seeds = sorted({s for cell in base.values() for s in cell})
    line = (
        f"{where}, seeds {', '.join(map(str, seeds))} (`results/probes`): mean ± std over seeds of the "
        f"paired difference ({units}; seeds paired in brackets):"
    )
    return sorted({s for s, _ in base}), [line, ""]


def ppt_probes(probes: Path = PROBES) -> str:
    base, push, bare = (probe_cells(p, probes) for p in ("ppt-base", "ppt-push", "ppt-no-prompts"))
    settings, out = probe_intro(base, "Quick settings", "accuracy in points ×100, pool size in prompts")
    rows = []
    for at in settings:
        rows.append(
            [
                at,
                across(push, base, at, "ppt", "ppt", "as_train"),
                across(push, base, at, "ppt", "ppt", "", last_val),
                across(push, base, at, "ppt", "ppt", "", mean_pool),
                across(base, bare, at, "fedavg-pt", "fedavg-pt", "as_train"),
                across(base, bare, at, "ppt", "fedavg-pt", "as_train"),
                mean_std(
                    [
                        100 * r["final"]["as_train"]["accuracy"]
                        for r in bare.get((at, "fedavg-pt"), {}).values()
                    ]
                ),
            ]
        )
    out += table(
        [
            "setting",
            "push - pull, test",
            "push - pull, last val",
            "push - pull, pool size",
            "fedavg-pt - no prompts, test",
            "ppt - no prompts, test",
            "no prompts (head alone), test",
        ],
        rows,
    )
    return "\n".join(out)


def fedmvp_probes(probes: Path = PROBES) -> str:
    base, flat = (probe_cells(p, probes) for p in ("fedmvp-base", "fedmvp-no-joint-layers"))
    settings, out = probe_intro(base, "Quick settings at missing rate 0.5", "points ×100")
    rows = []
    for at in settings:
        spread = [weight_spread(r) for r in base.get((at, "fedmvp"), {}).values()]
        rows.append(
            [
                at,
                across(base, flat, at, "fedmvp", "fedmvp", "complete"),
                across(base, flat, at, "fedmvp", "fedmvp", "as_train"),
                across(base, base, at, "fedmvp", "fedmvp-fedavg", "complete"),
                mean_std([s[1] for s in spread], 3),
            ]
        )
    out += table(
        [
            "setting",
            "1 joint layer - none, complete",
            "1 joint layer - none, as_train",
            "CKA - sample-count weights, complete",
            "CKA weights' L1 from uniform",
        ],
        rows,
    )
    return "\n".join(out)
