"""The bench profiles and what a plan runs under each: the cells of ``make bench METHOD=X
PROFILE=P`` on the embedded emoji benchmark (used by :mod:`fedbench.bench` and by the sizing and
probe scripts under benchmarks/)."""

from __future__ import annotations

from pathlib import Path

from fedbench.errors import ConfigError
from fedbench.methods.registry import PROFILES, plan_methods
from fedbench.sweep import Grid, load_config

REPO = Path(__file__).resolve().parent.parent


def profile_config(profile: str) -> Path:
    """The profile's YAML, from the current folder or else beside the installed package."""
    return repo_file(PROFILES[profile]["config"], f"PROFILE={profile}")


def repo_file(rel: str, what: str = "the paper's table") -> Path:
    for path in (Path(rel), REPO / rel):
        if path.is_file():
            return path
    raise ConfigError(
        f"{what}: {rel} is not in this folder or beside the package; run from the fedbench repository"
    )


def plan_grid(base, method, profile, methods, rates, seeds, types, executor, precision, accelerator, rounds):
    """The emoji plan's grid under ``profile``; sets the plan's protocol and overrides on ``base``."""
    from fedbench.methods.registry import get_method

    plan, prof = get_method(method).plan, PROFILES[profile]
    run_settings(base, executor, precision or prof.get("precision"), accelerator)
    base.missing.protocol = plan.protocol
    base.method.name = method
    plan_profile = plan.profile(profile)
    for section, values in plan_profile.get("overrides", {}).items():
        for key, value in values.items():
            setattr(getattr(base, section), key, value)
    set_rounds(base, rounds)
    axes = {
        "missing.type": types or list(plan.types),
        "missing.rate": rates or plan_profile.get("rates", prof["rates"]),
    }
    axes |= plan_profile.get("axes", {})
    grid = Grid(
        methods=methods,
        seeds=seeds if seeds is not None else plan_profile.get("seeds", prof["seeds"]),
        axes=axes,
        per_method={m: dict(o) for m, o in plan_profile.get("per_method", {}).items()},
    )
    return grid


def check_pinned_precision(profile: str, precision: str | None, accelerator: str) -> None:
    """One line, where ``profile`` pins bf16-mixed (and PRECISION= does not replace it) on a CPU
    that would emulate it."""
    from fedbench.hardware import cpu_has_bf16

    pinned = None if precision else PROFILES[profile].get("precision")
    if pinned == "bf16-mixed" and accelerator == "cpu" and not cpu_has_bf16():
        raise ConfigError(
            f"PROFILE={profile} runs in bf16-mixed, so that its cells from every session share one "
            "precision, and this CPU has no native bf16 (it would emulate it, many times slower); run "
            "it on a CPU with AVX512-BF16 or AMX, or give PRECISION=32-true for cells of your own, "
            "which are not the board of record's"
        )


def plan_cells(method: str, profile: str, ablations: bool = True) -> list:
    """Every cell (run config) ``make bench METHOD=method PROFILE=profile`` runs on emoji."""
    from fedbench.sweep import cell_configs

    methods = plan_methods(method, ablations)
    base = load_config(profile_config(profile))
    grid = plan_grid(base, method, profile, methods, None, None, None, None, None, None, None)
    return cell_configs(base, grid)


def run_settings(base, executor: str | None, precision: str | None, accelerator: str | None = None) -> None:
    """EXECUTOR= (where each run's clients run), PRECISION= and ACCELERATOR= on the base config
    (checked with every cell's config)."""
    if executor:
        base.executor.name = executor
    if precision:
        base.train.precision = precision
    if accelerator:
        base.train.accelerator = accelerator


def set_rounds(base, rounds: int | None) -> None:
    """ROUNDS= on the base config, after the plan's or table's own settings."""
    if rounds is not None:
        if rounds < 1:
            raise ConfigError(f"ROUNDS={rounds}: the number of federated rounds must be at least 1")
        base.federation.rounds = rounds
