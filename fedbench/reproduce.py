"""``fedbench reproduce RECORD``: rerun a record's configuration here and compare its numbers.

A record the board does not believe (not signed with this user's key and not committed: see
``fedbench/tracking/record_trust.py``) is only worth as much as its numbers can be re-derived. This
reruns the record's own config, into a results folder of its own (``runs/reproduced`` by default,
never the record's folder), and compares every final test metric: identical (same precision,
CPU kernels and versions make fedbench's runs bit for bit equal; a note says when the kernels
differ), or which values differ and by how much. The rerun's record is signed here, so once it
matches, the board can show it as yours.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

from fedbench.bench import REFERENCE  # the committed records
from fedbench.errors import ConfigError

DEFAULT_RESULTS = "runs/reproduced"
USAGE = (
    "usage: fedbench reproduce RECORD|RUN_ID [--results FOLDER]   "
    f"(FOLDER: where the rerun's record goes, default {DEFAULT_RESULTS})"
)


def reproduce_command(argv: list[str]) -> int:
    """``fedbench reproduce RECORD [--results FOLDER]``: 0 when reproduced, 1 when not."""
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0
    record, rest = argv[0], argv[1:]
    if rest[:1] == ["--results"] and len(rest) == 2:
        results = rest[1]
    elif len(rest) == 1 and rest[0].startswith("--results="):
        results = rest[0].split("=", 1)[1]
    elif not rest:
        results = DEFAULT_RESULTS
    else:
        raise ConfigError(f"fedbench reproduce: unexpected {' '.join(rest)!r}; {USAGE}")
    return 0 if reproduce(record, results) else 1


def reproduce(record_path: str | Path, results: str | Path = DEFAULT_RESULTS, out=None) -> bool:
    """Rerun the record at ``record_path`` into ``results`` and print the comparison; True when
    every final metric is identical."""
    from fedbench.config import from_dict
    from fedbench.federation.loop import run_experiment
    from fedbench.federation.resolve import run_id_of
    from fedbench.tracking.record_file import check_record_file
    from fedbench.tracking.records import load_records
    from fedbench.tracking.reference import reference_line

    out = out or sys.stdout  # looked up per call: a default bound at import would keep a stream that is gone
    path = find_record_file(record_path)
    found = check_record_file(path)
    if found.skipped:
        raise ConfigError(f"reproduce: {path} is not a valid run record ({found.skipped[0][1]})")
    record = (found.own or [f.record for f in found.foreign])[0]
    if not isinstance(record.get("config"), dict):
        raise ConfigError(
            f"reproduce: {path} holds no config to rerun (a record from before configs were stored)"
        )
    if Path(results).resolve() == path.parent.parent.resolve():
        raise ConfigError(
            f"reproduce: --results {results} is the record's own results folder; give another one"
        )
    cfg = from_dict(record["config"])
    if run_id_of(cfg) != record["run_id"]:
        raise ConfigError(
            f"reproduce: {path}'s config gives run id {run_id_of(cfg)} here, not its {record['run_id']} "
            "(another fedbench version, or a plugin that is not installed here)"
        )
    cfg.tracking.results_dir, cfg.tracking.wandb = str(results), False
    if reason := why_not_bit_for_bit(record):
        print(
            f"note: {path} cannot repeat bit for bit here: {reason}; the comparison says by how much",
            file=out,
        )
    rerun = run_experiment(cfg)
    differences = compare(record, rerun)
    where = Path(results) / cfg.data.dataset / f"{record['run_id']}.json"
    if not differences:
        print(f"reproduced: every final metric of {path} is identical in {where}", file=out)
        return True
    print(f"not reproduced: {len(differences)} final metric(s) of {path} differ in {where}:", file=out)
    for line in differences:
        print(f"  {line}", file=out)
    print(f"  {reference_line(rerun, load_records(path.parent.parent, record['dataset']))}", file=out)
    return False


def why_not_bit_for_bit(record: dict[str, Any]) -> str | None:
    """Why a rerun here cannot equal ``record`` bit for bit (its CPU kernels differ from this
    machine's), or ``None`` where it can (or the record trained on a GPU: not judged)."""
    from fedbench.hardware import numerics_mismatch

    train = (record.get("config") or {}).get("train") or {}
    if train.get("accelerator") not in ("cpu", None):
        return None
    return numerics_mismatch(str(train.get("precision")), (record.get("versions") or {}).get("cpu"))


def find_record_file(given: str | Path) -> Path:
    """``given`` as a record file: a path, or a run id looked up under ``results/`` (the reference)."""
    path = Path(given)
    if path.is_file():
        return path
    name = str(given)
    if len(name) == 16 and all(c in "0123456789abcdef" for c in name):
        found = sorted(Path(REFERENCE).glob(f"*/{name}.json")) + sorted(
            Path(REFERENCE).glob(f"*/*/{name}.json")
        )
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise ConfigError(
                f"reproduce: run id {name} is in {len(found)} records "
                f"({', '.join(map(str, found))}); give the file"
            )
        raise ConfigError(
            f"reproduce: no record of run id {name} under {REFERENCE}/ "
            "(run from the fedbench checkout, or give the file)"
        )
    raise ConfigError(
        f"reproduce: {path} is not a file; give a run record (results/<dataset>/<run_id>.json) or its run id"
    )


def compare(record: dict[str, Any], rerun: dict[str, Any]) -> list[str]:
    """One line per final metric whose value differs between ``record`` and ``rerun`` (both
    diverged, or both missing it, count as the same)."""
    if (record.get("status") == "diverged") != (rerun.get("status") == "diverged"):
        return [f"status: {record.get('status', 'ok')} in the record, {rerun.get('status', 'ok')} here"]
    mine, theirs = record.get("final") or {}, rerun.get("final") or {}
    out = []
    for condition in sorted(set(mine) | set(theirs)):
        a, b = mine.get(condition) or {}, theirs.get(condition) or {}
        for metric in sorted(set(a) | set(b)):
            x, y = a.get(metric), b.get(metric)
            if x == y or (isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y)):
                continue
            delta = (
                f" ({100 * (y - x):+.2f} points)"
                if isinstance(x, (int, float)) and isinstance(y, (int, float))
                else ""
            )
            out.append(f"{condition} {metric}: {x} in the record, {y} here{delta}")
    return out
