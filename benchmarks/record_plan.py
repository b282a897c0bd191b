"""The board of record's plan, from the committed validation curves (results/curves): each plan's
rounds under the plateau rule (fedbench/tracking/curves.py) and its size (cells x rounds x the
seconds per round the curve runs measured) and how much of it is committed, as markdown tables
for the docs (benchmarks/doc_blocks.py).

    .venv/bin/python benchmarks/record_plan.py            # both tables
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.run_files import run_files  # noqa: E402
from fedbench.tracking.board_stats import table_head, table_row  # noqa: E402

DATASET = "emoji"
PLANS = ("fedavg", "fedprime", "ppt", "fedmvp")  # the four bench plans, by their method


def plan_of(sweep: str) -> str:
    """The plan's method of a bench sweep name (``bench-<method>-<profile>``)."""
    return sweep.split("-", 1)[1].rsplit("-", 1)[0]


def curve_records(curves: Path) -> list[dict]:
    return run_files(curves / DATASET)


def plateaus(runs: list[dict]) -> dict[str, dict]:
    """{plan method: plan_rounds' entry (per-curve plateau rounds, the plan's rounds)} of curve runs."""
    from fedbench.tracking.curves import plan_rounds

    return {plan_of(section): found for section, found in plan_rounds(runs, DATASET).items()}


def rounds_table(curves: Path) -> str:
    """Per plan: its curves' lengths and count, the latest plateau (only once every method of the
    plan has a curve and none still climbs) and the plan's ``record_rounds``."""
    from fedbench.methods.registry import get_method, plan_methods

    runs = curve_records(curves)
    found = plateaus(runs)
    lines = table_head(
        ["plan", "curve rounds", "curves", "latest plateau (method, setting)", "record rounds"]
    )
    for plan in PLANS:
        chosen = get_method(plan).plan.record_rounds
        if plan not in found:
            lines.append(table_row([plan, "–", "none drawn", "–", str(chosen or "not chosen")]))
            continue
        curves_of = found[plan]["curves"]
        lengths = sorted({len(r["rounds"]) for r in runs if plan_of(r["sweep"]) == plan})
        done = {cell: r for cell, r in curves_of.items() if r is not None}
        climbing = [f"{m} ({s.label})" for (s, m), r in curves_of.items() if r is None]
        undrawn = [m for m in plan_methods(plan, ablations=True) if m not in {m for _, m in curves_of}]
        if undrawn:
            latest = "not all drawn: no curve yet for " + ", ".join(undrawn)
        elif climbing:
            latest = "still climbing: " + ", ".join(sorted(climbing))
        else:
            (setting, method), r = max(done.items(), key=lambda kv: (kv[1], kv[0][1]))
            latest = f"{r} ({method}, {setting.label})"
        lines.append(
            table_row(
                [
                    plan,
                    ", ".join(map(str, lengths)),
                    str(len(curves_of)),
                    latest,
                    str(chosen if chosen is not None else "not chosen"),
                ]
            )
        )
    return "\n".join(lines)


def seconds_per_round(runs: list[dict]) -> dict[tuple[str, str], float]:
    """{(plan, method): mean over its curve runs of wall time / rounds} (setup and test included)."""
    per: dict[tuple[str, str], list[float]] = defaultdict(list)
    for r in runs:
        per[plan_of(r["sweep"]), r["method"]].append(r["wall_time_s"] / len(r["rounds"]))
    return {key: sum(v) / len(v) for key, v in per.items()}


def sizing_table(curves: Path) -> str:
    from fedbench.bench_plans import plan_cells
    from fedbench.methods.registry import get_method

    runs = curve_records(curves)  # read once: the speeds and the precisions
    speed = seconds_per_round(runs)
    made_in: dict[str, set] = defaultdict(set)
    for r in runs:
        made_in[plan_of(r["sweep"])].add(r["config"]["train"]["precision"])
    lines = table_head(
        [
            "plan",
            "cells (methods x settings x 5 seeds)",
            "rounds",
            "s per round (curve runs)",
            "CPU-hours",
            "curves' precision",
        ]
    )
    total = 0.0
    for plan in PLANS:
        rounds = get_method(plan).plan.record_rounds
        if rounds is None:
            lines.append(table_row([plan, "–", "not chosen", "–", "–", ", ".join(sorted(made_in[plan]))]))
            continue
        cells = plan_cells(plan, "record")
        missing = sorted({c.method.name for c in cells} - {m for p, m in speed if p == plan})
        if missing:
            lines.append(
                table_row([plan, str(len(cells)), str(rounds), f"no curve for {', '.join(missing)}", "–", ""])
            )
            continue
        seconds = sum(speed[plan, c.method.name] * c.federation.rounds for c in cells)
        total += seconds
        span = sorted(speed[plan, m] for m in {c.method.name for c in cells})
        lines.append(
            table_row(
                [
                    plan,
                    str(len(cells)),
                    str(rounds),
                    f"{span[0]:.1f}-{span[-1]:.1f}",
                    f"{seconds / 3600:.1f}",
                    ", ".join(sorted(made_in[plan])),
                ]
            )
        )
    lines.append(table_row(["all", "", "", "", f"{total / 3600:.1f}", ""]))
    return "\n".join(lines)


