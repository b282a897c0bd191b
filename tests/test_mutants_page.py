"""docs/mutants.md is generated from the committed snapshot of mutmut's results
(docs/mutants-results.json) and the committed reasons (docs/mutants-reasons.yaml)."""

from __future__ import annotations

import json

from benchmarks import mutants


def snapshot() -> dict:
    return json.loads(mutants.SNAPSHOT.read_text())


def test_the_page_is_what_the_snapshot_and_the_reasons_give():
    assert mutants.page_of(snapshot(), mutants.load_reasons()) == mutants.PAGE.read_text(), (
        "docs/mutants.md is stale: python benchmarks/mutants.py --from-snapshot"
    )


def test_the_snapshots_counts_add_up():
    snap = snapshot()
    stats, files = snap["stats"], snap["files"]
    per_status = {}
    for counts in files.values():
        for status, n in counts.items():
            per_status[status] = per_status.get(status, 0) + n
    assert sum(per_status.values()) == stats["total"]
    assert per_status.get("killed", 0) == stats["killed"]
    assert (
        per_status.get("survived", 0)
        == stats["survived"]
        == sum(v == "survived" for v in snap["left"].values())
    )
    assert set(snap["diffs"]) == set(snap["left"])


def test_every_mutant_not_killed_has_a_reason():
    assert sorted(set(snapshot()["left"]) - set(mutants.load_reasons())) == []
