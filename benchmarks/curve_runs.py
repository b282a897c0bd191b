"""The validation curves that choose a plan's record rounds (docs/board-of-record.md): a plan's
quick cells, seed 0 unless ``--seeds`` says otherwise, ablations included, run for more rounds,
optionally at one of its settings only, into a curves folder (runs resume and recorded cells are
skipped).

    .venv/bin/python benchmarks/curve_runs.py fedmvp --rounds 40 --rates 0.5
    .venv/bin/python benchmarks/curve_runs.py ppt --rounds 40 --partition imbalanced

Equivalent to ``make bench METHOD=X PROFILE=quick ROUNDS=N SEEDS=0 ABLATIONS=1`` (same cells, same
sweep name, so the same run ids) except that ``--partition`` keeps one partition of a plan that
sweeps partitions, which ``make bench`` cannot select. ``--lr`` and ``--lr-schedule`` draw a recipe
candidate (docs/board-of-record.md: PPT's recipe), into a results folder of its own, and
``--method-option KEY=VALUE`` a method option (e.g. ``new_centre=drift`` for ``--methods ppt``,
docs/ppt.md section 4) for every method drawn.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def partition_label(partition: dict) -> str:
    """``dirichlet-0.5``, ``imbalanced``: a partition axis value as the command line names it."""
    return "-".join(str(partition[k]) for k in ("name", "alpha") if k in partition)


def run_curves(
    plan: str,
    rounds: int,
    rates,
    partition: str | None,
    results: str,
    workers: int,
    only=None,
    lr: float | None = None,
    lr_schedule: str | None = None,
    seeds=(0,),
    method_options: dict | None = None,
):
    from fedbench.bench_plans import plan_grid, plan_methods, profile_config
    from fedbench.errors import ConfigError
    from fedbench.methods.registry import bench_sweep
    from fedbench.sweep import load_config, run_grid

    base = load_config(profile_config("quick"))
    methods = plan_methods(plan, ablations=True)
    if only:
        if unknown := sorted(set(only) - set(methods)):
            raise ConfigError(f"--methods: {unknown[0]!r} is not in the {plan} plan ({', '.join(methods)})")
        methods = [m for m in methods if m in only]
    seeds = list(seeds)
    grid = plan_grid(base, plan, "quick", methods, rates, seeds, None, None, None, None, rounds)
    rates_word = f" RATES={' '.join(map(str, rates))}" if rates else ""
    seeds_word = " ".join(map(str, seeds))
    make_seeds = seeds_word if len(seeds) == 1 else f'"{seeds_word}"'
    command = (
        f"make bench METHOD={plan} PROFILE=quick ROUNDS={rounds}{rates_word} SEEDS={make_seeds} ABLATIONS=1"
    )
    if partition is not None:
        choices = {partition_label(p): p for p in grid.axes.get("partition", [])}
        if partition not in choices:
            raise ConfigError(f"--partition: {partition!r} is not one of {', '.join(choices) or 'none'}")
        grid.axes["partition"] = [choices[partition]]
    recipe = ""
    if lr is not None:  # a recipe candidate: after the plan's own train settings
        base.train.lr, recipe = lr, f"{recipe} --lr {lr:g}"
    if lr_schedule is not None:
        base.train.lr_schedule, recipe = lr_schedule, f"{recipe} --lr-schedule {lr_schedule}"
    for key, value in (method_options or {}).items():  # each method's own options, checked by the sweep
        recipe = f"{recipe} --method-option {key}={value}"
        for method in methods:
            grid.per_method.setdefault(method, {})[key] = value
    if partition is not None or recipe:  # what make bench cannot express
        where = f" --partition {partition}" if partition is not None else ""
        seeds_flag = f" --seeds {seeds_word}" if seeds != [0] else ""  # seed 0 is the default
        command = f"python benchmarks/curve_runs.py {plan} --rounds {rounds}{where}{recipe}{seeds_flag}"
    base.tracking.results_dir, base.tracking.sweep = results, bench_sweep(plan, "quick")
    base.tracking.wandb, base.tracking.command = False, command
    with tempfile.TemporaryDirectory() as boards:  # curves have no board of their own
        return run_grid(base, grid, leaderboards=boards, workers=workers)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("plan", help="a plan's method: fedavg, fedprime, ppt, fedmvp")
    ap.add_argument("--rounds", type=int, required=True)
    ap.add_argument("--rates", type=float, nargs="*", default=None)
    ap.add_argument("--partition", default=None, help="one partition of the plan, e.g. imbalanced")
    ap.add_argument("--results", default="runs/curves-quick")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument(
        "--seeds", type=int, nargs="+", default=[0], help="seeds to draw (default 0, the curves' seed)"
    )
    ap.add_argument(
        "--lr", type=float, default=None, help="train.lr instead of the plan's (a recipe candidate)"
    )
    ap.add_argument(
        "--lr-schedule",
        default=None,
        help="train.lr_schedule instead of the plan's: constant, linear, cosine",
    )
    ap.add_argument(
        "--methods",
        nargs="*",
        default=None,
        help="only these methods of the plan (e.g. a second process "
        "on the same results folder taking the plan's last cells: a cell is skipped once recorded)",
    )
    ap.add_argument(
        "--method-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a method option for every method drawn, as in a config (repeatable)",
    )
    ns = ap.parse_args(argv)
    import yaml

    from fedbench.errors import ConfigError

    try:
        options = {}
        for item in ns.method_option:
            key, sep, value = item.partition("=")
            if not sep or not key:
                raise ConfigError(f"--method-option: give KEY=VALUE, e.g. new_centre=drift; got {item!r}")
            options[key] = yaml.safe_load(value)  # a number, a bool or a word, as in a config
        run_curves(
            ns.plan,
            ns.rounds,
            ns.rates,
            ns.partition,
            ns.results,
            ns.workers,
            ns.methods,
            lr=ns.lr,
            lr_schedule=ns.lr_schedule,
            seeds=ns.seeds,
            method_options=options,
        )
    except ConfigError as err:
        print(f"curve_runs: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
