"""Cluster recovery of the probabilistic prompt matcher on planted scenarios. Run on demand:

    .venv/bin/python benchmarks/matcher_scenarios.py            # the table in docs/matcher.md
    .venv/bin/python benchmarks/matcher_scenarios.py --quick    # a few rows, for a smoke check
    .venv/bin/python benchmarks/matcher_scenarios.py --stress   # rows outside the target
    ... --out docs/matcher-runs/loops5.json   # also keep the figures: docs/matcher.md's tables are
                                            # generated from these files (benchmarks/doc_blocks.py)

Each row is one seeded scenario (fedbench.aggregation.matching_scenarios); each column a matcher
setting, given the prompts the way its caller would give them:
- fixed: FedPrime's aggregator today: prompts divided by their RMS, cost="joint",
  new_cluster_cost = 2 nats/dim * d;
- fixed-raw: the same price on the raw prompts (a caller that does not normalise, e.g. PPT);
- official: cost="official", no price, on the RMS-divided prompts (PFPT's matcher as FedPrime's
  aggregator would call it today);
- official-raw: cost="official", no price, on the raw prompts (PFPT's and FedPrime's code);
- auto: new_cluster_cost="auto" on the raw prompts (cost="joint", standardised internally);
- auto-official: the same with cost="official".
A cell is "recovered K / ARI" against the K true prompts the clients hold; * marks |recovered -
held| > 20% of held. Torch is pinned to one thread. About 2-3 minutes on 2 busy cores with
the defaults; --outer-loops 50 (PPT) costs about ten times as much per row, so pick --blocks.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from fedbench.aggregation.matching_scenarios import Scenario, make_scenario, score_assignments
from fedbench.aggregation.prob_matching import match_prompts

SETTINGS = ("fixed", "fixed-raw", "official", "official-raw", "auto", "auto-official")


def run(setting: str, scenario: Scenario, outer_loops: int, seed: int) -> tuple[int, float]:
    local, d = scenario.clients, scenario.clients[0].shape[1]
    rms = torch.cat(local).double().pow(2).mean().sqrt().item()
    normed = [q / rms for q in local]
    kwargs = {
        "fixed": dict(local=normed, new_cluster_cost=2.0 * d),
        "fixed-raw": dict(local=local, new_cluster_cost=2.0 * d),
        "official": dict(local=normed, cost="official"),
        "official-raw": dict(local=local, cost="official"),
        "auto": dict(local=local, new_cluster_cost="auto"),
        "auto-official": dict(local=local, new_cluster_cost="auto", cost="official"),
    }[setting]
    result = match_prompts(kwargs.pop("local"), outer_loops=outer_loops, seed=seed, **kwargs)
    return len(result.centres), score_assignments(scenario, result.assignments)


def grid(quick: bool, blocks: str | None, stress: bool = False) -> list[dict]:
    """(kind, K, T, per-client count, structure) blocks x noise x scale."""
    every = [
        dict(kind="shared", k=5, n_clients=10),
        dict(kind="shared", k=12, n_clients=5),
        dict(kind="shared", k=20, n_clients=20),
        dict(kind="subsets", k=12, n_clients=5, per_client=(5, 5)),
        dict(kind="subsets", k=25, n_clients=10),
        dict(kind="subsets", k=50, n_clients=20),
        dict(kind="subsets", k=50, n_clients=8, per_client=(5, 10)),
        dict(kind="subsets", k=12, n_clients=5, per_client=(5, 5), common=0.95),
        dict(kind="shared", k=20, n_clients=10, common=0.9, groups=5),
        dict(kind="subsets", k=50, n_clients=10, per_client=(5, 10), common=0.9, groups=10),
    ]
    noises, scales = (0.01, 0.1, 0.3, 0.5), ("init", "unit")
    if stress:  # beyond the target: noise past half the separation; siblings no client holds together
        rows = [
            dict(kind=k, k=n, n_clients=t, noise=r)
            for k, n, t in (("shared", 12, 5), ("subsets", 25, 10))
            for r in (0.7, 1.0)
        ]
        pairs = dict(kind="subsets", k=50, n_clients=10, per_client=(5, 5), common=0.9, groups=25)
        return [dict(r, scale="init") for r in rows] + [
            dict(pairs, noise=r, scale="init") for r in (0.1, 0.4)
        ]
    if quick:
        every, noises, scales = [every[1], every[3]], (0.1, 0.5), ("init",)
    if blocks:
        every = [every[int(i)] for i in blocks.split(",")]
    return [dict(b, noise=r, scale=s) for b in every for r in noises for s in scales]


def measure(specs: list[dict], settings: list[str], outer_loops: int, seed: int) -> dict:
    """Every row's recovered K and ARI per setting, with what it took."""
    rows, start = [], time.perf_counter()
    for spec in specs:
        scenario = make_scenario(**spec, seed=seed)
        cells = {s: list(run(s, scenario, outer_loops, seed)) for s in settings}
        rows.append(
            {
                "scenario": scenario.name,
                "held": scenario.k_held,
                "noise": spec["noise"],
                "spec": spec,
                "cells": cells,
            }
        )
        print(table_row(rows[-1], settings), flush=True)
    return {
        "outer_loops": outer_loops,
        "seed": seed,
        "settings": settings,
        "rows": rows,
        "seconds": round(time.perf_counter() - start),
    }


