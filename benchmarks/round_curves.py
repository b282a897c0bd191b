"""Choose a board's rounds from validation curves: read the records of long runs (made with
benchmarks/curve_runs.py, or `make bench METHOD=X PROFILE=quick ROUNDS=40 SEEDS=0 RESULTS=runs/curves
...`), print each plan's plateau round per method and setting under the rule of
fedbench/tracking/curves.py, and draw the curves (seed-mean validation value of the board's primary
metric per round) beside them.

    .venv/bin/python benchmarks/round_curves.py --results runs/curves --out runs/curves/plots
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.run_files import run_files  # noqa: E402
from fedbench.tracking.board_model import board_runs  # noqa: E402
from fedbench.tracking.curves import TOLERANCE, WINDOW, plan_rounds, val_key  # noqa: E402
from fedbench.tracking.plots import plot_round_series  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--results", default="runs/curves", help="the long runs' records folder")
    p.add_argument("--dataset", default="emoji")
    p.add_argument("--out", default=None, help="folder for the curve plot (default: no plot)")
    p.add_argument("--window", type=int, default=WINDOW)
    p.add_argument("--tolerance", type=float, default=TOLERANCE)
    ns = p.parse_args(argv)
    records = run_files(Path(ns.results) / ns.dataset)  # plain JSON: committed curves read on any machine
    if not records:
        print(f"round_curves: no {ns.dataset} records under {ns.results}; run the long runs first")
        return 1
    print(
        f"rule: trailing mean over {ns.window} rounds within {ns.tolerance} of its best ({len(records)} runs)"
    )
    for plan, found in plan_rounds(records, ns.dataset, ns.window, ns.tolerance).items():
        chosen = found["rounds"] if found["rounds"] is not None else "not yet (a curve still climbs)"
        print(f"\n{plan}: rounds {chosen}")
        for (setting, method), r in sorted(found["curves"].items(), key=str):
            print(f"  {method:<20} {setting.label}: {'still climbing' if r is None else r}")
    if ns.out:
        key = val_key(board_runs(records, ns.dataset), ns.dataset)
        path = plot_round_series(records, Path(ns.out) / f"{ns.dataset}_val_curves.png", ns.dataset, key)
        print(f"\ncurves: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
