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


def cpu_kinds(results: Path) -> str:
    """FedAvg's quick cells at seed 0 on the two kinds of CPU: the reference (``results/emoji``,
    bf16-mixed where bf16 is native) beside ``results/cpu-32-true`` (32-true, what ``auto`` gives on a
    CPU without native bf16): wall time, its ratio, and the headline accuracy of each."""
    sweep = "bench-fedavg-quick"

    def cell(r: dict) -> tuple:
        return r["method"], r["config"]["missing"]["type"], r["config"]["missing"]["rate"]

    reference = {cell(r): r for r in run_files(results / "emoji", sweep) if r["seed"] == 0}
    lines = table_head(["method", "missing", "reference", "here", "wall time", "as_train accuracy"])
    for r in sorted(run_files(results / "cpu-32-true" / "emoji", sweep), key=cell):
        ref = reference.get(cell(r))
        if ref is None:
            continue
        method, kind, rate = cell(r)
        lines.append(
            table_row(
                [
                    method,
                    f"{kind}@{rate:g}",
                    _numerics(ref),
                    _numerics(r),
                    f"{ref['wall_time_s']:.0f} s vs {r['wall_time_s']:.0f} s "
                    f"({r['wall_time_s'] / ref['wall_time_s']:.1f}x)",
                    f"{_accuracy(ref):.2f} vs {_accuracy(r):.2f}",
                ]
            )
        )
    return "\n".join(lines)


def _accuracy(record: dict) -> float:
    return 100 * record["final"]["as_train"]["accuracy"]


def _numerics(record: dict) -> str:
    """A record's precision and CPU kernels (records from before ``versions.cpu`` was stamped made
    bf16-mixed only where the CPU had native bf16)."""
    precision = record["config"]["train"]["precision"]
    cpu = (record.get("versions") or {}).get("cpu")
    if cpu is None:
        cpu = "native bf16" if precision == "bf16-mixed" else "kernels not stamped"
    return f"{precision}, {cpu}"
