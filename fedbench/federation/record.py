"""The run record: everything needed to audit and regenerate a result (config, identity, seeds,
commit, versions, per-round history, final and validation-selected metrics)."""

from __future__ import annotations

from typing import Any

from fedbench.seeds import seed_tree
from fedbench.tracking.provenance import git_commit, now_iso, package_versions
from fedbench.tracking.records import SCHEMA_VERSION


def make_record(fed, final: dict | None, selected: dict | None, personalized: dict | None, *, wall_time_s: float) -> dict[str, Any]:
    """A finished run's record; a diverged run (``fed.diverged``) has no test metrics, says where it
    diverged, and keeps its history up to that round."""
    cfg, exp = fed.cfg, fed.exp
    status = {"status": "ok"} if fed.diverged is None else {"status": "diverged", "diverged": fed.diverged}
    return {
        "schema": SCHEMA_VERSION, "run_id": fed.run_id, "identity": cfg.identity(), **status,
        "sweep": cfg.tracking.sweep, "dataset": cfg.data.dataset, "backbone": cfg.backbone.name,
        "method": cfg.method.name, "seed": cfg.seed,
        "missing": {"protocol": cfg.missing.protocol, "rate": cfg.missing.rate, "type": cfg.missing.type, "both_ratio": cfg.missing.both_ratio},
        "partition": {"name": cfg.partition.name, "alpha": cfg.partition.alpha, "n_clients": cfg.partition.n_clients},
        "metric": exp.bundle.metric, "final": final, "selected": selected, "personalized": personalized,
        "rounds": fed.history,
        "bytes": {"down": sum(h["bytes_down"] for h in fed.history), "up": sum(h["bytes_up"] for h in fed.history)},
        "majority_rate": exp.majority_rate, "wall_time_s": wall_time_s,
        "partition_report": exp.report, "data_info": exp.bundle.info,
        "config": cfg.to_dict(), "seed_tree": seed_tree(cfg.seed), "git_commit": git_commit(), "versions": package_versions(),
        "created": now_iso(),
    }
