"""Small generated statements of README.md and docs/*.md (benchmarks/doc_blocks.py), each from
committed evidence: the quick benches' run times (results/emoji), the full profile's cost per round
(results/curves-full) and the real tables' peak host memory (docs/requirements)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from benchmarks.requirements import load as load_reports
from benchmarks.run_files import run_files
from fedbench.tracking.board_stats import table_head, table_row

ROOT = Path(__file__).resolve().parent.parent


def quick_bench_times(results: Path) -> str:
    """Per quick bench section: its runs and the sum of their wall times (one CPU thread each)."""
    per: dict[str, list[float]] = defaultdict(list)
    precision: dict[str, set] = defaultdict(set)
    for rec in run_files(results):
        if str(rec.get("sweep", "")).endswith("-quick"):
            per[rec["sweep"]].append(rec["wall_time_s"])
            precision[rec["sweep"]].add(rec["config"]["train"]["precision"])
    lines = table_head(["section", "runs", "sum of run wall times", "longest run", "precision"])
    for sweep, t in sorted(per.items()):
        lines.append(
            table_row(
                [
                    sweep,
                    str(len(t)),
                    f"{sum(t) / 60:.0f} min",
                    f"{max(t):.0f} s",
                    ", ".join(sorted(precision[sweep])),
                ]
            )
        )
    return "\n".join(lines)


def full_profile_cost(curves: Path) -> str:
    """Seconds per round of the committed full-profile runs (wall time / rounds)."""
    lines = table_head(["section", "method", "missing", "rounds", "s per round", "precision"])
    for r in sorted(run_files(curves), key=lambda r: (r["sweep"], r["method"])):
        missing, n = r["config"]["missing"], len(r["rounds"])
        lines.append(
            table_row(
                [
                    r["sweep"],
                    r["method"],
                    f"{missing['type']}@{missing['rate']:g}",
                    str(n),
                    f"{r['wall_time_s'] / n:.0f}",
                    r["config"]["train"]["precision"],
                ]
            )
        )
    return "\n".join(lines)


def requirement_peaks(reports: Path = ROOT / "docs" / "requirements") -> str:
    """One sentence: FedMVP's smoke peak host RAM against the other tables'."""
    peaks = defaultdict(list)
    for rep in load_reports(reports):
        peaks[rep["method"] == "fedmvp"].append(rep["peak_rss_gib"])
    mvp, rest = peaks[True], peaks[False]
    return (
        f"FedMVP's peak host RAM ({min(mvp):.1f}-{max(mvp):.1f} GiB against "
        f"{min(rest):.1f}-{max(rest):.1f} GiB for the other tables) is not broken down yet; "
        "it is within every budget here."
    )
