"""`make bench METHOD=X` sweeps X beside the baselines under X's protocol."""

import fedbench.bench as bench_module
import fedbench.sweep as sweep


def capture(monkeypatch):
    seen = {}

    def fake_run_grid(base, grid, **kw):
        seen.update(base=base, grid=grid, command=base.tracking.command, **kw)
        return []

    monkeypatch.setattr(bench_module, "run_grid", fake_run_grid)
    return seen


def test_default_plan(monkeypatch):
    seen = capture(monkeypatch)
    bench_module.bench("fedavg", "quick")
    g = seen["grid"]
    assert g.methods == ["fedavg", "fedprox"]
    assert g.axes["missing.rate"] == [0.1, 0.5, 0.9] and g.axes["missing.type"] == ["text"] and g.seeds == [0, 1]
    assert seen["base"].missing.protocol == "per_sample"
    assert seen["command"] == "make bench METHOD=fedavg PROFILE=quick"


def test_overrides_reach_the_grid(monkeypatch):
    seen = capture(monkeypatch)
    bench_module.bench("fedprox", "quick", rates=[0.3], seeds=[1, 2], types=["image", "both"])
    assert seen["grid"].methods == ["fedprox", "fedavg"]
    assert seen["grid"].axes["missing.rate"] == [0.3] and seen["grid"].seeds == [1, 2]
    # the command can be pasted back into a shell: TYPES is kept and lists are quoted
    assert seen["command"] == "make bench METHOD=fedprox PROFILE=quick RATES=0.3 'SEEDS=1 2' 'TYPES=image both'"
    import shlex

    assert shlex.split(seen["command"])[-1] == "TYPES=image both"


def test_grid_cells_cross_everything():
    g = sweep.Grid(methods=["a", "b"], seeds=[0, 1, 2], axes={"missing.rate": [0.1, 0.9], "missing.type": ["text"], "partition.alpha": [0.5, 1.0]})
    cells = g.cells()
    assert len(cells) == 2 * 2 * 1 * 2 * 3
    assert len({tuple(sorted(c.items())) for c in cells}) == len(cells)
