"""``make bench METHOD=X``: X beside its baselines under X's own protocol (its ``BenchPlan``), in a
profile sized for a laptop (``quick``) or for real comparisons (``full``)."""

from __future__ import annotations

import shlex
from pathlib import Path

from fedbench.errors import ConfigError
from fedbench.sweep import Grid, load_config, run_grid

REPO = Path(__file__).resolve().parent.parent
PROFILES = {
    "quick": {"config": "experiments/emoji_quick.yaml", "rates": [0.1, 0.5, 0.9], "seeds": [0, 1], "workers": 2},
    "full": {"config": "experiments/emoji_full.yaml", "rates": [0.0, 0.3, 0.5, 0.7, 0.9], "seeds": [0, 1, 2]},
}


def profile_config(profile: str) -> Path:
    """The profile's YAML, from the current folder or else beside the installed package."""
    rel = Path(PROFILES[profile]["config"])
    for path in (rel, REPO / rel):
        if path.is_file():
            return path
    raise ConfigError(f"PROFILE={profile}: {rel} is not in this folder or beside the package; run from the fedbench repository")


def bench(
    method: str, profile: str, *, rates=None, seeds=None, types=None, ablations=False, results="results",
    leaderboards="leaderboards", wandb=True, workers: int | None = None,
) -> list[dict]:
    from fedbench.methods.registry import get_method

    plan = get_method(method).plan
    if profile not in PROFILES:
        raise ConfigError(f"PROFILE={profile!r} is not a profile; use quick or full")
    prof = PROFILES[profile]
    base = load_config(profile_config(profile))
    base.missing.protocol = plan.protocol
    base.method.name = method
    methods = list(dict.fromkeys([method, *plan.baselines, *(plan.ablations if ablations else [])]))
    plan_profile = plan.profiles.get(profile, {})
    for section, values in plan_profile.get("overrides", {}).items():
        for key, value in values.items():
            setattr(getattr(base, section), key, value)
    axes = {"missing.type": types or list(plan.types), "missing.rate": rates or plan_profile.get("rates", prof["rates"])}
    axes |= plan_profile.get("axes", {})
    grid = Grid(methods=methods, seeds=seeds if seeds is not None else plan_profile.get("seeds", prof["seeds"]), axes=axes,
                per_method={m: dict(o) for m, o in plan_profile.get("per_method", {}).items()})
    words = ["make", "bench", f"METHOD={method}", f"PROFILE={profile}"]
    for name, values in (("RATES", rates), ("SEEDS", seeds), ("TYPES", types)):
        if values is not None:
            words.append(f"{name}={' '.join(map(str, values))}")
    if ablations:
        words.append("ABLATIONS=1")
    base.tracking.results_dir, base.tracking.sweep, base.tracking.wandb = results, f"bench-{method}-{profile}", wandb
    base.tracking.command = shlex.join(words)
    workers = prof.get("workers", 1) if workers is None else workers
    return run_grid(base, grid, leaderboards=leaderboards, workers=workers)
