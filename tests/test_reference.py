"""A user's runs go to their own folder and are set beside the reference (the committed records):
identical, within the reference's 95% CI over seeds, or outside it (fedbench/tracking/reference.py)."""

from __future__ import annotations

import copy

from committed import committed_record, committed_record_paths
from fixtures import hashed

import fedbench.bench as bench_module
from fedbench.tracking.records import write_record
from fedbench.tracking.reference import cell_of, reference_line


def _cell(seeds: dict[int, float]) -> list[dict]:
    """Records of one cell (an emoji fedavg config from git), one per seed, with the given accuracy."""
    base = next(r for r in map(committed_record, committed_record_paths()) if r["method"] == "fedavg")
    out = []
    for seed, acc in seeds.items():
        r = copy.deepcopy(base)
        r["seed"], r["identity"]["seed"], r["config"]["seed"] = seed, seed, seed
        r["final"]["as_train"][r["metric"]] = acc
        out.append(hashed(r))
    return out


def test_identical_within_and_outside_the_reference():
    reference = _cell({0: 0.50, 1: 0.60, 2: 0.70})
    same = copy.deepcopy(reference[1])
    assert "identical to the reference" in reference_line(same, reference)
    near = copy.deepcopy(reference[1])
    near["final"]["as_train"][near["metric"]] = 0.58  # another machine: same config, close number
    assert "is within the reference's 95% CI" in reference_line(near, reference)
    far = copy.deepcopy(near)
    far["final"]["as_train"][far["metric"]] = 0.90
    line = reference_line(far, reference)
    assert "is outside the reference's 95% CI [50.00, 70.00]" in line and "over 3 seeds" in line
    assert "bf16-mixed" in line or "32-true" in line  # both sides' precision is named
    elsewhere = copy.deepcopy(near)  # a CPU without native bf16: `auto` ran it in the other precision
    precision = elsewhere["identity"]["train"]["precision"]
    elsewhere["identity"]["train"]["precision"] = "32-true" if precision == "bf16-mixed" else "bf16-mixed"
    assert cell_of(elsewhere) == cell_of(near)
    assert "is within the reference's 95% CI" in reference_line(elsewhere, reference)
    other = copy.deepcopy(near)
    other["identity"]["missing"]["rate"] = 0.33  # another configuration: another cell
    assert cell_of(other) != cell_of(near)
    assert "no reference for this configuration" in reference_line(other, reference)


def test_bench_writes_to_runs_and_compares_with_the_reference(tmp_path, monkeypatch, capsys):
    """A fresh clone's bench trains into runs/ (nothing of the reference is reused) and prints the
    comparison with results/."""
    reference = _cell({0: 0.50, 1: 0.60})
    for r in reference:
        write_record(tmp_path / "results", r)
    seen = {}

    def fake_run_grid(base, grid, **kw):
        seen["results"] = base.tracking.results_dir
        mine = copy.deepcopy(reference[0])
        mine["config"]["tracking"]["results_dir"] = base.tracking.results_dir
        return [mine]

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(bench_module, "run_grid", fake_run_grid)
    bench_module.bench("fedavg", "quick", wandb=False)
    assert seen["results"] == "runs"
    err = capsys.readouterr().err
    assert "against the reference in results:" in err and "identical to the reference" in err
