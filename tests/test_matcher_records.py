"""docs/matcher.md's tables come from the committed runs in docs/matcher-runs (benchmarks/doc_blocks.py
renders them); here one row of each run is measured again and must match its record exactly (the
matcher is seeded and runs on one thread)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from benchmarks.matcher_scenarios import run
from fedbench.aggregation.matching_scenarios import make_scenario

RUNS = sorted((Path(__file__).resolve().parents[1] / "docs" / "matcher-runs").glob("*.json"))


@pytest.mark.parametrize("path", RUNS, ids=[p.stem for p in RUNS])
def test_a_row_of_each_committed_run_measures_the_same_again(path):
    data = json.loads(path.read_text())
    if data["outer_loops"] > 5:
        pytest.skip("50 outer loops take too long for make test; the 5-loop runs check the same code")
    row = min(data["rows"], key=lambda r: r["held"])  # the smallest scenario: seconds
    torch.set_num_threads(1)
    scenario = make_scenario(**row["spec"], seed=data["seed"])
    assert scenario.name == row["scenario"] and scenario.k_held == row["held"]
    for setting, (found, ari) in row["cells"].items():
        again = run(setting, scenario, data["outer_loops"], data["seed"])
        assert again[0] == found and again[1] == pytest.approx(ari, abs=1e-12), setting


def test_every_run_docs_matcher_md_shows_is_committed():
    import re

    page = (Path(__file__).resolve().parents[1] / "docs" / "matcher.md").read_text()
    named = set(re.findall(r"<!-- gen:matcher-(?:table|summary) ([^>]*?) -->", page))
    names = {n for group in named for n in group.split()}
    assert names and names <= {p.stem for p in RUNS}
