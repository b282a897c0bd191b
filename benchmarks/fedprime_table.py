"""The FedPrime-board tables of docs/fedprime.md, from run records.

    .venv/bin/python benchmarks/fedprime_table.py --results /tmp/fp-study/runs > /tmp/tables.md

For each missing type: one row per method (default options only; ``--options`` also lists runs
with non-default options, labelled by them), the final test accuracy per condition and the
validation-selected round's as_train accuracy, mean ± sample std over seeds (the seed count in
the last column); then the per-round diagnostics of the FedPrime variants averaged over rounds
and seeds. Test numbers are reported, never used to choose anything; the validation columns
(``val last``, ``val best``) are what defaults were chosen on.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: benchmarks/ is a package of the repository root
    sys.path.insert(0, str(ROOT))

from benchmarks.run_files import run_files  # noqa: E402

ORDER = (
    "fedprime",
    "fedprime-official",
    "cyclic",
    "fedavg",
    "fedprox",
    "fedmsplit",
    "fed-inter",
    "fed-intra",
)
CONDITIONS = ("as_train", "both_missing", "complete", "text_only", "image_only")
DIAGNOSTICS = (
    "inter_pool_size",
    "intra_used_all",
    "intra_used_shared",
    "intra_used_per_client",
    "inter_used_all",
    "inter_used_shared",
    "inter_used_per_client",
    "intra_query_drift_rel",
    "inter_query_drift_rel",
)


def label_of(cfg: dict) -> str:
    opts = cfg["method"].get("options") or {}
    return cfg["method"]["name"] + ("" if not opts else " " + json.dumps(opts, sort_keys=True))


def in_study(cfg: dict, precision: str) -> bool:
    """A run of the study's protocol (FedPrime's: heterogeneous clients, rate 0.7) in ``precision``;
    a results folder may hold other benches' runs and the quick profile's other precision."""
    return (
        cfg["missing"]["protocol"] == "heterogeneous"
        and cfg["missing"]["rate"] == 0.7
        and cfg["train"]["precision"] == precision
    )


def load(results: Path, with_options: bool, precision: str = "32-true") -> dict[str, dict[str, list[dict]]]:
    """{missing type: {label: [records]}}."""
    out: dict[str, dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for path in sorted((results / "emoji").glob("*.json")):
        rec = json.loads(path.read_text())
        cfg = rec["config"]
        if (
            rec.get("status", "ok") != "ok"
            or (cfg["method"].get("options") and not with_options)
            or not in_study(cfg, precision)
        ):
            continue
        out[cfg["missing"]["type"]][label_of(cfg)].append(rec)
    return out


def cell(values: list[float], scale: float = 100.0, digits: int = 1) -> str:
    if not values:
        return "–"
    v = np.asarray(values, dtype=float) * scale
    return f"{v.mean():.{digits}f} ± {v.std(ddof=1):.{digits}f}" if len(v) > 1 else f"{v.mean():.{digits}f}"


def sort_key(label: str) -> tuple[int, str]:
    name = label.split(" ")[0]
    return (ORDER.index(name) if name in ORDER else len(ORDER), label)


def accuracy_table(runs: dict[str, list[dict]]) -> list[str]:
    head = ["method", *CONDITIONS, "selected as_train", "val last", "val best", "seeds"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label in sorted(runs, key=sort_key):
        recs = runs[label]
        metric = recs[0]["metric"]
        row = [label.replace("|", "/")]
        row += [cell([r["final"][c][metric] for r in recs]) for c in CONDITIONS]
        row.append(cell([r["selected"]["metrics"]["as_train"][metric] for r in recs]))
        row.append(cell([r["rounds"][-1]["val"][metric] for r in recs]))
        row.append(cell([max(x["val"][metric] for x in r["rounds"]) for r in recs]))
        row.append(str(len(recs)))
        lines.append("| " + " | ".join(row) + " |")
    return lines


def diagnostics_table(runs: dict[str, list[dict]]) -> list[str]:
    labels = [
        lab
        for lab in sorted(runs, key=sort_key)
        if any("inter_pool_size" in r["rounds"][0] or "intra_used_all" in r["rounds"][0] for r in runs[lab])
    ]
    if not labels:
        return []
    lines = ["| method | " + " | ".join(DIAGNOSTICS) + " |", "|" + "---|" * (len(DIAGNOSTICS) + 1)]
    for label in labels:
        row = [label.replace("|", "/")]
        for key in DIAGNOSTICS:
            per_run = [
                np.mean([x[key] for x in r["rounds"] if key in x])
                for r in runs[label]
                if any(key in x for x in r["rounds"])
            ]
            rel = key.endswith("_rel")
            row.append(
                f"{np.mean(per_run):.1e}" if rel and per_run else cell(per_run, 1.0, 1) if per_run else "–"
            )
        lines.append("| " + " | ".join(row) + " |")
    return lines


def load_sweep(results: Path, sweep: str) -> dict[str, dict[str, list[dict]]]:
    """{missing type: {method: [records]}} of one bench sweep's finished runs (its board section),
    default options only, as the board shows them."""
    out: dict[str, dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for rec in run_files(results / "emoji", sweep):
        out[rec["config"]["missing"]["type"]][label_of(rec["config"])].append(rec)
    return out


def render(data: dict[str, dict[str, list[dict]]], rate: float = 0.7) -> str:
    """One accuracy table (and the FedPrime variants' diagnostics) per missing type."""
    out: list[str] = []
    for mtype in ("text", "image", "both"):
        if mtype not in data:
            continue
        out += [
            f"### Missing {mtype} at {rate}: final test accuracy ×100 per condition, mean ± std over seeds",
            "",
            *accuracy_table(data[mtype]),
        ]
        diag = diagnostics_table(data[mtype])
        if diag:
            out += [
                "",
                f"Diagnostics (missing {mtype}), per-round values averaged over rounds, then mean ± std "
                "over seeds:",
                "",
                *diag,
            ]
        out.append("")
    return "\n".join(out).strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--results", default="results")
    parser.add_argument("--options", action="store_true", help="also list runs with non-default options")
    parser.add_argument(
        "--precision", default="32-true", help="the runs' train.precision (the study's: 32-true)"
    )
    parser.add_argument("--sweep", default=None, help="one bench sweep's runs (e.g. bench-fedprime-record)")
    args = parser.parse_args()
    if args.sweep:
        data = load_sweep(Path(args.results), args.sweep)
    else:
        data = load(Path(args.results), args.options, args.precision)
    print(render(data))


if __name__ == "__main__":
    main()
