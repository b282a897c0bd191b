"""What each paper table needs (host RAM, disk, GPU memory), from the smoke reports of its runs on
full-size stand-ins, as a markdown table in docs/real-benchmarks.md (between its markers).

    HF_HOME=<stand-in weights> .venv/bin/fedbench run --config experiments/<table>.yaml --smoke true \\
        --data.options '{"root": "<stand-in>"}' --tracking.results_dir <dir>     # one report per table
    .venv/bin/python benchmarks/requirements.py --reports docs/requirements --write docs/real-benchmarks.md

The reports committed in docs/requirements/ are the evidence; tests/test_docs_requirements.py
regenerates the table from them and compares it with the page.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
START, END = "<!-- requirements:start -->", "<!-- requirements:end -->"
GIB = 2**30


def experiment_file(dataset: str, method: str) -> str:
    """The experiments/ file whose dataset and method a smoke report names."""
    import yaml

    for path in sorted((ROOT / "experiments").glob("*.yaml")):
        cfg = yaml.safe_load(path.read_text()) or {}
        if cfg.get("data", {}).get("dataset") == dataset and cfg.get("method", {}).get("name") == method:
            return path.name
    raise SystemExit(f"requirements: no experiment file runs {method} on {dataset}")


def collect(smoke_dir: Path, out: Path) -> None:
    """Copy the smoke reports of ``smoke_dir`` (``<dataset>/<method>.json``) into ``out``, each
    naming its experiment file."""
    from fedbench.safe_io import atomic_write_text

    for path in sorted(Path(smoke_dir).glob("*/*.json")):
        report = json.loads(path.read_text())
        report["table"] = experiment_file(report["dataset"], report["method"])
        report.pop("path", None)
        atomic_write_text(
            out / f"{Path(report['table']).stem}.json", json.dumps(report, indent=1, sort_keys=True) + "\n"
        )


def load(folder: Path) -> list[dict]:
    reports = [json.loads(p.read_text()) for p in sorted(Path(folder).glob("*.json"))]
    return sorted(reports, key=lambda r: r.get("table", ""))


def _gib(n: float) -> str:
    return f"{n / GIB:.1f}"


def table(reports: list[dict]) -> str:
    head = [
        "table (experiment file)",
        "method",
        "rows",
        "pixel cache GiB",
        "token cache GiB",
        "host RAM GiB (smoke peak)",
        "GPU GiB at the file's batch (estimate)",
        "file batch",
        "first setup s",
        "smoke run s",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for r in reports:
        cols = r["columns"]
        pixels = sum(c.get("file_bytes", 0) for n, c in cols.items() if n == "pixels")
        tokens = sum(c.get("file_bytes", 0) for n, c in cols.items() if n in ("text_ids", "text_keep"))
        cells = [
            f"`{r['table']}`",
            r["method"],
            f"{r['rows']:,}",
            _gib(pixels),
            _gib(tokens),
            f"{r['peak_rss_gib']:.1f}",
            f"{r['gpu_estimate_gib']:.1f}",
            str(r["file_batch"]),
            f"{r['setup_s']:.0f}",
            f"{r['run_s']:.0f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def replace_block(page: str, block: str) -> str:
    if START not in page or END not in page:
        raise SystemExit(f"requirements: the page has no {START} ... {END} block")
    head, rest = page.split(START, 1)
    return head + START + "\n" + block + "\n" + END + rest.split(END, 1)[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reports", type=Path, default=ROOT / "docs" / "requirements")
    ap.add_argument("--write", type=Path, default=None, help="the page whose requirements block to replace")
    ap.add_argument(
        "--collect", type=Path, default=None, help="a smoke results folder to copy the reports from first"
    )
    args = ap.parse_args()
    if args.collect is not None:
        collect(args.collect, args.reports)
    block = table(load(args.reports))
    if args.write is None:
        print(block)
        return
    from fedbench.safe_io import atomic_write_text

    atomic_write_text(args.write, replace_block(args.write.read_text(), block))
    print(f"requirements: wrote {args.write}")


if __name__ == "__main__":
    main()
