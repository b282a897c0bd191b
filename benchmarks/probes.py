"""Probe runs behind docs/ppt.md and docs/fedmvp.md: a plan's quick cells with one option changed,
on seeds 0-2, beside the same cells unchanged, recorded under ``results/probes`` (not on the board;
each probe is its own sweep, ``probe-<name>``). Runs resume and recorded cells are skipped.

    .venv/bin/python benchmarks/probes.py ppt-base ppt-push ppt-no-prompts     # about 20 min on 1 core
    .venv/bin/python benchmarks/probes.py fedmvp-base fedmvp-no-joint-layers
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

OUT = "results/probes"
SEEDS = [0, 1, 2]
# name: (the plan, its missing rates (None: the plan's), {method: options set on top of the plan's})
PROBES: dict[str, tuple[str, list[float] | None, dict[str, dict]]] = {
    "ppt-base": ("ppt", None, {"ppt": {}, "fedavg-pt": {}}),
    "ppt-push": ("ppt", None, {"ppt": {"retrieval_sign": "push"}}),
    "ppt-no-prompts": ("ppt", None, {"fedavg-pt": {"n_tokens": 0}}),
    "fedmvp-base": ("fedmvp", [0.5], {"fedmvp": {}, "fedmvp-fedavg": {}}),
    "fedmvp-no-joint-layers": ("fedmvp", [0.5], {"fedmvp": {"joint_layers": 0}}),
}


def sweep_name(probe: str) -> str:
    return f"probe-{probe}"


def run_probe(name: str, workers: int = 1) -> list[dict]:
    from fedbench.bench_plans import plan_grid, profile_config
    from fedbench.sweep import load_config, run_grid

    plan, rates, options = PROBES[name]
    base = load_config(profile_config("quick"))
    grid = plan_grid(base, plan, "quick", list(options), rates, SEEDS, None, None, None, None, None)
    for method, extra in options.items():
        grid.per_method[method] = {**grid.per_method.get(method, {}), **extra}
    base.tracking.results_dir, base.tracking.sweep, base.tracking.wandb = OUT, sweep_name(name), False
    base.tracking.command = f"python benchmarks/probes.py {name}"
    with tempfile.TemporaryDirectory() as boards:  # probes have no board of their own
        return run_grid(base, grid, leaderboards=boards, workers=workers)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("probes", nargs="+", choices=sorted(PROBES))
    ap.add_argument("--workers", type=int, default=1)
    ns = ap.parse_args(argv)
    for name in ns.probes:
        run_probe(name, ns.workers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
