"""The run record: everything needed to audit and regenerate a result (config, identity, seeds,
commit, versions, per-round history, final and validation-selected metrics), and the check a run
makes before it starts: is this configuration already recorded here?"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from fedbench.errors import ConfigError
from fedbench.seeds import seed_tree
from fedbench.tracking.provenance import git_commit, now_iso, package_versions
from fedbench.tracking.records import SCHEMA_VERSION


def make_record(
    fed, final: dict | None, selected: dict | None, personalized: dict | None, *, wall_time_s: float
) -> dict[str, Any]:
    """A finished run's record; a diverged run (``fed.diverged``) has no test metrics, says where it
    diverged, and keeps its history up to that round."""
    cfg, exp = fed.cfg, fed.exp
    status = {"status": "ok"} if fed.diverged is None else {"status": "diverged", "diverged": fed.diverged}
    return {
        "schema": SCHEMA_VERSION,
        "run_id": fed.run_id,
        "identity": fed.run.identity,
        **status,
        "sweep": cfg.tracking.sweep,
        "dataset": cfg.data.dataset,
        "backbone": cfg.backbone.name,
        "method": cfg.method.name,
        "seed": cfg.seed,
        "missing": {
            "protocol": cfg.missing.protocol,
            "rate": cfg.missing.rate,
            "type": cfg.missing.type,
            "both_ratio": cfg.missing.both_ratio,
        },
        "partition": {
            "name": cfg.partition.name,
            "alpha": cfg.partition.alpha,
            "n_clients": cfg.partition.n_clients,
        },
        "metric": exp.bundle.metric,
        "final": final,
        "selected": selected,
        "personalized": personalized,
        "rounds": fed.history,
        "bytes": {
            "down": sum(h["bytes_down"] for h in fed.history),
            "up": sum(h["bytes_up"] for h in fed.history),
        },
        "majority_rate": exp.majority_rate,
        "wall_time_s": wall_time_s,
        "partition_report": exp.report,
        "data_info": exp.bundle.info,
        "config": cfg.to_dict(),
        "seed_tree": seed_tree(cfg.seed),
        "git_commit": git_commit(),
        "versions": package_versions(),
        "specs": fed.run.specs(),
        "created": now_iso(),
    }


def already_recorded(results_dir: Path, dataset: str, run_id: str) -> dict[str, Any] | None:
    """The record of ``run_id`` when this user produced it (then one line on stderr says so and
    where it is), None when there is none. A file in its place that is not a valid record
    produced here (edited, someone else's, damaged) is never silently trusted nor overwritten:
    one line names it, why, and the ways on."""
    from fedbench.tracking.record_file import check_record_file
    from fedbench.tracking.records import record_path

    path = record_path(results_dir, dataset, run_id)
    if not path.exists():
        return None
    found = check_record_file(path)
    if found.own:
        print(f"already recorded: {path} (use --force to run again)", file=sys.stderr, flush=True)
        return found.own[0]
    why = (
        f"not produced here: {found.foreign[0].reason}"
        if found.foreign
        else f"not a valid record: {found.skipped[0][1]}"
    )
    raise ConfigError(
        f"{path} holds this configuration's record but it is {why}; "
        f"check it with `fedbench reproduce {path}`, "
        "move it away, or pass --force to run again and replace it"
    )
