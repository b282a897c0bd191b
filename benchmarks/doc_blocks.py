"""The generated blocks of README.md and docs/*.md: numbers a page shows come from committed records
through the generator its markers name, never by hand.

    <!-- gen:NAME ARG ... -->
    (generated markdown)
    <!-- /gen:NAME -->

    .venv/bin/python benchmarks/doc_blocks.py            # rewrite every block from the records
    .venv/bin/python benchmarks/doc_blocks.py --check    # exit 1, naming each stale block

Generators: ``fedprime-tables SWEEP`` (docs/fedprime.md: per missing type, one bench sweep's
committed runs, benchmarks/fedprime_table.py), ``record-rounds`` (each plan's plateau round from
the committed validation curves in results/curves, beside the rounds its BenchPlan records),
``curve-trend PLAN`` (each of a plan's curves, smoothed, every 10 rounds, with its plateau),
``record-sizing`` (the board of record's cells x rounds x measured seconds per round) and
``record-status`` (its cells committed so far, per plan), ``ppt-recipe`` (PPT's recipe candidates
judged by the rule fixed before they were drawn: benchmarks/ppt_recipe.py), ``ppt-pool-trajectory
NAME`` and ``ppt-pool-state NAME`` (PPT's pool over long runs, with one checkpoint's measurement in
docs/ppt-runs/NAME.json: benchmarks/ppt_pool.py), ``ppt-tables SWEEP`` and ``fedmvp-tables SWEEP``
(docs/ppt.md, docs/fedmvp.md: benchmarks/method_pages.py), and the
small statements of benchmarks/doc_numbers.py (``quick-bench-times``, ``full-profile-cost``,
``requirement-peaks``, ``cpu-kinds``).
tests/test_doc_blocks.py regenerates every block and compares.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

BLOCK = re.compile(
    r"<!-- gen:(?P<name>[\w-]+)(?P<args>[^>]*?) -->\n(?P<body>.*?)<!-- /gen:(?P=name) -->", re.S
)
RESULTS = ROOT / "results"  # the committed records (tests point this at a copy of git's HEAD)
MATCHER_RUNS = ROOT / "docs" / "matcher-runs"
PPT_RUNS = ROOT / "docs" / "ppt-runs"  # measurements of PPT runs in progress (benchmarks/ppt_pool.py)


def pages(root: Path = ROOT) -> list[Path]:
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


def fedprime_tables(sweep: str) -> str:
    from benchmarks.fedprime_table import load_sweep, render

    data = load_sweep(RESULTS, sweep)
    if not data:
        raise SystemExit(f"doc_blocks: no committed {sweep} runs in {RESULTS}/emoji")
    return render(data)


def record_rounds() -> str:
    from benchmarks.record_plan import rounds_table

    return rounds_table(RESULTS / "curves")


def curve_trend(plan: str) -> str:
    from benchmarks.record_plan import trend_table

    return trend_table(RESULTS / "curves", plan)


def record_sizing() -> str:
    from benchmarks.record_plan import sizing_table

    return sizing_table(RESULTS / "curves")


def record_check() -> str:
    from benchmarks.record_plan import check_table

    return check_table(RESULTS, RESULTS / "curves")


def record_status() -> str:
    from benchmarks.record_plan import status_table

    return status_table(RESULTS)


def ppt_recipe() -> str:
    from benchmarks.ppt_recipe import recipe_table

    return recipe_table(RESULTS)


def _measured(folder: Path, name: str) -> dict:
    """A committed measurement, ``folder/NAME.json`` (docs/matcher-runs, docs/ppt-runs)."""
    import json

    return json.loads((folder / f"{name}.json").read_text())


def ppt_pool_state(name: str) -> str:
    from benchmarks.ppt_pool import state_table

    return state_table(_measured(PPT_RUNS, name))


def ppt_pool_trajectory(name: str) -> str:
    from benchmarks.ppt_pool import trajectory_table

    return trajectory_table(RESULTS, _measured(PPT_RUNS, name))


def ppt_tables(sweep: str) -> str:
    from benchmarks.method_pages import ppt_tables as tables

    return tables(sweep, RESULTS)


def fedmvp_tables(sweep: str) -> str:
    from benchmarks.method_pages import fedmvp_tables as tables

    return tables(sweep, RESULTS)


def ppt_probes() -> str:
    from benchmarks.method_pages import ppt_probes as tables

    return tables(RESULTS / "probes")


def fedmvp_probes() -> str:
    from benchmarks.method_pages import fedmvp_probes as tables

    return tables(RESULTS / "probes")


def quick_bench_times() -> str:
    from benchmarks.doc_numbers import quick_bench_times as times

    return times(RESULTS / "emoji")


def full_profile_cost() -> str:
    from benchmarks.doc_numbers import full_profile_cost as cost

    return cost(RESULTS / "curves-full" / "emoji")


def cpu_kinds() -> str:
    from benchmarks.doc_numbers import cpu_kinds as kinds

    return kinds(RESULTS)


def requirement_peaks() -> str:
    from benchmarks.doc_numbers import requirement_peaks as peaks

    return peaks()


def matcher_table(name: str) -> str:
    from benchmarks.matcher_scenarios import table

    return table(_measured(MATCHER_RUNS, name))


def matcher_summary(*names: str) -> str:
    """The summary lines of each named run (e.g. the held-out seeds), one paragraph per run."""
    from benchmarks.matcher_scenarios import summary

    out = []
    for name in names:
        data = _measured(MATCHER_RUNS, name)
        out += [f"seed {data['seed']}, {data['outer_loops']} outer loops:", "", *summary(data), ""]
    return "\n".join(out)


GENERATORS: dict[str, Callable[..., str]] = {
    "fedprime-tables": fedprime_tables,
    "record-rounds": record_rounds,
    "curve-trend": curve_trend,
    "record-sizing": record_sizing,
    "record-status": record_status,
    "record-check": record_check,
    "ppt-recipe": ppt_recipe,
    "ppt-tables": ppt_tables,
    "ppt-pool-state": ppt_pool_state,
    "ppt-pool-trajectory": ppt_pool_trajectory,
    "fedmvp-tables": fedmvp_tables,
    "ppt-probes": ppt_probes,
    "fedmvp-probes": fedmvp_probes,
    "quick-bench-times": quick_bench_times,
    "full-profile-cost": full_profile_cost,
    "requirement-peaks": requirement_peaks,
    "cpu-kinds": cpu_kinds,
    "matcher-table": matcher_table,
    "matcher-summary": matcher_summary,
}


def blocks(text: str) -> list[re.Match]:
    return list(BLOCK.finditer(text))


def generate(match: re.Match) -> str:
    name, args = match["name"], match["args"].split()
    if name not in GENERATORS:
        raise SystemExit(f"doc_blocks: no generator named {name!r} (have: {', '.join(GENERATORS)})")
    return GENERATORS[name](*args).strip() + "\n"


def rewrite(text: str) -> str:
    """``text`` with every block's body replaced by its generator's output."""
    out, at = [], 0
    for m in blocks(text):
        out += [text[at : m.start("body")], generate(m)]
        at = m.end("body")
    return "".join(out) + text[at:]


def stale(root: Path = ROOT) -> list[str]:
    """'page: block' for every block whose body differs from what its generator writes now."""
    found = []
    for page in pages(root):
        text = page.read_text()
        for m in blocks(text):
            if m["body"] != generate(m):
                found.append(f"{page.relative_to(root)}: gen:{m['name']}{m['args']}")
    return found


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="only report stale blocks (exit 1 if any)")
    ap.add_argument("pages", nargs="*", type=Path, help="only these pages (default: README.md and docs/*.md)")
    ns = ap.parse_args(argv)
    if ns.check:
        bad = stale()
        for line in bad:
            print(f"stale: {line} (run python benchmarks/doc_blocks.py)")
        return 1 if bad else 0
    from fedbench.safe_io import atomic_write_text

    for page in [p.resolve() for p in ns.pages] or pages():
        text = page.read_text()
        if blocks(text):
            new = rewrite(text)
            if new != text:
                atomic_write_text(page, new)
                print(f"doc_blocks: wrote {page.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