def _good(row: dict, setting: str) -> bool:
    return abs(row["cells"][setting][0] - row["held"]) <= 0.2 * row["held"]


def table_row(row: dict, settings: list[str]) -> str:
    cells = [
        f"{row['cells'][s][0]}{'' if _good(row, s) else '*'} / {row['cells'][s][1]:.2f}" for s in settings
    ]
    return f"| {row['scenario']} | {row['held']} | " + " | ".join(cells) + " |"


def summary(data: dict) -> list[str]:
    """Per setting: rows within 20% of the held K, overall and at rho < 0.5, and the lowest ARI."""
    settings, rows = data["settings"], data["rows"]
    half = [r for r in rows if r["noise"] < 0.5]
    return [
        "within 20%: " + ", ".join(f"{s} {sum(_good(r, s) for r in rows)}/{len(rows)}" for s in settings),
        "",
        "within 20% at rho < 0.5: "
        + ", ".join(f"{s} {sum(_good(r, s) for r in half)}/{len(half)}" for s in settings),
        "",
        "lowest ARI: " + ", ".join(f"{s} {min(r['cells'][s][1] for r in rows):.2f}" for s in settings),
    ]


def table(data: dict) -> str:
    """The markdown table and its summary lines."""
    settings = data["settings"]
    lines = [
        f"outer_loops={data['outer_loops']} seed={data['seed']}; cells: recovered K / ARI "
        f"(* = off by > 20%); {data['seconds']} s",
        "",
        "| scenario | held K | " + " | ".join(settings) + " |",
        "|---|---|" + "---|" * len(settings),
        *(table_row(r, settings) for r in data["rows"]),
        "",
        *summary(data),
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--stress", action="store_true", help="only the rows outside the target")
    parser.add_argument("--outer-loops", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--settings", default=",".join(SETTINGS))
    parser.add_argument("--blocks", help="comma-separated indices into grid()'s blocks (default: all)")
    parser.add_argument("--out", type=Path, default=None, help="a JSON file for the figures")
    args = parser.parse_args()
    torch.set_num_threads(1)
    settings = args.settings.split(",")
    data = measure(grid(args.quick, args.blocks, args.stress), settings, args.outer_loops, args.seed)
    print()
    print(table(data))
    if args.out is not None:
        from fedbench.safe_io import atomic_write_text

        args.out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(args.out, json.dumps(data, indent=1) + "\n")


if __name__ == "__main__":
    main()
