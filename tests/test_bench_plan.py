"""`make bench METHOD=X` sweeps X beside the baselines under X's protocol."""

import fedbench.sweep as sweep


def capture(monkeypatch):
    seen = {}

    def fake_run_grid(base, grid, **kw):
        seen.update(base=base, grid=grid, **kw)
        return []

    monkeypatch.setattr(sweep, "run_grid", fake_run_grid)
    return seen


def test_default_plan(monkeypatch):
    seen = capture(monkeypatch)
    sweep.bench("fedavg", "quick")
    g = seen["grid"]
    assert g.methods == ["fedavg", "fedprox"]
    assert g.rates == [0.1, 0.5, 0.9] and g.types == ["text"] and g.seeds == [0, 1]
    assert seen["base"].missing.protocol == "per_sample"
    assert seen["command"] == "make bench METHOD=fedavg PROFILE=quick"


def test_overrides_reach_the_grid(monkeypatch):
    seen = capture(monkeypatch)
    sweep.bench("fedprox", "quick", rates=[0.3], seeds=[1, 2])
    assert seen["grid"].methods == ["fedprox", "fedavg"]
    assert seen["grid"].rates == [0.3] and seen["grid"].seeds == [1, 2]
    assert 'RATES="0.3"' in seen["command"] and 'SEEDS="1 2"' in seen["command"]


def test_grid_cells_cross_everything():
    g = sweep.Grid(methods=["a", "b"], rates=[0.1, 0.9], types=["text"], alphas=[0.5, 1.0], seeds=[0, 1, 2])
    assert len(list(g.cells())) == 2 * 2 * 1 * 2 * 3
