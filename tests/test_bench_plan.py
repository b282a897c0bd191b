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
    assert (
        g.axes["missing.rate"] == [0.1, 0.5, 0.9] and g.axes["missing.type"] == ["text"] and g.seeds == [0, 1]
    )
    assert seen["base"].missing.protocol == "per_sample"
    assert seen["command"] == "make bench METHOD=fedavg PROFILE=quick"


def test_overrides_reach_the_grid(monkeypatch):
    seen = capture(monkeypatch)
    bench_module.bench("fedprox", "quick", rates=[0.3], seeds=[1, 2], types=["image", "both"])
    assert seen["grid"].methods == ["fedprox", "fedavg"]
    assert seen["grid"].axes["missing.rate"] == [0.3] and seen["grid"].seeds == [1, 2]
    # the command can be pasted back into a shell: TYPES is kept and lists are quoted
    assert (
        seen["command"] == "make bench METHOD=fedprox PROFILE=quick RATES=0.3 'SEEDS=1 2' 'TYPES=image both'"
    )
    import shlex

    assert shlex.split(seen["command"])[-1] == "TYPES=image both"


def test_grid_cells_cross_everything():
    g = sweep.Grid(
        methods=["a", "b"],
        seeds=[0, 1, 2],
        axes={"missing.rate": [0.1, 0.9], "missing.type": ["text"], "partition.alpha": [0.5, 1.0]},
    )
    cells = g.cells()
    assert len(cells) == 2 * 2 * 1 * 2 * 3
    assert len({tuple(sorted(c.items())) for c in cells}) == len(cells)


def test_paper_table_on_a_real_dataset(monkeypatch):
    """DATASET=food101 runs FedPrime's table: the experiments/ YAML's setting, the table's rows
    (the plan's methods plus centralized), one seed in quick, results and boards kept per paper."""
    import yaml

    seen = capture(monkeypatch)
    bench_module.bench("fedprime", "quick", dataset="food101", wandb=False)
    written = yaml.safe_load((bench_module.REPO / "experiments/fedprime_food101.yaml").read_text())
    base, grid = seen["base"], seen["grid"]
    assert base.data.dataset == written["data"]["dataset"] == "food101"
    assert base.backbone.name == written["backbone"]["name"] and base.train.lr == written["train"]["lr"]
    assert base.missing.protocol == written["missing"]["protocol"]  # the paper's, not the emoji plan's
    assert grid.methods[0] == "fedprime" and "centralized" in grid.methods and "fedmsplit" in grid.methods
    assert grid.axes == {"missing.type": ["text", "image", "both"]} and grid.seeds == [0]
    # the user's own folder; the YAML's results/fedprime is the reference it is compared with
    assert (
        written["tracking"]["results_dir"] == "results/fedprime"
        and base.tracking.results_dir == "runs/fedprime"
    )
    assert seen["leaderboards"] == "runs/leaderboards/fedprime"
    assert seen["command"] == "make bench METHOD=fedprime PROFILE=quick DATASET=food101"


def test_paper_table_rates_and_seeds_override(monkeypatch):
    seen = capture(monkeypatch)
    bench_module.bench(
        "fedmvp", "full", dataset="cub200", rates=[0.5], seeds=[3], results="/tmp/r", leaderboards="/tmp/l"
    )
    assert seen["grid"].axes["missing.rate"] == [0.5] and [
        p["name"] for p in seen["grid"].axes["partition"]
    ] == ["iid", "shards"]
    assert (
        seen["grid"].seeds == [3]
        and seen["base"].tracking.results_dir == "/tmp/r"
        and seen["leaderboards"] == "/tmp/l"
    )
    assert seen["command"] == "make bench METHOD=fedmvp PROFILE=full DATASET=cub200 RATES=0.5 SEEDS=3"


def test_every_paper_table_builds_valid_cells():
    """Each registered table's YAML and axes give configs the validator accepts, for every row."""
    from fedbench.methods.registry import METHODS, get_method

    checked = 0
    for name in METHODS.names():
        plan = get_method(name).plan
        for dataset, table in plan.tables.items():
            base = sweep.load_config(bench_module.REPO / table.config)
            assert base.data.dataset == dataset, (name, table.config)
            base.train.accelerator = "cpu"  # the tables ask for a GPU; this machine may have none
            methods = list(dict.fromkeys([name, *plan.baselines, *plan.ablations, *table.extra_methods]))
            cells = sweep.cell_configs(base, sweep.Grid(methods=methods, seeds=[0], axes=dict(table.axes)))
            assert {c.method.name for c in cells} == set(methods)
            checked += 1
    assert checked >= 10  # MAP 3 (per method on the default plan), FedPrime 2, PPT 3, FedMVP 2


def test_a_method_without_that_table_says_which_it_has():
    import pytest

    from fedbench.errors import ConfigError

    with pytest.raises(
        ConfigError, match=r"fedprime has no paper table on cifar10 \(its tables: food101, mmimdb\)"
    ):
        bench_module.bench("fedprime", "quick", dataset="cifar10")


def test_executor_reaches_every_cell_and_the_command(monkeypatch):
    seen = capture(monkeypatch)
    bench_module.bench("fedavg", "quick", executor="ray")
    assert seen["base"].executor.name == "ray"
    assert all(c.executor.name == "ray" for c in sweep.cell_configs(seen["base"], seen["grid"]))
    assert seen["command"] == "make bench METHOD=fedavg PROFILE=quick EXECUTOR=ray"
    bench_module.bench("fedprime", "quick", dataset="food101", executor="ray")
    assert seen["base"].executor.name == "ray" and seen["base"].data.dataset == "food101"


def test_rounds_replaces_the_plans_own_rounds_in_every_cell(monkeypatch):
    seen = capture(monkeypatch)
    # FedMVP's full profile sets 20 rounds itself; ROUNDS wins over it, in every cell and the command
    bench_module.bench("fedmvp", "full", rounds=40)
    cells = sweep.cell_configs(seen["base"], seen["grid"])
    assert len(cells) > 1 and {c.federation.rounds for c in cells} == {40}
    assert seen["command"] == "make bench METHOD=fedmvp PROFILE=full ROUNDS=40"
    bench_module.bench("fedprime", "quick", dataset="food101", rounds=3, wandb=False)
    assert seen["base"].federation.rounds == 3


def test_rounds_below_one_is_refused_in_one_line(monkeypatch):
    capture(monkeypatch)
    import pytest

    from fedbench.errors import ConfigError

    with pytest.raises(ConfigError, match="ROUNDS=0: the number of federated rounds must be at least 1"):
        bench_module.bench("fedavg", "quick", rounds=0)
