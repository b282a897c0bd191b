"""``fedbench run | sweep | bench | leaderboard | reproduce | data | methods | datasets |
backbones | executors``.

Configs are YAML files under ``experiments/`` plus dotted overrides (``--missing.rate 0.5``),
parsed by jsonargparse against the typed dataclasses in :mod:`fedbench.config`. Every user error
(a bad value, a missing file, a corrupt checkpoint) ends in one line on stderr and exit status 2.
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

os.environ.setdefault("JSONARGPARSE_DEPRECATION_WARNINGS", "off")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from jsonargparse import ArgumentParser  # noqa: E402

from fedbench.cli_args import (  # noqa: E402
    asks_help,
    config_from,
    experiment_parser,
    grid_arguments,
    json_dict,
    parse,
    split,
)
from fedbench.cli_errors import TORCH_WRITE_FAILED, is_torch_write_failure, os_error_line  # noqa: E402
from fedbench.errors import ConfigError, FedbenchError  # noqa: E402


def cmd_run(argv: list[str]) -> int:
    from fedbench.federation.loop import run_experiment

    ns = parse(experiment_parser("fedbench run", with_choices=asks_help(argv)), argv)
    cfg = config_from(ns)
    if ns.smoke:
        run_experiment(cfg, smoke=True)
        return 0
    record = run_experiment(cfg, force=bool(ns.force))
    final = record["final"]
    if record.get("status") == "diverged":
        d = record["diverged"]
        print(
            f"{record['method']} seed {record['seed']}: diverged in round {d['round']}"
            + (f" (client {d['client']})" if d.get("client") is not None else "")
            + f": {d['what']}; recorded as diverged"
        )
        print(f"record: {Path(cfg.tracking.results_dir) / cfg.data.dataset / (record['run_id'] + '.json')}")
        return 0
    from fedbench.batch import TEST_CONDITIONS

    order = [c for c in TEST_CONDITIONS if c in final] + sorted(
        set(final) - set(TEST_CONDITIONS)
    )  # a stored record's are sorted
    print(
        f"{record['method']} seed {record['seed']} {record['missing']['type']}@{record['missing']['rate']}: "
        + ", ".join(f"{c} {final[c][record['metric']]:.4f}" for c in order)
    )
    print(f"record: {Path(cfg.tracking.results_dir) / cfg.data.dataset / (record['run_id'] + '.json')}")
    return 0


def cmd_sweep(argv: list[str]) -> int:
    import json
    import shlex

    from fedbench.sweep import Grid, run_grid

    p = experiment_parser("fedbench sweep", with_choices=asks_help(argv))
    p.add_argument(
        "--methods",
        type=str | None,
        default=None,
        help='methods, e.g. "fedavg fedprox" (--method.options apply to each)',
    )
    p.add_argument(
        "--per_method",
        type=str | None,
        default=None,
        help='options of single methods, e.g. \'{"fedprox": {"mu": 0.5}}\'',
    )
    p.add_argument("--alphas", type=str | None, default=None, help='Dirichlet alphas, e.g. "0.1 0.5"')
    p.add_argument(
        "--cells",
        type=str,
        default="local",
        help="where the cells run: local (this machine, --workers processes) or ray (Ray tasks; a run's "
        "clients run where its executor section says)",
    )
    p.add_argument(
        "--cells_options",
        type=str | None,
        default=None,
        help='Ray options of --cells ray, e.g. \'{"address": "auto", "gpus_per_actor": 1}\'',
    )
    grid_arguments(p)
    ns = parse(p, argv)
    cfg = config_from(ns)
    try:
        per_method = json.loads(ns.per_method) if ns.per_method else {}
    except json.JSONDecodeError as err:
        raise ConfigError(
            f'--per_method: not JSON ({err.msg}); give e.g. \'{{"fedprox": {{"mu": 0.5}}}}\''
        ) from err
    if not isinstance(per_method, dict) or not all(isinstance(v, dict) for v in per_method.values()):
        raise ConfigError(
            '--per_method: give a JSON object of method -> options, e.g. \'{"fedprox": {"mu": 0.5}}\''
        )
    methods = split(ns.methods) or [cfg.method.name]
    if stray := sorted(set(per_method) - set(methods)):
        raise ConfigError(
            f"--per_method: {stray[0]!r} is not one of the sweep's methods ({', '.join(methods)})"
        )
    axes = {
        "missing.type": split(ns.types) or [cfg.missing.type],
        "missing.rate": split(ns.rates, float) or [cfg.missing.rate],
        "partition.alpha": split(ns.alphas, float) or [cfg.partition.alpha],
    }
    grid = Grid(methods=methods, seeds=split(ns.seeds, int) or [cfg.seed], axes=axes, per_method=per_method)
    cells_options = json_dict(ns.cells_options, "--cells_options", '{"address": "auto"}')
    cfg.tracking.sweep = cfg.tracking.sweep or "sweep"
    cfg.tracking.command = "fedbench sweep " + shlex.join(argv)
    run_grid(
        cfg,
        grid,
        leaderboards=ns.leaderboards,
        workers=1 if ns.workers is None else ns.workers,
        cells=ns.cells,
        cells_options=cells_options,
    )
    return 0


def cmd_bench(argv: list[str]) -> int:
    from fedbench.bench import bench

    p = ArgumentParser(
        prog="fedbench bench",
        exit_on_error=False,
        description="The benchmark of one method beside its baselines.",
    )
    p.add_argument("--method", type=str, default="fedavg")
    p.add_argument(
        "--profile",
        type=str,
        default="quick",
        help="quick (the smoke benchmark; README gives its run times per plan and kind of CPU), "
        "record (the board of record: "
        "each plan at its converged rounds on 5 seeds) or full (a larger federation)",
    )
    p.add_argument("--ablations", type=bool, default=False)
    p.add_argument(
        "--dataset",
        type=str | None,
        default=None,
        help="a real dataset: run the paper's table of METHOD on it (default: the embedded emoji benchmark)",
    )
    p.add_argument(
        "--results",
        type=str | None,
        default=None,
        help="your records (default: runs, or runs/<paper>, e.g. runs/fedprime); each run is compared "
        "with the reference in results/ (RESULTS=results regenerates the reference)",
    )
    p.add_argument("--wandb", type=bool, default=True, help="log to W&B (offline without WANDB_API_KEY)")
    p.add_argument(
        "--executor",
        type=str | None,
        default=None,
        help=(
            "ray: run each run's clients on Ray actors (executor.name); CELLS=ray runs the cells as Ray tasks"
        ),
    )
    p.add_argument(
        "--cells",
        type=str | None,
        default=None,
        help=(
            "ray: run the cells as Ray tasks on a local Ray "
            "(for a cluster: fedbench sweep --cells ray --cells_options)"
        ),
    )
    p.add_argument(
        "--precision",
        type=str | None,
        default=None,
        help="train.precision for every cell (32-true, bf16-mixed, 16-mixed, auto); default: the profile's",
    )
    p.add_argument(
        "--accelerator",
        type=str | None,
        default=None,
        help="train.accelerator for every cell (cpu, gpu, auto); default: the experiment file's",
    )
    p.add_argument(
        "--rounds",
        type=int | None,
        default=None,
        help="federation.rounds for every cell (e.g. validation curves past the profile's rounds)",
    )
    p.add_argument(
        "--smoke",
        type=bool,
        default=False,
        help=(
            "each method once on the real data path with one short round (minutes on a CPU); "
            "nothing is recorded"
        ),
    )
    grid_arguments(p, leaderboards=None)
    ns = parse(p, argv)
    bench(
        ns.method,
        ns.profile,
        dataset=ns.dataset,
        rates=split(ns.rates, float),
        seeds=split(ns.seeds, int),
        types=split(ns.types),
        ablations=ns.ablations,
        results=ns.results,
        leaderboards=ns.leaderboards,
        wandb=ns.wandb,
        workers=ns.workers,
        executor=ns.executor,
        precision=ns.precision,
        accelerator=ns.accelerator,
        smoke=ns.smoke,
        cells=ns.cells,
        rounds=ns.rounds,
    )
    return 0


def cmd_leaderboard(argv: list[str]) -> int:
    from fedbench.sweep import regenerate_leaderboard

    p = ArgumentParser(
        prog="fedbench leaderboard",
        exit_on_error=False,
        description="Regenerate markdown leaderboards from results.",
    )
    p.add_argument("--results", type=str, default="results")
    p.add_argument("--leaderboards", type=str, default="leaderboards")
    p.add_argument("--dataset", type=str, default="emoji")
    p.add_argument(
        "--command", type=str | None, default=None, help="the command shown as the way to reproduce the board"
    )
    ns = parse(p, argv)
    path = regenerate_leaderboard(ns.results, ns.leaderboards, ns.dataset, ns.command)
    print(f"wrote {path}")
    return 0


def cmd_reproduce(argv: list[str]) -> int:
    from fedbench.reproduce import reproduce_command

    return reproduce_command(argv)


def _lister(kind: str):
    def cmd(argv: list[str]) -> int:
        import importlib

        module, name = {
            "methods": ("fedbench.methods.registry", "METHODS"),
            "datasets": ("fedbench.data.registry", "DATASETS"),
            "backbones": ("fedbench.backbones.registry", "BACKBONES"),
            "executors": ("fedbench.federation.executors", "EXECUTORS"),
        }[kind]
        registry = getattr(importlib.import_module(module), name)
        for entry in registry.names():
            print(f"{entry:14s} {registry.get(entry).description}")
        return 0

    return cmd


def cmd_cache(argv: list[str]) -> int:
    from fedbench.cache.commands import cache_command

    return cache_command(argv)


def cmd_data(argv: list[str]) -> int:
    from fedbench.data.commands import data_command

    return data_command(argv)


HELP = {
    "run": "run one experiment (or resume it); --smoke checks the real data path in minutes",
    "sweep": "run a grid of experiments (methods x seeds x missing rates, types, alphas) and write the board",
    "bench": "run a method beside its paper's baselines under its protocol (make bench METHOD=...)",
    "leaderboard": "regenerate the markdown leaderboard (and plots) from the run records",
    "reproduce": (
        "rerun a run record's config here and compare its final metrics (a record not produced here)"
    ),
    "data": "check a dataset download and convert it once (prepare), or list what is prepared",
    "cache": "list what the cache holds on disk, or free it (list, clean)",
    "methods": "list the registered methods (built-in and plugins)",
    "datasets": "list the registered datasets",
    "backbones": "list the registered backbones",
    "executors": "list the registered executors (where client fits run)",
}

COMMANDS = {
    "run": cmd_run,
    "sweep": cmd_sweep,
    "bench": cmd_bench,
    "leaderboard": cmd_leaderboard,
    "data": cmd_data,
    "cache": cmd_cache,
    "reproduce": cmd_reproduce,
    **{kind: _lister(kind) for kind in ("methods", "datasets", "backbones", "executors")},
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        asked = bool(argv) and argv[0] in ("-h", "--help")
        lines = ["usage: fedbench COMMAND [--help] ...", ""] + [
            f"  {name:12s} {HELP[name]}" for name in COMMANDS
        ]
        if argv and not asked:
            lines.insert(0, f"fedbench: unknown command {argv[0]!r}")
        print("\n".join(lines), file=sys.stdout if asked else sys.stderr)
        return 0 if asked else 2
    from fedbench.interrupt import EXIT_INTERRUPTED, RunInterrupted, interruptible, surfacing_interrupts

    warnings.filterwarnings("ignore", category=UserWarning, module="lightning")
    try:
        with interruptible(), surfacing_interrupts():  # also an interrupt that a clean-up's error hid
            return COMMANDS[argv[0]](argv[1:])
    except FedbenchError as err:
        print(f"fedbench: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # a full disk, a read-only folder: name the file; records already written stay
        print(f"fedbench: error: {os_error_line(err)}", file=sys.stderr)
        return 2
    except RuntimeError as err:
        if not is_torch_write_failure(err):
            raise
        print(f"fedbench: error: {TORCH_WRITE_FAILED}", file=sys.stderr)
        return 2
    except (RunInterrupted, KeyboardInterrupt) as err:
        where = f" at round {err.round}" if getattr(err, "round", None) else ""
        cause = f" ({err.cause})" if isinstance(err, RunInterrupted) and err.cause != "Ctrl-C" else ""
        print(
            f"fedbench: interrupted{cause}{where}; finished rounds and runs are kept, "
            "run the same command to resume",
            file=sys.stderr,
        )
        return err.exit_code if isinstance(err, RunInterrupted) else EXIT_INTERRUPTED


def entry() -> None:
    """The console script: like ``main``, but after Ctrl-C the process ends at once, without
    waiting at interpreter shutdown for worker threads of an interrupted sweep."""
    code = main()
    if code in (130, 143):  # Ctrl-C, SIGTERM
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    entry()
