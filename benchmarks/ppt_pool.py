"""PPT's prompt pool over long runs (docs/ppt.md §4): its size per round from committed records,
and the geometry of one global pool taken from a run's checkpoint.

    .venv/bin/python benchmarks/ppt_pool.py CHECKPOINT --out docs/ppt-runs/pool-state.json \\
        --command "python benchmarks/curve_runs.py ppt ... --seeds 1"

The checkpoint is a signed fedbench file (``results/.../checkpoints/RUN.pt``, written after every
round of a run in progress), so it opens only on the machine whose key made it; the measurement
is committed as JSON and the command that made the run is recorded beside it.

What the geometry says: the matcher runs on standardised prompts, (x - mean) / rms with one scalar
rms for the whole pool (fedbench/aggregation/prob_matching.py), and its fixed price for a new
prompt is in those units. ``rms_about_mean`` against ``init_rms`` shows how far the pool has
collapsed onto one vector (the row norm against the rms: how much of each prompt is that common
vector), and the nearest-neighbour distances show how close its rows are in the matcher's units.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.run_files import run_files  # noqa: E402
from fedbench.tracking.board_stats import table_head, table_row  # noqa: E402

EVERY = 10  # the trajectory table's round step
SWEEP, DATASET, PARTITION = "bench-ppt-quick", "emoji", "imbalanced"
FOLDERS = ("curves", "ppt-recipe", "ppt-drift")  # results/ folders holding long PPT runs


def pool_geometry(pool) -> dict:
    """Scale and spread of a pool [m, d] (float64): the matcher's standardisation unit (rms of the
    rows about their mean), the mean row norm, the mean cosine over distinct pairs of rows, and the
    10/50/90% quantiles of each row's nearest-neighbour distance in standardised units per
    dimension (Euclidean distance / sqrt(d))."""
    import torch

    p = pool.double()
    m, d = p.shape
    shift = p.mean(0)
    rms = float((p - shift).pow(2).mean().sqrt())
    unit = (p - shift) / max(rms, 1e-300)
    dist = torch.cdist(unit, unit) / math.sqrt(d)
    dist.fill_diagonal_(float("inf"))
    nearest = dist.min(1).values
    direction = torch.nn.functional.normalize(p, dim=1)
    cos = direction @ direction.T
    pairs = m * (m - 1)
    q = torch.quantile(nearest, torch.tensor([0.1, 0.5, 0.9], dtype=torch.float64)).tolist()
    return {
        "rows": m,
        "dim": d,
        "rms_about_mean": rms,
        "mean_row_norm": float(p.norm(dim=1).mean()),
        "mean_pair_cosine": float((cos.sum() - cos.diagonal().sum()) / pairs) if pairs else None,
        "nearest_q10_q50_q90": q,
    }


def measure(checkpoint: Path, command: str) -> dict:
    """The pool geometry of a checkpoint's global state, its history's pool sizes and the PFPT init
    scale for its width (U(-v, v): rms v / sqrt(3), row norm about v * sqrt(d / 3))."""
    from fedbench.methods.ppt.prompted import prompt_init_bound
    from fedbench.safe_io import load_sealed

    ck = load_sealed(checkpoint)
    if "pool" not in ck.get("global_state", {}):
        raise ValueError("its global state has no prompt pool: it is not a ppt run's checkpoint")
    geometry = pool_geometry(ck["global_state"]["pool"])
    bound = prompt_init_bound(geometry["dim"])
    history = [
        {k: r[k] for k in ("round", "pool_size", "pool_used", "lr", "train_loss")}
        | {"val": r["val"]["accuracy"]}
        for r in ck["history"]
    ]
    return {
        "run_id": ck["run_id"],
        "after_round": ck["next_round"],
        "elapsed_s": ck["elapsed_s"],
        "command": command,
        "init_rms": bound / math.sqrt(3),
        "init_row_norm": bound * math.sqrt(geometry["dim"] / 3),
        **geometry,
        "history": history,
    }


def state_table(state: dict) -> str:
    """The measured geometry beside the init scale, as markdown."""
    from fedbench.methods.ppt.config import PPTOptions

    q10, q50, q90 = state["nearest_q10_q50_q90"]
    lines = table_head(["quantity", "at init (PFPT's U(-v, v))", f"after round {state['after_round']}"])
    lines += [
        table_row(["prompts in the pool", str(PPTOptions.pool_size), str(state["rows"])]),
        table_row(
            [
                "rms about the pool's mean (the matcher's unit)",
                f"{state['init_rms']:.4f}",
                f"{state['rms_about_mean']:.4f}",
            ]
        ),
        table_row(["mean row norm", f"{state['init_row_norm']:.3f}", f"{state['mean_row_norm']:.3f}"]),
        table_row(["mean cosine between two prompts", "about 0", f"{state['mean_pair_cosine']:.4f}"]),
        table_row(
            [
                "nearest other prompt, standardised units per dim (10/50/90%)",
                "",
                f"{q10:.2f} / {q50:.2f} / {q90:.2f}",
            ]
        ),
    ]
    return "\n".join(lines)


def _series(rounds: list[dict]) -> tuple[list, int, int, int, float, float]:
    """Pool sizes, the peak's round and size, the most rows used in a round, and the best and last
    validation accuracy x100 smoothed as the rounds rule smooths it (5-round trailing mean)."""
    from fedbench.tracking.curves import trailing_means

    sizes = [r.get("pool_size") for r in rounds]
    peak = max(range(len(sizes)), key=lambda i: sizes[i])
    used = max(r.get("pool_used") or 0 for r in rounds)
    val = [r["val"]["accuracy"] if isinstance(r["val"], dict) else r["val"] for r in rounds]
    smooth = [100 * v for v in trailing_means(val) if v is not None]
    return sizes, peak + 1, sizes[peak], used, max(smooth), smooth[-1]


def recipe_label(config: dict) -> str:
    """``0.005 linear``, then each method option the run set (``0.005 linear, new_centre=drift``)."""
    train = config["train"]
    options = (config.get("method") or {}).get("options") or {}
    return ", ".join(
        [f"{train['lr']:g} {train['lr_schedule']}", *(f"{k}={v}" for k, v in sorted(options.items()))]
    )


def trajectory_rows(results: Path, state: dict | None) -> list[tuple]:
    """(source, lr schedule, seed, rounds, pool sizes per round, wall seconds or None) of every
    committed ``ppt`` curve on the imbalanced partition, and of the checkpoint's history unless
    its run has since been recorded in full."""
    rows, recorded = [], set()
    for folder in FOLDERS:
        for rec in run_files(results / folder / DATASET, SWEEP):
            if rec["method"] != "ppt" or rec["config"]["partition"]["name"] != PARTITION:
                continue
            label = recipe_label(rec["config"])
            rows.append((f"results/{folder}", label, rec["seed"], rec["rounds"], rec.get("wall_time_s")))
            recorded.add(rec.get("run_id"))
    rows.sort(key=lambda r: (r[1], r[2], r[0]))
    if state is not None and state["run_id"] not in recorded:
        label = f"{state['history'][0]['lr']:g} linear"
        where = f"checkpoint after round {state['after_round']}"
        rows.append((where, label, state["seed"], state["history"], state["elapsed_s"]))
    return rows


def trajectory_table(results: Path, state: dict | None) -> str:
    """Pool size every EVERY rounds, its peak (round), the most rows used in one round, the best and
    last smoothed validation accuracy, wall time."""
    rows = trajectory_rows(results, state)
    longest = max((len(r[3]) for r in rows), default=0)
    marks = list(range(EVERY, longest + 1, EVERY))
    lines = table_head(
        ["recipe", "seed", "source", *[f"r{k}" for k in marks], "peak (round)", "most used"]
        + ["val best", "val last", "wall time"]
    )
    for source, label, seed, rounds, wall in rows:
        sizes, peak_round, peak, used, best, last = _series(rounds)
        at = [str(sizes[k - 1]) if k <= len(sizes) else "–" for k in marks]
        wall_word = "–" if wall is None else f"{wall / 60:.0f} min"
        lines.append(
            table_row(
                [label, str(seed), source, *at, f"{peak} ({peak_round})", str(used)]
                + [f"{best:.1f}", f"{last:.1f}", wall_word]
            )
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--command", required=True, help="the command that made the run")
    ap.add_argument("--seed", type=int, required=True, help="the run's seed (for the table)")
    ns = ap.parse_args(argv)
    from fedbench.safe_io import UnsafeOrCorruptFile

    try:
        state = measure(ns.checkpoint, ns.command)
    except (OSError, UnsafeOrCorruptFile, ValueError) as err:
        print(f"ppt_pool: cannot read {ns.checkpoint}: {err}", file=sys.stderr)
        return 2
    state["seed"] = ns.seed
    ns.out.parent.mkdir(parents=True, exist_ok=True)
    ns.out.write_text(json.dumps(state, indent=1) + "\n")
    print(f"ppt_pool: wrote {ns.out} ({state['rows']} prompts after round {state['after_round']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
