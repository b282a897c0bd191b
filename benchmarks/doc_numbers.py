"""Small generated statements of README.md and docs/*.md (benchmarks/doc_blocks.py), each from
committed evidence: the quick benches' run times (results/emoji), the full profile's cost per round
(results/curves-full) and the real tables' peak host memory (docs/requirements)."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _records(folder: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]


def quick_bench_times(results: Path) -> str:
    """Per quick bench section: its runs and the sum of their wall times (one CPU thread each)."""
    per: dict[str, list[float]] = defaultdict(list)
    precision: dict[str, set] = defaultdict(set)
    for rec in _records(results):
        if str(rec.get("sweep", "")).endswith("-quick") and rec.get("status") == "ok":
            per[rec["sweep"]].append(rec["wall_time_s"])
            precision[rec["sweep"]].add(rec["config"]["train"]["precision"])
    head = "| section | runs | sum of run wall times | longest run | precision |\n|---|---|---|---|---|"
    rows = [
        f"| {sweep} | {len(t)} | {sum(t) / 60:.0f} min | {max(t):.0f} s | "
        f"{', '.join(sorted(precision[sweep]))} |"
        for sweep, t in sorted(per.items())
    ]
    return "\n".join([head, *rows])


def full_profile_cost(curves: Path) -> str:
    """Seconds per round of the committed full-profile runs (wall time / rounds)."""
    head = "| section | method | missing | rounds | s per round | precision |\n|---|---|---|---|---|---|"
    rows = []
    for r in sorted(_records(curves), key=lambda r: (r["sweep"], r["method"])):
        missing, n = r["config"]["missing"], len(r["rounds"])
        rows.append(
            f"| {r['sweep']} | {r['method']} | {missing['type']}@{missing['rate']:g} | {n} | "
            f"{r['wall_time_s'] / n:.0f} | {r['config']['train']['precision']} |"
        )
    return "\n".join([head, *rows])


def requirement_peaks(reports: Path = ROOT / "docs" / "requirements") -> str:
    """One sentence: FedMVP's smoke peak host RAM against the other tables'."""
    peaks = defaultdict(list)
    for rep in _records(reports):
        peaks[rep["method"] == "fedmvp"].append(rep["peak_rss_gib"])
    mvp, rest = peaks[True], peaks[False]
    return (
        f"FedMVP's peak host RAM ({min(mvp):.1f}-{max(mvp):.1f} GiB against "
        f"{min(rest):.1f}-{max(rest):.1f} GiB for the other tables) is not broken down yet; "
        "it is within every budget here."
    )
