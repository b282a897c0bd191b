"""Tracking: run records (the source of truth), provenance, leaderboards, plots and W&B.

Importing this package is cheap: matplotlib and wandb are only imported when a plot is drawn or a
W&B run is actually enabled.
"""

from fedbench.tracking.leaderboard import render_leaderboard, write_leaderboard
from fedbench.tracking.plots import plot_metric_vs_rate
from fedbench.tracking.provenance import git_commit, now_iso, package_versions
from fedbench.tracking.records import (
    SCHEMA_VERSION,
    config_hash,
    dedupe_records,
    find_record,
    load_records,
    write_record,
)
from fedbench.tracking.wandb_log import WandbRun

__all__ = [
    "SCHEMA_VERSION",
    "WandbRun",
    "config_hash",
    "dedupe_records",
    "find_record",
    "git_commit",
    "load_records",
    "now_iso",
    "package_versions",
    "plot_metric_vs_rate",
    "render_leaderboard",
    "write_leaderboard",
    "write_record",
]
