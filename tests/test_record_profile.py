"""PROFILE=record, the board of record: each plan's quick settings at its chosen rounds on 5 seeds,
in 32-true on any machine."""

import dataclasses

import pytest

import fedbench.bench as bench_module
import fedbench.methods.registry as registry
import fedbench.sweep as sweep
from fedbench.errors import ConfigError


@pytest.fixture(autouse=True)
def a_cpu_with_native_bf16(monkeypatch):
    """The record profile runs in bf16-mixed, refused where the CPU emulates it (tested below)."""
    monkeypatch.setattr("fedbench.hardware.cpu_has_bf16", lambda: True)


def capture(monkeypatch):
    seen = {}

    def fake_run_grid(base, grid, **kw):
        seen.update(base=base, grid=grid, command=base.tracking.command)
        return []

    monkeypatch.setattr(bench_module, "run_grid", fake_run_grid)
    return seen


def with_record_rounds(monkeypatch, method: str, rounds: int | None) -> None:
    real = registry.get_method

    def patched(name):
        spec = real(name)
        if name != method:
            return spec
        return dataclasses.replace(spec, bench_plan=dataclasses.replace(spec.plan, record_rounds=rounds))

    monkeypatch.setattr(registry, "get_method", patched)


def cells_of(monkeypatch, method: str, profile: str) -> tuple[dict, list]:
    seen = capture(monkeypatch)
    bench_module.bench(method, profile, ablations=True, wandb=False)
    return seen, sweep.cell_configs(seen["base"], seen["grid"])


def comparable(cfg) -> dict:
    """A cell's config without what the record profile is meant to change."""
    d = dataclasses.asdict(cfg)
    d["federation"].pop("rounds")
    d["train"].pop("precision")
    d.pop("seed")
    d.pop("tracking")
    return d


@pytest.mark.parametrize("method", ["fedavg", "fedprime", "ppt", "fedmvp"])
def test_record_is_the_quick_plan_at_its_rounds_on_five_seeds(monkeypatch, method):
    with_record_rounds(monkeypatch, method, 17)
    _, quick = cells_of(monkeypatch, method, "quick")
    seen, record = cells_of(monkeypatch, method, "record")
    assert seen["grid"].seeds == [0, 1, 2, 3, 4]
    assert {c.federation.rounds for c in record} == {17}  # FedMVP's quick profile sets 5 rounds itself
    assert {c.seed for c in record} == {0, 1, 2, 3, 4}
    assert {c.train.precision for c in record} == {"bf16-mixed"}  # pinned: the same cells in any session
    # every quick setting, and nothing else, at each of the five seeds
    quick_settings = sorted({repr(comparable(c)) for c in quick})
    for seed in range(5):
        at_seed = sorted(repr(comparable(c)) for c in record if c.seed == seed)
        assert at_seed == quick_settings
    assert seen["base"].tracking.sweep == f"bench-{method}-record"
    assert seen["command"] == f"make bench METHOD={method} PROFILE=record ABLATIONS=1"


def test_the_record_is_bf16_and_a_cpu_that_emulates_bf16_is_refused_in_one_line(monkeypatch):
    with_record_rounds(monkeypatch, "fedavg", 17)
    monkeypatch.setattr("fedbench.hardware.cpu_has_bf16", lambda: False)
    _, quick = cells_of(monkeypatch, "fedavg", "quick")
    assert {c.train.precision for c in quick} == {"32-true"}  # `auto` here
    with pytest.raises(ConfigError) as err:
        cells_of(monkeypatch, "fedavg", "record")
    assert "\n" not in str(err.value) and "no native bf16" in str(err.value)
    assert "PRECISION=32-true" in str(err.value)
    seen = capture(monkeypatch)
    bench_module.bench("fedavg", "record", precision="32-true", wandb=False)  # the user's own cells
    assert {c.train.precision for c in sweep.cell_configs(seen["base"], seen["grid"])} == {"32-true"}
    assert bench_module.bench("fedavg", "record", accelerator="gpu", wandb=False) == []  # a GPU is not judged


def test_a_plan_whose_record_rounds_are_not_chosen_is_refused_in_one_line(monkeypatch):
    with_record_rounds(monkeypatch, "fedavg", None)
    capture(monkeypatch)
    with pytest.raises(ConfigError) as err:
        bench_module.bench("fedavg", "record")
    assert "\n" not in str(err.value) and "rounds are not chosen yet" in str(err.value)
    assert "benchmarks/round_curves.py" in str(err.value)


def test_record_on_a_real_dataset_is_refused_in_one_line(monkeypatch):
    capture(monkeypatch)
    with pytest.raises(ConfigError, match="PROFILE=record is the emoji board of record; DATASET=food101"):
        bench_module.bench("fedprime", "record", dataset="food101")


def test_an_unknown_profile_names_the_profiles(monkeypatch):
    capture(monkeypatch)
    with pytest.raises(ConfigError, match="PROFILE='huge' is not a profile; use one of quick, record, full"):
        bench_module.bench("fedavg", "huge")


def test_the_boards_sections_and_the_bench_know_the_same_profiles():
    assert tuple(bench_module.PROFILES) == registry.BENCH_PROFILES  # bench reads bench_plans.PROFILES
    assert "bench-fedprime-record" in registry.plan_sections("fedprime")


def test_an_unfinished_record_section_says_how_far_it_is(monkeypatch):
    """8 methods x 3 types x 5 seeds = 120 FedPrime record cells (counted here by hand from the
    plan); three distinct runs, one of them recorded twice, are 3 of 120; a complete section and a
    quick section get no progress line."""
    from fedbench.methods.registry import record_progress

    with_record_rounds(monkeypatch, "fedprime", 65)
    runs = [
        {"dataset": "emoji", "sweep": "bench-fedprime-record", "run_id": rid} for rid in ("a", "b", "c", "a")
    ]
    quick = [{"dataset": "emoji", "sweep": "bench-fedprime-quick", "run_id": "q"}]
    other_dataset = [{"dataset": "food101", "sweep": "bench-fedavg-record", "run_id": "f"}]
    progress = record_progress(runs + quick + other_dataset, "emoji")
    assert list(progress) == ["bench-fedprime-record"]
    line = progress["bench-fedprime-record"]
    assert line.startswith(registry.PROFILE_ROLES["record"])
    assert "3 of the plan's 120 cells" in line
    complete = [{"dataset": "emoji", "sweep": "bench-fedprime-record", "run_id": str(i)} for i in range(120)]
    assert record_progress(complete, "emoji") == {}


@pytest.mark.parametrize("method", ["fedavg", "fedprime", "ppt", "fedmvp"])
def test_the_record_cell_count_is_the_number_of_cells_the_record_bench_runs(monkeypatch, method):
    with_record_rounds(monkeypatch, method, 7)
    _, cells = cells_of(monkeypatch, method, "record")
    assert registry.record_cell_count(method) == len(cells)
