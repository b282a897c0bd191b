"""The measured tables of docs/ppt.md and docs/fedmvp.md (benchmarks/method_pages.py) against
the committed records, recomputed here by hand."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import method_pages


def records(folder: Path, sweep: str) -> list[dict]:
    out = [json.loads(p.read_text()) for p in sorted((folder / "emoji").glob("*.json"))]
    return [r for r in out if r.get("sweep") == sweep and r["status"] == "ok"]


def rows_of(text: str, title: str) -> list[list[str]]:
    part = text.split(title, 1)[1]
    lines = [ln for ln in part.split("\n\n", 2)[1].splitlines() if ln.startswith("| ")]
    return [[c.strip() for c in ln.split("|")[1:-1]] for ln in lines[1:]]


def test_ppt_pool_sizes_are_the_records_round_by_round(committed_results):
    recs = [
        r for r in records(committed_results, "bench-ppt-quick") if r["method"] in ("ppt", "ppt-official")
    ]
    assert recs
    table = method_pages.ppt_tables("bench-ppt-quick", committed_results)
    rows = rows_of(table, "**Pool size per round**")
    assert len(rows) == len(recs)  # one seed per cell in the quick sweep
    for rec in recs:
        p = rec["config"]["partition"]
        where = f"text@1, {p['name']}" + (f" alpha={p['alpha']:g}" if p["name"] == "dirichlet" else "")
        (row,) = [r for r in rows if r[0] == where and r[1] == rec["method"]]
        sizes = [x["pool_size"] for x in rec["rounds"]]
        assert row[2] == f"{sizes[0]:.1f}" and row[-2] == f"{sizes[-1]:.1f}"  # r1 and the last round
        used = sum(x["pool_used"] for x in rec["rounds"]) / len(sizes)
        assert row[-1] == f"{used:.1f}"


def test_fedmvp_weight_spread_by_hand(committed_results):
    recs = [r for r in records(committed_results, "bench-fedmvp-quick") if r["method"] == "fedmvp"]
    assert recs
    rec = recs[0]
    ratios, l1s = [], []
    for x in rec["rounds"]:
        w = x["aggregation_weights"]
        ratios.append(max(w) / min(w))
        l1s.append(sum(abs(v - 1 / len(w)) for v in w))
    ratio, l1, _ = method_pages.weight_spread(rec)
    assert ratio == pytest.approx(sum(ratios) / len(ratios)) and l1 == pytest.approx(sum(l1s) / len(l1s))


def test_paired_differences_pair_by_seed():
    def rec(acc):
        return {"final": {"complete": {"accuracy": acc}}}

    cells = {("s", "a"): {0: rec(0.5), 1: rec(0.7), 2: rec(0.9)}, ("s", "b"): {0: rec(0.4), 1: rec(0.4)}}
    # seeds 0 and 1 only: differences 10 and 30 points, mean 20, sample std 14.1
    assert method_pages.paired(cells, "s", "a", "b", "complete") == "20.0 ± 14.1 (2)"
    assert method_pages.paired(cells, "s", "a", "c", "complete") == "–"


def test_ppt_probe_push_minus_pull_by_hand(committed_results):
    probes = committed_results / "probes"

    def keyed(sweep, method):
        return {
            (method_pages.setting(r), r["seed"]): r for r in records(probes, sweep) if r["method"] == method
        }

    pull, push = keyed("probe-ppt-base", "ppt"), keyed("probe-ppt-push", "ppt")
    first = sorted({at for at, _ in push})[0]
    diffs = [
        100 * (push[k]["final"]["as_train"]["accuracy"] - pull[k]["final"]["as_train"]["accuracy"])
        for k in sorted(push)
        if k[0] == first and k in pull
    ]
    n = len(diffs)
    mean = sum(diffs) / n
    std = (sum((d - mean) ** 2 for d in diffs) / (n - 1)) ** 0.5
    rows = {r[0]: r for r in rows_of(method_pages.ppt_probes(probes), "seeds paired in brackets")}
    assert n == 3 and rows[first][1] == f"{mean:.1f} ± {std:.1f} ({n})"
