"""``make bench METHOD=X``: X beside its baselines under X's own protocol (its ``BenchPlan``), in a
profile sized for a laptop (``quick``) or for real comparisons (``full``)."""

from __future__ import annotations

import shlex
from pathlib import Path

from fedbench.bench_plans import (
    PROFILES,
    REPO,
    check_pinned_precision,
    plan_grid,
    plan_methods,
    profile_config,
    repo_file,
    run_settings,
    set_rounds,
)
from fedbench.errors import ConfigError
from fedbench.sweep import Grid, load_config, run_grid

USER_RESULTS = (
    "runs"  # a user's own records and boards (ignored by git); results/ and leaderboards/ are the reference
)
REFERENCE = "results"


def bench(
    method: str,
    profile: str,
    *,
    dataset: str | None = None,
    rates=None,
    seeds=None,
    types=None,
    ablations=False,
    results: str | None = None,
    leaderboards: str | None = None,
    wandb=True,
    workers: int | None = None,
    executor: str | None = None,
    precision: str | None = None,
    accelerator: str | None = None,
    smoke: bool = False,
    cells: str | None = None,
    rounds: int | None = None,
) -> list[dict]:
    """Run ``method``'s bench plan on the embedded dataset, or (``dataset`` set to a real one) the
    paper's table of ``method`` on that dataset (:class:`~fedbench.methods.registry.PaperTable`).
    ``cells="ray"`` runs the cells as Ray tasks (docs/scale-out.md) instead of local processes;
    ``executor="ray"`` runs each run's clients on Ray actors;
    it never changes a result. ``precision`` replaces the profile's ``train.precision`` (its quick
    profile says ``auto``: bf16-mixed on a CPU with native bf16, else 32-true); ``accelerator``
    replaces ``train.accelerator``; ``rounds`` replaces ``federation.rounds`` of every cell (after the
    plan's own overrides: validation curves past the profile's rounds). ``smoke`` runs each method of
    the plan once, in smoke mode (:mod:`fedbench.federation.smoke`: the real data path, one short
    round, nothing recorded)."""
    from fedbench.methods.registry import bench_sweep, get_method

    plan = get_method(method).plan
    if profile not in PROFILES:
        raise ConfigError(f"PROFILE={profile!r} is not a profile; use one of {', '.join(PROFILES)}")
    prof = PROFILES[profile]
    base = load_config(profile_config(profile))
    methods = plan_methods(method, ablations)
    words = ["make", "bench", f"METHOD={method}", f"PROFILE={profile}"]
    words += [
        f"{k}={v}"
        for k, v in (
            ("CELLS", cells),
            ("EXECUTOR", executor),
            ("PRECISION", precision),
            ("ACCELERATOR", accelerator),
            ("ROUNDS", rounds),
        )
        if v
    ]
    if dataset is not None and dataset != base.data.dataset:
        if profile == "record":
            raise ConfigError(
                f"PROFILE=record is the emoji board of record; DATASET={dataset} runs a paper's table "
                "(PROFILE=quick for its first seed, PROFILE=full for all)"
            )
        return _paper_table(
            method,
            plan,
            dataset,
            profile,
            methods,
            words,
            rates=rates,
            seeds=seeds,
            types=types,
            ablations=ablations,
            results=results,
            leaderboards=leaderboards,
            wandb=wandb,
            workers=workers,
            executor=executor,
            precision=precision,
            accelerator=accelerator,
            smoke=smoke,
            cells=cells,
            rounds=rounds,
        )
    check_pinned_precision(profile, precision, accelerator or base.train.accelerator)
    grid = plan_grid(
        base, method, profile, methods, rates, seeds, types, executor, precision, accelerator, rounds
    )
    reference = REFERENCE  # the committed records the committed boards are made of
    results, leaderboards = results or USER_RESULTS, leaderboards or str(Path(USER_RESULTS) / "leaderboards")
    base.tracking.results_dir, base.tracking.sweep, base.tracking.wandb = (
        results,
        bench_sweep(method, profile),
        wandb,
    )
    base.tracking.command = _command(words, rates, seeds, types, ablations)
    if smoke:
        return _smoke(base, grid)
    workers = prof.get("workers", 1) if workers is None else workers
    say_where(results, leaderboards)
    return _against(
        reference,
        results,
        run_grid(base, grid, leaderboards=leaderboards, workers=workers, cells=cells or "local"),
    )


