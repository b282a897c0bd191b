"""benchmarks/curve_runs.py: the cells and the recorded command of a curve or recipe candidate,
with the sweep itself replaced by a stub that keeps what it was given."""

from __future__ import annotations

import pytest

from benchmarks import curve_runs


@pytest.fixture
def captured(monkeypatch):
    seen = {}

    def fake_run_grid(base, grid, leaderboards, workers):
        seen.update(base=base, grid=grid, workers=workers)
        return []

    monkeypatch.setattr("fedbench.sweep.run_grid", fake_run_grid)
    return seen


def test_a_method_option_reaches_each_drawn_method_and_the_recorded_command(captured):
    argv = ["ppt", "--rounds", "80", "--partition", "imbalanced", "--methods", "ppt"]
    argv += ["--lr-schedule", "linear", "--seeds", "1", "--method-option", "new_centre=drift"]
    argv += ["--method-option", "outer_loops=20", "--results", "somewhere"]
    assert curve_runs.main(argv) == 0
    grid, base = captured["grid"], captured["base"]
    assert grid.methods == ["ppt"] and grid.seeds == [1]
    assert grid.per_method["ppt"] == {"new_centre": "drift", "outer_loops": 20}  # 20 read as a number
    assert [p["name"] for p in grid.axes["partition"]] == ["imbalanced"]
    assert base.train.lr_schedule == "linear" and base.tracking.results_dir == "somewhere"
    assert base.tracking.command == (
        "python benchmarks/curve_runs.py ppt --rounds 80 --partition imbalanced --lr-schedule linear"
        " --method-option new_centre=drift --method-option outer_loops=20 --seeds 1"
    )


def test_without_options_a_seed_0_curve_keeps_the_make_bench_command(captured):
    assert curve_runs.main(["fedavg", "--rounds", "40", "--rates", "0.5"]) == 0
    assert captured["base"].tracking.command == (
        "make bench METHOD=fedavg PROFILE=quick ROUNDS=40 RATES=0.5 SEEDS=0 ABLATIONS=1"
    )
    assert all(not options for options in captured["grid"].per_method.values())


def test_a_method_option_without_a_value_gets_one_line(captured, capsys):
    assert curve_runs.main(["ppt", "--rounds", "8", "--method-option", "new_centre"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "curve_runs: --method-option: give KEY=VALUE, e.g. new_centre=drift; got 'new_centre'"
    assert not captured
