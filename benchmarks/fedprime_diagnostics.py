"""Plot FedPrime's per-round diagnostics from run records (one PNG per missing type).

    .venv/bin/python benchmarks/fedprime_diagnostics.py                      # results/ -> docs/
    .venv/bin/python benchmarks/fedprime_diagnostics.py --results /tmp/fp-study/runs --seed 0

For each missing type it takes one run (the given seed, default options) of each FedPrime
variant found and draws, per round: validation accuracy; distinct prompts used by samples of
each missing code (intra and inter pools; dashed = prompts used by more than one code); the
inter pool size; and the mean ||W_q - W_q(0)|| / ||W_q(0)|| of the round's clients. The numbers
are what ``FedPrimeAggregator.metadata()`` put in each record's ``rounds`` list.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from fedprime_table import in_study  # noqa: E402  (benchmarks/ is this script's folder)

METHODS = ("fedprime", "fedprime-official", "fed-inter", "fed-intra")
CODES = (("complete", "-"), ("text_missing", "--"), ("image_missing", ":"))
COLOURS = {
    "fedprime": "tab:blue",
    "fedprime-official": "tab:red",
    "fed-inter": "tab:green",
    "fed-intra": "tab:purple",
}


def load_runs(results: Path, seed: int, precision: str = "32-true") -> dict[str, dict[str, dict]]:
    """{missing type: {method: record}} for runs of ``seed`` with the method's default options."""
    out: dict[str, dict[str, dict]] = {}
    for path in sorted((results / "emoji").glob("*.json")):
        record = json.loads(path.read_text())
        cfg = record["config"]
        if (
            cfg["method"]["name"] not in METHODS
            or cfg["seed"] != seed
            or cfg["method"].get("options")
            or not in_study(cfg, precision)
        ):
            continue
        out.setdefault(cfg["missing"]["type"], {})[cfg["method"]["name"]] = record
    return out


def series(record: dict, key: str) -> tuple[list[int], list[float]]:
    rounds = [r for r in record["rounds"] if key in r]
    return [r["round"] for r in rounds], [r[key] for r in rounds]


def plot_type(mtype: str, runs: dict[str, dict], out: Path) -> Path:
    fig, axes = plt.subplots(1, 5, figsize=(22, 4))
    for method, record in sorted(runs.items()):
        colour = COLOURS[method]
        x, y = series(record, "val")
        axes[0].plot(x, [v[record["metric"]] for v in y], color=colour, marker="o", label=method)
        for ax, pool in ((axes[1], "intra"), (axes[2], "inter")):
            for code, style in CODES:
                xs, ys = series(record, f"{pool}_used_{code}")
                if xs:
                    ax.plot(xs, ys, color=colour, linestyle=style, marker=".", label=f"{method}: {code}")
            xs, ys = series(record, f"{pool}_used_all")
            if xs:
                ax.plot(xs, ys, color=colour, linewidth=3, alpha=0.3, label=f"{method}: any code")
        x, y = series(record, "inter_pool_size")
        axes[3].plot(x, y, color=colour, marker="o", label=method)
        for pool, style in (("intra", "-"), ("inter", "--")):
            xs, ys = series(record, f"{pool}_query_drift_rel")
            if xs:
                axes[4].plot(xs, ys, color=colour, linestyle=style, marker=".", label=f"{method}: {pool}")
    titles = (
        "validation accuracy",
        "intra prompts used, per missing code",
        "inter prompts used, per missing code",
        "inter pool size",
        "||W_q - W_q(0)|| / ||W_q(0)||",
    )
    for ax, title in zip(axes, titles, strict=True):
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("round")
        ax.grid(alpha=0.3)
    axes[4].set_yscale("symlog", linthresh=1e-5)
    axes[0].legend(fontsize=8)
    axes[2].legend(fontsize=6, ncol=1)
    axes[4].legend(fontsize=7)
    fig.suptitle(
        f"FedPrime diagnostics, missing {mtype} at 0.7 (heterogeneous clients), seed "
        f"{next(iter(runs.values()))['seed']}"
    )
    fig.tight_layout()
    path = out / f"fedprime_diagnostics_{mtype}.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--results", default="results")
    parser.add_argument("--out", default="docs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--precision", default="32-true", help="the runs' train.precision (the study's: 32-true)"
    )
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    runs = load_runs(Path(args.results), args.seed, args.precision)
    if not runs:
        raise SystemExit(f"no FedPrime records with seed {args.seed} under {args.results}/emoji")
    for mtype in ("text", "image", "both"):
        if mtype in runs:
            print(plot_type(mtype, runs[mtype], out))


if __name__ == "__main__":
    main()