def _paper_table(
    method,
    plan,
    dataset,
    profile,
    methods,
    words,
    *,
    rates,
    seeds,
    types,
    ablations,
    results,
    leaderboards,
    wandb,
    workers,
    executor=None,
    precision=None,
    accelerator=None,
    smoke=False,
    cells=None,
    rounds=None,
) -> list[dict]:
    """The paper's table of ``method`` on ``dataset``: its experiments/ YAML as the base config, the
    table's axes (RATES / TYPES replace the rate / type axis), results and boards kept per paper."""
    table = plan.tables.get(dataset)
    if table is None:
        have = ", ".join(sorted(plan.tables)) or "none"
        raise ConfigError(
            f"DATASET={dataset}: {method} has no paper table on {dataset} (its tables: {have}); "
            "leave DATASET out for the embedded emoji benchmark"
        )
    base = load_config(repo_file(table.config))
    base.method.name = method
    run_settings(base, executor, precision, accelerator)
    set_rounds(base, rounds)
    methods = list(dict.fromkeys([*methods, *table.extra_methods]))
    axes = dict(table.axes)
    if types:
        axes["missing.type"] = types
    if rates:
        axes["missing.rate"] = rates
    run_seeds = seeds if seeds is not None else list(table.seeds[:1] if profile == "quick" else table.seeds)
    from fedbench.methods.registry import table_sweep

    reference = (
        base.tracking.results_dir
    )  # the paper's committed records (results/<paper>), where there are any
    results = results or str(Path(USER_RESULTS) / Path(reference).name)
    base.tracking.results_dir, base.tracking.sweep, base.tracking.wandb = (
        results,
        table_sweep(method, dataset),
        wandb,
    )
    base.tracking.command = _command([*words, f"DATASET={dataset}"], rates, seeds, types, ablations)
    leaderboards = leaderboards or str(Path(results).parent / "leaderboards" / Path(results).name)
    per_method = {m: opts for m in methods if (opts := table.options_for(m, _option_names(m)))}
    grid = Grid(methods=methods, seeds=run_seeds, axes=axes, per_method=per_method)
    if smoke:
        return _smoke(base, grid)
    say_where(results, leaderboards)
    return _against(
        reference,
        results,
        run_grid(base, grid, leaderboards=leaderboards, workers=workers or 1, cells=cells or "local"),
    )


def _against(reference: str, results: str, records: list[dict]) -> list[dict]:
    """Print how each run compares with the reference records (tracking/reference.py), unless the
    runs were written into the reference folder itself (``results`` is ``reference``: a maintainer
    regenerating it)."""
    import sys

    from fedbench.tracking.reference import compare_with_reference

    if records and Path(results).resolve() != Path(reference).resolve():
        print(f"against the reference in {reference}:", file=sys.stderr)
        for line in compare_with_reference(records, reference):
            print(f"  {line}", file=sys.stderr, flush=True)
    return records


def _option_names(method: str) -> set[str]:
    import dataclasses

    from fedbench.methods.registry import get_method

    options = get_method(method).options
    return {f.name for f in dataclasses.fields(options)} if options is not None else set()


def say_where(results: str, leaderboards: str) -> None:
    """One line before a bench starts: where its records and boards go (relative paths resolve
    against the current folder, which need not be the fedbench checkout)."""
    import sys

    relative = not Path(results).is_absolute() or not Path(leaderboards).is_absolute()
    outside = (
        " (in the current folder, which is not the fedbench checkout)"
        if relative and Path.cwd().resolve() != REPO.resolve()
        else ""
    )
    print(
        f"fedbench bench: records go to {Path(results).absolute()}, "
        f"boards to {Path(leaderboards).absolute()}{outside}; "
        "--results and --leaderboards choose others",
        file=sys.stderr,
        flush=True,
    )


def _smoke(base, grid: Grid) -> list[dict]:
    """One smoke run per method of the grid (its first setting and seed)."""
    import sys

    from fedbench.federation.loop import run_experiment
    from fedbench.sweep import cell_configs

    first = Grid(
        methods=grid.methods,
        seeds=grid.seeds[:1],
        axes={k: v[:1] for k, v in grid.axes.items()},
        per_method=grid.per_method,
    )
    reports = []
    for cfg in cell_configs(base, first):
        reports.append(run_experiment(cfg, smoke=True)["smoke"])
    print(
        "smoke: "
        + ", ".join(
            f"{r['method']} {r['status']} ({r['run_s']}s, peak {r['peak_rss_gib']} GiB)" for r in reports
        ),
        file=sys.stderr,
    )
    return reports


def _command(words: list[str], rates, seeds, types, ablations) -> str:
    """The make command that reruns this bench, quoted so it pastes back into a shell."""
    words = list(words)
    for name, values in (("RATES", rates), ("SEEDS", seeds), ("TYPES", types)):
        if values is not None:
            words.append(f"{name}={' '.join(map(str, values))}")
    if ablations:
        words.append("ABLATIONS=1")
    return shlex.join(words)
