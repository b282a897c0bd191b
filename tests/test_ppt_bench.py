"""`make bench METHOD=ppt`: PPT beside its five baselines on PPT's three partitions of the image
task (the pool-size table and plot on the board: tests/test_leaderboard_extras.py)."""

import fedbench.bench as bench_module
from fedbench.methods.ppt.plan import PARTITIONS
from fedbench.sweep import cell_configs

BASELINES = ["fedavg-pt", "fedprox-pt", "scaffold-pt", "fedopt-pt", "gmm-pt", "pfedpg"]


def capture(monkeypatch):
    seen = {}

    def fake_run_grid(base, grid, **kw):
        seen.update(base=base, grid=grid, **kw)
        return []

    monkeypatch.setattr(bench_module, "run_grid", fake_run_grid)
    return seen


def test_ppt_plan_crosses_methods_and_partitions(monkeypatch):
    seen = capture(monkeypatch)
    bench_module.bench("ppt", "quick")
    base, grid = seen["base"], seen["grid"]
    assert grid.methods == ["ppt", *BASELINES]
    assert grid.axes["missing.type"] == ["text"] and grid.axes["missing.rate"] == [1.0]  # image only
    assert grid.axes["partition"] == PARTITIONS
    assert base.data.options["label"] == "subcategory"
    configs = cell_configs(base, grid)
    assert len(configs) == 7 * 3 * len(grid.seeds)
    parts = {
        (c.partition.name, c.partition.alpha if c.partition.name == "dirichlet" else None) for c in configs
    }
    assert parts == {("dirichlet", 0.5), ("dirichlet", 0.1), ("imbalanced", None)}
    assert all(c.missing.type == "text" and c.missing.rate == 1.0 and c.train.threads == 1 for c in configs)


def test_a_baseline_benches_the_same_grid_and_ablations_add_the_official_ppt(monkeypatch):
    seen = capture(monkeypatch)
    bench_module.bench("gmm-pt", "quick", ablations=True)
    assert seen["grid"].methods == [
        "gmm-pt",
        "fedavg-pt",
        "fedprox-pt",
        "scaffold-pt",
        "fedopt-pt",
        "pfedpg",
        "ppt-official",
    ]
    assert seen["grid"].axes["partition"] == PARTITIONS
