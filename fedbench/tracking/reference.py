"""How a user's run compares with the reference: the committed records (``results/``) that the
committed boards are made of.

A user's runs go to their own folder (``runs/`` by default), so a fresh clone trains instead of
finding every cell recorded. Each run is then set beside the reference cell of the same
configuration (its identity without the seed and the precision): **identical** where the reference
holds the same run (same run id) with the same final metrics, bit for bit; else **within** or **outside** the
reference's 95% CI of the cell's headline metric over its seeds (seed_stats.bootstrap_ci; with
one reference seed there is no CI and the line says so). Each line names the precision, machine
and versions of both sides, since those decide whether bit-identity can be expected at all.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fedbench.tracking.identity import config_hash, record_identity
from fedbench.tracking.records import is_diverged, load_records, metric_value
from fedbench.tracking.seed_stats import bootstrap_ci

__all__ = ["cell_of", "compare_with_reference", "reference_line"]

HEADLINE = "as_train"  # the test condition the board heads each plan with


def cell_of(record: dict[str, Any]) -> str:
    """The reference cell a run belongs to: its identity without the seed and the precision (how it
    was computed, not what: a 32-true run, where this CPU has no native bf16, is compared with the
    bf16-mixed reference, and the line names both)."""
    cell = {k: v for k, v in record_identity(record).items() if k != "seed"}
    if isinstance(cell.get("train"), dict):
        cell["train"] = {k: v for k, v in cell["train"].items() if k != "precision"}
    return config_hash(cell)


def _side(record: dict[str, Any]) -> str:
    config, versions = record.get("config") or {}, record.get("versions") or {}
    specs = record.get("specs") or {}
    method_version = (specs.get("method") or {}).get("version", 1)
    machine = str(versions.get("platform") or "?").split("-with-")[0]
    if versions.get("cpu"):
        machine += f" {versions['cpu']}"
    return (
        f"{(config.get('train') or {}).get('precision', '?')}, {machine}, "
        f"fedbench {versions.get('fedbench', '?')}, "
        f"torch {versions.get('torch', '?')}, {record.get('method', '?')} v{method_version}"
    )


def reference_line(record: dict[str, Any], reference: list[dict[str, Any]]) -> str:
    """One line: how ``record`` compares with the reference records of its cell (``reference``:
    every reference record of its dataset; those of other cells are ignored)."""
    metric = record.get("metric") or "accuracy"
    name = f"{record.get('method')} seed {record.get('seed')} ({record.get('run_id')})"
    key = cell_of(record)
    cell = [r for r in reference if not is_diverged(r) and cell_of(r) == key]
    if not cell:
        return f"{name}: no reference for this configuration"
    mine = metric_value(record, metric, HEADLINE)
    same = next((r for r in cell if r.get("run_id") == record.get("run_id")), None)
    if same is not None and same.get("final") == record.get("final"):
        return f"{name}: identical to the reference ({_side(record)})"
    values = [v for r in cell if (v := metric_value(r, metric, HEADLINE)) is not None]
    both = f"here {_side(record)}; reference {_side(cell[0])}"
    if mine is None or is_diverged(record):
        return f"{name}: diverged or no {metric} here, the reference has {len(values)} seed(s) ({both})"
    shown = f"{HEADLINE} {metric} {100 * mine:.2f}"
    if len(values) < 2:
        return f"{name}: {shown} vs the reference's single seed {100 * values[0]:.2f}, no CI ({both})"
    mean, (lo, hi) = sum(values) / len(values), bootstrap_ci([values])
    verdict = "within" if lo <= mine <= hi else "outside"
    return (
        f"{name}: {shown} is {verdict} the reference's 95% CI [{100 * lo:.2f}, {100 * hi:.2f}] "
        f"(mean {100 * mean:.2f} over {len(values)} seeds; {both})"
    )


def compare_with_reference(records: list[dict[str, Any]], reference_dir: str | Path) -> list[str]:
    """One line per record (see :func:`reference_line`) against ``reference_dir``'s records."""
    by_dataset: dict[str, list[dict[str, Any]]] = {}
    out = []
    for record in records:
        dataset = str(record.get("dataset"))
        if dataset not in by_dataset:
            by_dataset[dataset] = load_records(Path(reference_dir), dataset)
        out.append(reference_line(record, by_dataset[dataset]))
    return out