def status_table(results: Path) -> str:
    """Per plan: the record cells committed in ``results`` against the cells its plan runs."""
    from fedbench.methods.registry import bench_sweep, get_method, record_cell_count

    done: dict[str, int] = defaultdict(int)
    for rec in run_files(results / DATASET):
        done[rec.get("sweep")] += 1
    lines = table_head(["plan", "board section", "cells finished", "cells in the plan"])
    for plan in PLANS:
        section = bench_sweep(plan, "record")
        total = record_cell_count(plan) if get_method(plan).plan.record_rounds is not None else "–"
        lines.append(table_row([plan, section, str(done[section]), str(total)]))
    return "\n".join(lines)


def cell_key(rec: dict) -> str:
    """A run's cell without its rounds: method, options, missing, partition, seed."""
    cfg = rec["config"]
    return json.dumps([cfg["method"], cfg["missing"], cfg["partition"], cfg["seed"]], sort_keys=True)


TREND_STEP = 10  # the trend table shows the smoothed curve every 10 rounds


def setting_label(rec: dict) -> str:
    """``both@0.5 shards``: a curve's missing type and rate and its partition."""
    cfg = rec["config"]
    return f"{cfg['missing']['type']}@{cfg['missing']['rate']:g} {cfg['partition']['name']}"


def trend_table(curves: Path, plan: str) -> str:
    """Each of ``plan``'s curves: its validation accuracy (×100) smoothed as the plateau rule smooths
    it (the trailing mean over the rule's window), every TREND_STEP rounds, and its plateau round."""
    from fedbench.tracking.curves import WINDOW, plateau_round, trailing_means

    runs = sorted(
        (r for r in curve_records(curves) if plan_of(r["sweep"]) == plan),
        key=lambda r: (len(r["rounds"]), setting_label(r), r["method"]),
    )
    if not runs:
        return f"No {plan} curves are committed."
    marks = list(range(TREND_STEP, max(len(r["rounds"]) for r in runs) + 1, TREND_STEP))
    lines = table_head(["method", "setting", "rounds", *(f"round {m}" for m in marks), "plateau"])
    for rec in runs:
        values = [r["val"]["accuracy"] for r in rec["rounds"]]
        means = trailing_means(values)  # means[i] ends at round i + WINDOW
        smoothed = [f"{100 * means[m - WINDOW]:.1f}" if m <= len(values) else "–" for m in marks]
        plateau = plateau_round(values)
        row = [rec["method"], setting_label(rec), str(len(values)), *smoothed]
        lines.append(table_row([*row, "still climbing" if plateau is None else str(plateau)]))
    return "\n".join(lines)


def check_table(results: Path, curves: Path) -> str:
    """Each curve's cell run at the plan's record rounds against the longer curve itself: the last
    round's validation accuracy of both (×100). A record run at least level with the longer run says
    more rounds would not have helped it (validation only)."""
    from fedbench.methods.registry import bench_sweep

    record = {
        (rec["sweep"], cell_key(rec)): rec
        for rec in run_files(results / DATASET)
        if str(rec.get("sweep", "")).endswith("-record")
    }
    lines = table_head(
        ["plan", "method", "setting", "seed", "rounds: record / curve", "last val: record", "last val: curve"]
    )
    for rec in sorted(curve_records(curves), key=lambda r: (r["sweep"], r["method"])):
        plan = plan_of(rec["sweep"])
        mine = record.get((bench_sweep(plan, "record"), cell_key(rec)))
        if mine is None:
            continue
        missing = rec["config"]["missing"]
        last = [100 * r["rounds"][-1]["val"]["accuracy"] for r in (mine, rec)]
        lines.append(
            table_row(
                [
                    plan,
                    rec["method"],
                    f"{missing['type']}@{missing['rate']:g}",
                    str(rec["seed"]),
                    f"{len(mine['rounds'])} / {len(rec['rounds'])}",
                    f"{last[0]:.1f}",
                    f"{last[1]:.1f}",
                ]
            )
        )
    return "\n".join(lines)


def main() -> int:
    curves = ROOT / "results" / "curves"
    print(rounds_table(curves))
    print()
    print(sizing_table(curves))
    print()
    print(status_table(ROOT / "results"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
